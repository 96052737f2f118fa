// tc_shape.cuh: the CTA shape of attn's tensor-core kernels, defined and checked once for the
// forward (tc_forward.cuh: ForwardCta) and the backward (tc_backward.cuh: RowsCta,
// GradientCta). Each CTA class derives from CtaShape<Cfg> and names what it uses with
// `using Shape::kWarps, ...;` (members of a dependent base are not found without it).
//
// What it is: the tile configuration Cfg as a CTA sees it (warps, rows, keys, pipeline depth,
// head dimensions, threads) and the rules every tensor-core kernel relies on.
// What it isn't: a layout of shared memory (SmemLayout, BackwardRowsLayout,
// BackwardGradientLayout) or a kernel's own derived constants (fragment counts, splits).
//
// Cfg: kBlockM (= 16 * kWarps), kBlockN (multiple of 16: 32, 64, 128), kWarps (4, 8),
//      kStages (>= 1), Elem (__half or __nv_bfloat16), kD, kDv (multiples of 16, <= 256).
#pragma once

namespace attn_tc {

template <class Cfg>
struct CtaShape {
  using Elem = typename Cfg::Elem;
  static constexpr int kWarps = Cfg::kWarps;
  static constexpr int kBlockM = Cfg::kBlockM;  // query rows per CTA (16 per warp)
  static constexpr int kBlockN = Cfg::kBlockN;  // keys per tile
  static constexpr int kStages = Cfg::kStages;  // cp.async pipeline depth
  static constexpr int kD = Cfg::kD;
  static constexpr int kDv = Cfg::kDv;
  static constexpr int kThreads = kWarps * 32;

  static_assert(sizeof(Elem) == 2, "Elem must be __half or __nv_bfloat16");
  static_assert(kWarps >= 1 && kBlockM == 16 * kWarps, "kBlockM must be 16 * kWarps");
  static_assert(kBlockN >= 16 && kBlockN % 16 == 0, "kBlockN must be a multiple of 16");
  static_assert(kD >= 16 && kD % 16 == 0 && kD <= 256, "kD must be a multiple of 16, at most 256");
  static_assert(kDv >= 16 && kDv % 16 == 0 && kDv <= 256, "kDv must be a multiple of 16, at most 256");
  static_assert(kStages >= 1, "kStages must be at least 1");
};

}  // namespace attn_tc
