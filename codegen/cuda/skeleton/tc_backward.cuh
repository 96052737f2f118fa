// tc_backward.cuh: the fixed FlashAttention-2-style backward kernel bodies of attn's CUDA
// backend, which the code generator completes with one program's backward hooks (members of
// the same Variant struct V as the forward) and a tile configuration (Cfg). The generator writes
//
//   extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1)
//   attn_backward_rows_tc_1(attn_tc::BwdParams p) { attn_tc::backwardRows<Variant, Config, 1>(p); }
//   ...                                             (one per row pass P = 1 .. V::kRowPasses)
//   extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1)
//   attn_backward_grad_tc(attn_tc::BwdParams p) { attn_tc::backwardGradient<Variant, Config>(p); }
//
// and the host launches, in this order (same stream):
//   row pass P:  grid dim3(ceil(lq / kBlockM), heads), block kWarps * 32,
//                backwardRowsSharedBytes<Config>() bytes of dynamic shared memory;
//   gradient:    grid dim3(ceil(lk / kBlockN), heads), block kWarps * 32,
//                backwardGradientSharedBytes<Config, Variant>() bytes of dynamic shared memory
//                (over 48 KB needs CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, as the forward).
// Before them the host fills p.adj's identity slots (dO_i·o_i), zeroes p.dq and (kQueryNorm)
// p.rqBar; the gradient kernel writes every element of p.dk, p.dv and (kKeyNorm) p.rkBar.
//
// What it is:
//  - backwardRows<V, Cfg, P>: one CTA = one (head, tile of kBlockM query rows), each of the
//    kWarps warps owns 16 rows, exactly as the forward (tc_forward.cuh). Q and dO are loaded once
//    (their mma A fragments kept in registers unless kD + kDv > 256); K and V tiles stream
//    through a kStages-deep cp.async pipeline. Per visible key tile, in chunks of 32 (or 16)
//    keys: S = Q K^T and G = dO V^T by mma.sync m16n8k16 (fp32), the hook V::rowTerms<P> per
//    element, and per-thread sums of the level-P row adjoints; at the end a quad reduction and
//    adj[row][a] += sum (then the optional V::rowFinish<P>).
//  - backwardGradient<V, Cfg>: one CTA = one (head, tile of kBlockN keys); each warp owns
//    16 * kMTiles keys (and, when kBlockN < 16 * kWarps, a share of the head dimensions). K and V
//    are loaded once; the query tiles (kBlockM rows) that can see a key of the CTA stream through
//    a kStages-deep cp.async pipeline together with their rows' stats / adj / rq (shared memory).
//    Per query tile, in chunks of kQChunk queries: S^T = K Q^T and G^T = V dO^T by mma (keys are
//    the mma's M dimension), the hook V::gradTerms per element -> dS^T, W^T in registers, which
//    are already mma A fragments for dV += W^T dO and dK += dS^T Q (fp32 accumulators in
//    registers for the whole kernel); dS^T also goes to shared memory (Elem), and after a barrier
//    every warp computes dQ = dS K for its 16 query rows (dS read back with ldmatrix.trans) and
//    atomically adds it to p.dq. rqBar / rkBar sums as described at GradientCta.
//    Transposed operands, the choice made: S is computed transposed (S^T = K Q^T) rather than
//    staging dS^T through shared memory for dK += dS^T Q, because then the two key-side
//    products dK and dV (4 of the 5 matmuls' accumulators and the bulk of the registers) take
//    their A operands straight from the hook's registers (PTX C layout -> A layout repacking,
//    as the forward's O += W V), and each warp's dK/dV accumulators own whole key rows, so no
//    cross-warp reduction is needed. Only dQ, which sums over the keys that different warps
//    own, needs the transpose: dS^T is stored once to shared memory with 32-bit stores straight
//    from the C fragments ([key][query] rows), and ldmatrix.trans delivers dS's A fragments.
// What it isn't: the row adjoints' identity fill (the host's), the l2norm chain rule (the host
//   applies rqBar / rkBar to dq / dk afterwards), a deterministic dq (fp32 atomics, order
//   varies), a Hopper wgmma/TMA kernel, or a place for per-program code (that is all in V).
//
// Semantics: those of the CPU backend (codegen/scalar/ScalarKernels.cpp emitRowPass and
// emitGradient; compiler/Differentiate.h for what the row adjoints are), up to float32
// arithmetic, summation order, and dS / W rounded to Elem before the dK, dV, dQ mma (as
// FlashAttention-2 does).
//
// Interfaces (static constexpr / static __device__ members), besides the forward's (tc_forward.cuh):
//   Cfg: as the forward's: kBlockM (= 16 * kWarps), kBlockN (multiple of 16), kWarps, kStages
//        (>= 1), Elem (__half / __nv_bfloat16), kD, kDv (multiples of 16, <= 256). The gradient
//        kernel also needs: kBlockN % (16 * min(kWarps, kBlockN / 16)) == 0, and, when
//        kBlockN < 16 * kWarps, kD and kDv divisible by 16 * kWarps / (kBlockN / 16).
//        Optional tuning members (all have defaults):
//          kBwdFragsInRegisters (bool, row passes: keep Q and dO A fragments in registers;
//            default kD + kDv <= 256),
//          kGradKVInRegisters (bool, gradient: keep the warp's K and V A fragments in registers;
//            default kMTiles * (kD + kDv) <= 128),
//          kGradQueryChunk (int, gradient: queries per S^T chunk, multiple of 16 dividing
//            kBlockM; default 16, or 32 where the K / V fragments come from shared memory
//            and the dK + dV accumulators take at most 96 floats per thread),
//          kGradDimSplit (int, gradient: sequential passes over the query tiles, each
//            accumulating dK / dV / dQ for 1/kGradDimSplit of the head dimensions, recomputing
//            S and G; default: the smallest of 1, 2, 4 that keeps the dK + dV accumulators at
//            <= 128 floats per thread, e.g. 2 for kD = kDv = 256 at the default tile).
//   V:   kAdjoints (>= 0), kRowPasses (>= 0), level(a) (0..kRowPasses; callable in constant
//        expressions), the hooks
//          template <int P> static __device__ __forceinline__
//          bool rowTerms(const BwdRow& row, float s, float g, long long j, float rk, float* x);
//          static __device__ __forceinline__
//          bool gradTerms(const BwdRow& row, float s, float g, long long j, float rk, float* x);
//        (see BwdRow; x is zeroed before every call; both return false where the program's
//        expression mask hides the element), and optionally
//          static constexpr bool kRowFinish = true;  together with
//          template <int P> static __device__ __forceinline__ void rowFinish(const BwdRow& row, float* adj);
//        called once per valid row after row pass P has added its sums, on the row's adj
//        (all kAdjoints floats, row.adj == adj) in place: the CPU backend's "row users'
//        shares" (emitRowPass's second loop, attn_bwd_rowfinish_P); every slot is stored back.
//   rowTerms is needed only when kRowPasses > 0 (backwardRows<V, Cfg, P> is the only user);
//   row.stats / row.adj point to registers in row passes and to shared memory in the gradient
//   kernel, so hooks must only read through them (as generated hooks do).
//   Hooks are called for out-of-range elements too (keys >= lk, rows >= lq, outside the mask
//   range, with zero-filled stats / adj / q / k there); their results are then discarded by a
//   select (never multiplied by 0), so they may be NaN or inf there.
#pragma once

#include "tc_forward.cuh"

namespace attn_tc {

/// The backward kernels' one argument. Layouts are contiguous, row-major, heads outermost.
struct BwdParams {
  const void* q;     ///< Elem [heads][lq][kD]
  const void* k;     ///< Elem [heads][lk][kD]
  const void* v;     ///< Elem [heads][lk][kDv]
  const void* dout;  ///< Elem [heads][lq][kDv]
  const float* stats;  ///< [heads][lq][2 * V::kStats], from the forward
  float* adj;          ///< [heads][lq][V::kAdjoints]: identity slots prefilled; row pass P adds level-P sums
  float* dq;           ///< [heads][lq][kD], zeroed by the host; the gradient kernel atomically adds
  float* dk;           ///< [heads][lk][kD], written by the gradient kernel (every element)
  float* dv;           ///< [heads][lk][kDv], written by the gradient kernel (every element)
  const float* rq;     ///< [heads][lq] 1/|q_i| (read only if V::kQueryNorm), may be null
  const float* rk;     ///< [heads][lk] 1/|k_j| (read only if V::kKeyNorm), may be null
  float* rqBar;        ///< [heads][lq], zeroed by the host; the gradient kernel adds (only if kQueryNorm)
  float* rkBar;        ///< [heads][lk], written by the gradient kernel (only if kKeyNorm)
  long long lq, lk;    ///< query and key counts (lq <= lk, both below 2^31 - 256)
  int heads;
};

/// What the backward hooks know of a query row (attn_tc::Row plus the row's adjoints).
struct BwdRow {
  const float* stats;  ///< the row's 2 * kStats statistics slots (registers or shared memory)
  const float* adj;    ///< the row's kAdjoints row adjoints; those of levels below the pass are final
  long long i;         ///< absolute query position: lk - lq + r
  float n;             ///< keys in the row's mask range: hi - lo
  long long lk;        ///< key count
  float rq;            ///< 1/|q_i| if V::kQueryNorm, else 0
};

// ------------------------------------------------------------------ shared-memory layouts

/// Dynamic shared memory of a row pass: Q kBlockM x kD, dO kBlockM x kDv, then kStages K tiles
/// kBlockN x kD, then kStages V tiles kBlockN x kDv, each a SmemTile (tc_forward.cuh).
template <class Cfg>
struct BackwardRowsLayout {
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kD>;
  using DoTile = SmemTile<Cfg::kBlockM, Cfg::kDv>;
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kD>;
  using VTile = SmemTile<Cfg::kBlockN, Cfg::kDv>;
  static constexpr int kDoOffset = QTile::kBytes;
  static constexpr int kKOffset = kDoOffset + DoTile::kBytes;
  static constexpr int kVOffset = kKOffset + Cfg::kStages * KTile::kBytes;
  static constexpr int kBytes = kVOffset + Cfg::kStages * VTile::kBytes;
};

/// Dynamic shared memory of the gradient kernel: K kBlockN x kD, V kBlockN x kDv, dS^T
/// kBlockN x kBlockM (all Elem SmemTiles, loaded / used once per CTA or per query tile), then
/// kStages Q tiles kBlockM x kD, kStages dO tiles kBlockM x kDv, and last kStages row-data
/// blocks of kBlockM * rowFloats floats each: [stats kBlockM x 2kStats][adj kBlockM x
/// kAdjoints][rq kBlockM if kQueryNorm] (rowFloats = 2 kStats + kAdjoints + kQueryNorm).
template <class Cfg>
struct BackwardGradientLayout {
  using KTile = SmemTile<Cfg::kBlockN, Cfg::kD>;
  using VTile = SmemTile<Cfg::kBlockN, Cfg::kDv>;
  using DsTile = SmemTile<Cfg::kBlockN, Cfg::kBlockM>;  // rows = keys, columns = queries
  using QTile = SmemTile<Cfg::kBlockM, Cfg::kD>;
  using DoTile = SmemTile<Cfg::kBlockM, Cfg::kDv>;
  static constexpr int kVOffset = KTile::kBytes;
  static constexpr int kDsOffset = kVOffset + VTile::kBytes;
  static constexpr int kQOffset = kDsOffset + DsTile::kBytes;
  static constexpr int kDoOffset = kQOffset + Cfg::kStages * QTile::kBytes;
  static constexpr int kRowOffset = kDoOffset + Cfg::kStages * DoTile::kBytes;  // a multiple of 16
  __host__ __device__ static constexpr int rowStageBytes(int rowFloats) { return 4 * Cfg::kBlockM * rowFloats; }
  __host__ __device__ static constexpr int bytes(int rowFloats) { return kRowOffset + Cfg::kStages * rowStageBytes(rowFloats); }
};

/// Bytes of dynamic shared memory to launch a row pass with:
/// 2 * (kBlockM + kStages * kBlockN) * (w(kD) + w(kDv)), w(c) = c if c % 64 == 0 else c + 8.
/// (D = Dv = 64, default tile: 48 KB; 128: 96 KB.)
template <class Cfg>
__host__ __device__ constexpr int backwardRowsSharedBytes() {
  return BackwardRowsLayout<Cfg>::kBytes;
}

/// Bytes of dynamic shared memory to launch the gradient kernel with, for `rowFloats` =
/// 2 * kStats + kAdjoints + (kQueryNorm ? 1 : 0) floats of row data per query row:
///   2 * (kBlockN * (w(kD) + w(kDv) + w(kBlockM)) + kStages * kBlockM * (w(kD) + w(kDv)))
///   + 4 * kStages * kBlockM * rowFloats,           w(c) = c if c % 64 == 0 else c + 8.
/// (D = Dv = 64, default tile, softmax's rowFloats = 3: 57344 + 1536 = 58880 bytes;
/// D = Dv = 128: 106496 + 1536 = 108032 bytes.)
/// This is the one deviation from a Cfg-only size: the row data depends on the Variant.
template <class Cfg>
__host__ __device__ constexpr int backwardGradientSharedBytes(int rowFloats) {
  return BackwardGradientLayout<Cfg>::bytes(rowFloats);
}

/// The row-data floats per query row the gradient kernel stages for variant V.
template <class V>
__host__ __device__ constexpr int backwardRowFloats() {
  return 2 * V::kStats + V::kAdjoints + (V::kQueryNorm ? 1 : 0);
}

/// backwardGradientSharedBytes<Cfg>(backwardRowFloats<V>()).
template <class Cfg, class V>
__host__ __device__ constexpr int backwardGradientSharedBytes() {
  return backwardGradientSharedBytes<Cfg>(backwardRowFloats<V>());
}

namespace detail {

// ------------------------------------------------------------------ primitives and options

/// cp.async of 4 bytes global -> shared (.ca: the only cache mode for sizes below 16). When
/// !valid nothing is read and the 4 destination bytes are zero-filled (`src` must still be a
/// valid global address then).
__device__ __forceinline__ void cpAsync4(unsigned dst, const void* src, bool valid) {
  const int srcBytes = valid ? 4 : 0;
#ifdef ATTN_TC_HOST_EMULATION  // tests/emu/ (see tc_common.cuh)
  attn_emu_cp_async(dst, src, 4, srcBytes);
#else
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes) : "memory");
#endif
}

/// dst[0] += a, dst[1] += b atomically (fp32; dst 8-byte aligned). sm_90 has a vector
/// (float2) atomic add, one instruction; earlier architectures use two scalar ones.
__device__ __forceinline__ void atomicAddPair(float* dst, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(a, b));
#else
  atomicAdd(dst, a);
  atomicAdd(dst + 1, b);
#endif
}

/// Physical chunk of logical chunk `chunk` (even) of a row of Tile for a lane of phase
/// `phase` (SmemTile::lanePhase(), below 8): chunk ^ phase, written so that the compiler can
/// see that only the low 3 bits (swizzled; the low bit when padded) depend on the lane. The
/// rest then folds into the ldmatrix's immediate address offset, and a warp's 16 k-steps need
/// 4 (1) lane-dependent address registers instead of one each.
template <class Tile>
__device__ __forceinline__ int physicalChunk(int chunk, int phase) {
  if constexpr (Tile::kSwizzled) return (chunk & ~7) + ((chunk & 7) ^ (phase & 7));
  else return chunk + (phase & 1);  // padded: phase is the lane's chunk (0 or 1), chunk even
}

/// physicalChunk(chunkBase + chunk, phase) for a run-time chunkBase that is a multiple of
/// kBaseAlign chunks: when that is a multiple of the swizzle period (8 chunks; 2 when padded)
/// the base is a plain addend, and the lane-dependent part depends only on the compile-time
/// chunk (so it is shared by every base); otherwise the general form.
template <class Tile, int kBaseAlign>
__device__ __forceinline__ int physicalChunkAt(int chunkBase, int chunk, int phase) {
  constexpr int kPeriod = Tile::kSwizzled ? 8 : 2;
  if constexpr (kBaseAlign % kPeriod == 0) return chunkBase + physicalChunk<Tile>(chunk, phase);
  else return physicalChunk<Tile>(chunkBase + chunk, phase);
}

/// Key range [lo, hi) of absolute query position i under V's mask, clamped to [0, lk)
/// (Expr: all keys, the hook decides). Same rules as the forward's keyRange.
template <class V>
__device__ __forceinline__ void bwdKeyRange(long long i, int lk, int& lo, int& hi) {
  lo = 0;
  hi = lk;
  if constexpr (V::kMask == Mask::Causal || V::kMask == Mask::Window) hi = i + 1 < lk ? static_cast<int>(i + 1) : lk;
  if constexpr (V::kMask == Mask::Window) {
    const long long low = i - static_cast<long long>(V::kWindowLow);
    lo = low > 0 ? static_cast<int>(low < lk ? low : lk) : 0;
  }
}

/// cp.async of rows [row0, row0 + kRows) of the row-major Elem matrix src [.][kCols] into the
/// shared tile (layout Tile) at dst; rows >= rowEnd are zero-filled (so padding rows hold 0,
/// never NaN, in the mma). All kThreads threads of the CTA take part.
/// Unlike the forward's copyTile, every address is one per-thread base plus a compile-time
/// offset where the layout allows (kThreads a multiple of the row's 16-byte chunks, and, for a
/// swizzled tile, a row step that keeps the swizzle phase): otherwise the compiler hoists the
/// kIters loop-invariant source pointers (64-bit) and destination offsets out of the tile loop
/// and keeps them all in registers (at D = 256 the gradient kernel's Q and dO copies alone
/// then took enough to spill ~400 bytes; with this form ~50).
template <class Tile, int kRows, int kCols, int kThreads, class Elem>
__device__ __forceinline__ void bwdCopyTile(unsigned dst, const Elem* src, int row0, int rowEnd) {
  constexpr int kChunksPerRow = kCols / 8;  // 16-byte chunks
  constexpr int kChunks = kRows * kChunksPerRow;
  constexpr int kIters = (kChunks + kThreads - 1) / kThreads;
  const int tid = static_cast<int>(threadIdx.x);
  if constexpr (kThreads % kChunksPerRow == 0) {
    constexpr int kRowStep = kThreads / kChunksPerRow;  // rows between a thread's chunks
    const int row = tid / kChunksPerRow, col = (tid % kChunksPerRow) * 8;
    const Elem* from = src + static_cast<long long>(row0 + row) * kCols + col;
    const int rowsLeft = rowEnd - row0 - row;  // this thread's chunk it is valid if it * kRowStep < rowsLeft
    // Swizzled tiles: rows r and r + kRowStep share the XOR phase iff kRowStep % 8 == 0.
    constexpr bool kFixedPhase = !Tile::kSwizzled || kRowStep % 8 == 0;
    const unsigned to = dst + Tile::offset(row, col);
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      if (kChunks % kThreads == 0 || row + it * kRowStep < kRows) {
        const bool valid = it * kRowStep < rowsLeft;
        const unsigned d =
            kFixedPhase ? to + it * kRowStep * Tile::kStride * 2 : dst + Tile::offset(row + it * kRowStep, col);
        cpAsync16(d, valid ? from + it * kRowStep * kCols : src, valid);
      }
    }
  } else {
#pragma unroll
    for (int it = 0; it < kIters; ++it) {
      const int c = tid + it * kThreads;
      if (kChunks % kThreads == 0 || c < kChunks) {
        const int row = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
        const int gRow = row0 + row;
        const bool valid = gRow < rowEnd;
        cpAsync16(dst + Tile::offset(row, col), valid ? src + static_cast<long long>(gRow) * kCols + col : src, valid);
      }
    }
  }
}

/// cp.async of floats [first, first + kCount) of src into dst (4 bytes each), those >= end
/// zero-filled. All kThreads threads take part.
template <int kCount, int kThreads>
__device__ __forceinline__ void bwdCopyFloats(unsigned dst, const float* src, long long first, long long end) {
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
  for (int it = 0; it < (kCount + kThreads - 1) / kThreads; ++it) {
    const int c = tid + it * kThreads;
    if (kCount % kThreads == 0 || c < kCount) {
      const bool valid = first + c < end;
      cpAsync4(dst + 4 * c, valid ? src + first + c : src, valid);
    }
  }
}

/// Row passes: whether Q's and dO's A fragments stay in registers (Cfg::kBwdFragsInRegisters
/// when declared, else kD + kDv <= 256: 64 registers at D = Dv = 128, where no O accumulator
/// competes as in the forward).
template <class C, class = void>
struct BwdFragsInRegisters {
  static constexpr bool value = C::kD + C::kDv <= 256;
};
template <class C>
struct BwdFragsInRegisters<C, decltype(void(C::kBwdFragsInRegisters))> {
  static constexpr bool value = C::kBwdFragsInRegisters;
};

/// Gradient: whether the warp's K and V A fragments stay in registers (Cfg::kGradKVInRegisters,
/// else when they cost at most 32 registers: kMTiles * (kD + kDv) <= 128).
template <class C, int kMTiles, class = void>
struct GradKVInRegisters {
  static constexpr bool value = kMTiles * (C::kD + C::kDv) <= 128;
};
template <class C, int kMTiles>
struct GradKVInRegisters<C, kMTiles, decltype(void(C::kGradKVInRegisters))> {
  static constexpr bool value = C::kGradKVInRegisters;
};

/// Gradient: queries per S^T chunk (Cfg::kGradQueryChunk, else 16, or 32 when the K / V A
/// fragments come from shared memory and the dK + dV accumulators take at most 96 floats per
/// thread). A chunk of 32 halves the K / V ldmatrix reads of S^T, G^T but costs 16 more
/// registers (S^T, G^T of 32 queries), and ptxas hoists the next k-step's ldmatrix results
/// too: at D = Dv = 128 (128 accumulator floats) that is the difference between ~227 and
/// ~252 registers for the softmax hook, i.e. no room left for heavier hooks. With the
/// fragments in registers the chunk size does not change the shared-memory reads.
template <class C, bool kKVInRegisters, int kAccFloats, class = void>
struct GradQueryChunk {
  static constexpr int value = (C::kBlockM % 32 != 0 || kKVInRegisters || kAccFloats > 96) ? 16 : 32;
};
template <class C, bool kKVInRegisters, int kAccFloats>
struct GradQueryChunk<C, kKVInRegisters, kAccFloats, decltype(void(C::kGradQueryChunk))> {
  static constexpr int value = C::kGradQueryChunk;
};

/// Gradient: sequential dimension splits (Cfg::kGradDimSplit, else the smallest s of 1, 2, 4
/// with kD % (16 s kWarpSplit) == 0, kDv % (16 s kWarpSplit) == 0 and
/// kMTiles (kD + kDv) / (2 s kWarpSplit) <= 128 (the dK + dV accumulator floats per thread);
/// 1 if none fits, which then spills).
template <class C, int kMTiles, int kWarpSplit>
__host__ __device__ constexpr int defaultGradDimSplit() {
  for (int s = 1; s <= 4; s *= 2) {
    const int parts = s * kWarpSplit;
    if (C::kD % (16 * parts) == 0 && C::kDv % (16 * parts) == 0 && kMTiles * (C::kD + C::kDv) / (2 * parts) <= 128)
      return s;
  }
  return 1;
}
template <class C, int kMTiles, int kWarpSplit, class = void>
struct GradDimSplit {
  static constexpr int value = defaultGradDimSplit<C, kMTiles, kWarpSplit>();
};
template <class C, int kMTiles, int kWarpSplit>
struct GradDimSplit<C, kMTiles, kWarpSplit, decltype(void(C::kGradDimSplit))> {
  static constexpr int value = C::kGradDimSplit;
};

/// Whether V declares the optional rowFinish hook (V::kRowFinish).
template <class V, class = void>
struct HasRowFinish {
  static constexpr bool value = false;
};
template <class V>
struct HasRowFinish<V, decltype(void(V::kRowFinish))> {
  static constexpr bool value = V::kRowFinish;
};

// ------------------------------------------------------------------ row passes

/// Row pass P's state for one thread: geometry, the thread's two query rows (g and g + 8 of
/// its warp's 16, PTX m16n8 C layout), their stats and adjoints, the Q / dO fragments and the
/// level-P partial sums. Everything is inlined into backwardRows(), so the arrays are registers.
template <class V, class Cfg, int P>
class RowsCta {
 public:
  using Elem = typename Cfg::Elem;
  using L = BackwardRowsLayout<Cfg>;
  using QTile = typename L::QTile;
  using DoTile = typename L::DoTile;
  using KTile = typename L::KTile;
  using VTile = typename L::VTile;

  static constexpr int kWarps = Cfg::kWarps;
  static constexpr int kBlockM = Cfg::kBlockM;
  static constexpr int kBlockN = Cfg::kBlockN;
  static constexpr int kStages = Cfg::kStages;
  static constexpr int kD = Cfg::kD;
  static constexpr int kDv = Cfg::kDv;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kDSteps = kD / 16;    // k16 steps of S = Q K^T
  static constexpr int kDvSteps = kDv / 16;  // k16 steps of G = dO V^T
  static constexpr int kKeyChunk = kBlockN % 32 == 0 ? 32 : 16;  // keys per S / G chunk
  static constexpr int kChunkTiles = kKeyChunk / 8;              // n8 accumulator tiles per chunk
  static constexpr bool kFragsInRegisters = BwdFragsInRegisters<Cfg>::value;
  static constexpr int kSlots = 2 * V::kStats;
  static constexpr int kSlotsAlloc = kSlots > 0 ? kSlots : 1;
  static constexpr int kAdj = V::kAdjoints;
  static constexpr int kAdjAlloc = kAdj > 0 ? kAdj : 1;

  static_assert(sizeof(Elem) == 2, "Elem must be __half or __nv_bfloat16");
  static_assert(kWarps >= 1 && kBlockM == 16 * kWarps, "kBlockM must be 16 * kWarps");
  static_assert(kBlockN >= 16 && kBlockN % 16 == 0, "kBlockN must be a multiple of 16");
  static_assert(kD >= 16 && kD % 16 == 0 && kD <= 256, "kD must be a multiple of 16, at most 256");
  static_assert(kDv >= 16 && kDv % 16 == 0 && kDv <= 256, "kDv must be a multiple of 16, at most 256");
  static_assert(kStages >= 1, "kStages must be at least 1");
  static_assert(P >= 1 && P <= V::kRowPasses, "row pass P must be in 1..kRowPasses");

  __device__ __forceinline__ RowsCta(const BwdParams& p, unsigned char* smem) : p_(p) {
    const int tid = static_cast<int>(threadIdx.x);
    lane_ = tid & 31;
    warp_ = tid >> 5;
    g_ = laneGroup(lane_);
    t_ = laneInGroup(lane_);
    head_ = static_cast<int>(blockIdx.y);
    m0_ = static_cast<int>(blockIdx.x) * kBlockM;
    sQ_ = sharedAddress(smem);
    sDo_ = sQ_ + L::kDoOffset;
    sK_ = sQ_ + L::kKOffset;
    sV_ = sQ_ + L::kVOffset;

    const long long offset = p.lk - p.lq;  // i = offset + r
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      bwdKeyRange<V>(offset + row(rr), lk(), lo_[rr], hi_[rr]);
      const bool valid = row(rr) < lq();
      const long long r = static_cast<long long>(head_) * p.lq + row(rr);
      rq_[rr] = 0.0f;
      if constexpr (V::kQueryNorm)
        if (valid) rq_[rr] = p.rq[r];
#pragma unroll
      for (int s = 0; s < kSlotsAlloc; ++s) st_[rr][s] = valid && s < kSlots ? p.stats[r * kSlots + s] : 0.0f;
#pragma unroll
      for (int a = 0; a < kAdjAlloc; ++a) {
        adj_[rr][a] = valid && a < kAdj ? p.adj[r * kAdj + a] : 0.0f;
        sum_[rr][a] = 0.0f;
      }
    }

    // Keys some valid row of the CTA sees: [ctaLo, ctaHi) (lo and hi grow with i).
    int ctaLo, ctaHi, unused;
    const int lastRow = minInt(m0_ + kBlockM, lq()) - 1;
    bwdKeyRange<V>(offset + m0_, lk(), ctaLo, unused);
    bwdKeyRange<V>(offset + lastRow, lk(), unused, ctaHi);
    tileBegin_ = ctaLo / kBlockN;
    tileEnd_ = ctaHi > ctaLo ? (ctaHi + kBlockN - 1) / kBlockN : tileBegin_;

    // Keys some valid row of this warp sees: [warpLo_, warpHi_), empty for a warp past lq.
    const int warpFirst = m0_ + warp_ * 16;
    const int warpLast = minInt(warpFirst + 15, lq() - 1);
    warpLo_ = warpHi_ = 0;
    if (warpFirst <= warpLast) {
      bwdKeyRange<V>(offset + warpFirst, lk(), warpLo_, unused);
      bwdKeyRange<V>(offset + warpLast, lk(), unused, warpHi_);
    }
  }

  /// The whole row pass of this CTA.
  __device__ __forceinline__ void run() {
    const long long headQ = static_cast<long long>(head_) * p_.lq;
    bwdCopyTile<QTile, kBlockM, kD, kThreads>(sQ_, static_cast<const Elem*>(p_.q) + headQ * kD, m0_, lq());
    bwdCopyTile<DoTile, kBlockM, kDv, kThreads>(sDo_, static_cast<const Elem*>(p_.dout) + headQ * kDv, m0_, lq());
    cpAsyncCommit();
    const int nTiles = tileEnd_ - tileBegin_;
    // Prologue: stages 0 .. kStages-2 in flight, one cp.async group each (empty ones included).
#pragma unroll
    for (int s = 0; s < kStages - 1; ++s) {
      if (s < nTiles) loadKeyTile(tileBegin_ + s, s);
      cpAsyncCommit();
    }
    cpAsyncWait<kStages - 1>();  // the Q / dO group (the oldest) is complete
    __syncthreads();
    if constexpr (kFragsInRegisters) {
#pragma unroll
      for (int kk = 0; kk < kDSteps; ++kk) loadAFragment<QTile>(qf_[kk], sQ_, kk);
#pragma unroll
      for (int kk = 0; kk < kDvSteps; ++kk) loadAFragment<DoTile>(of_[kk], sDo_, kk);
    }
    int readStage = 0, writeStage = kStages - 1;
    for (int it = 0; it < nTiles; ++it) {
      if constexpr (kStages > 1) {
        cpAsyncWait<kStages - 2>();  // tile it's group is complete (kStages - 2 newer may be pending)
        __syncthreads();             // ... for all threads; and stage writeStage is no longer read
        if (it + kStages - 1 < nTiles) loadKeyTile(tileBegin_ + it + kStages - 1, writeStage);
        cpAsyncCommit();
      } else {
        __syncthreads();  // the single stage is no longer read
        loadKeyTile(tileBegin_ + it, 0);
        cpAsyncCommit();
        cpAsyncWait<0>();
        __syncthreads();
      }
      keyTile(tileBegin_ + it, readStage);
      readStage = readStage + 1 == kStages ? 0 : readStage + 1;
      writeStage = writeStage + 1 == kStages ? 0 : writeStage + 1;
    }
    finish();
  }

 private:
  const BwdParams& p_;
  int lane_, warp_, g_, t_;
  int head_, m0_;                 // blockIdx.y; the CTA's first query row
  unsigned sQ_, sDo_, sK_, sV_;   // .shared addresses of Q, dO, K stage 0, V stage 0
  int tileBegin_, tileEnd_;       // key tiles the CTA visits
  int warpLo_, warpHi_;           // keys this warp's valid rows can see
  int lo_[2], hi_[2];             // key ranges [lo, hi) of the thread's two rows
  float rq_[2];                   // their 1/|q_i| (0 unless V::kQueryNorm)
  float st_[2][kSlotsAlloc];      // their statistics (final, from the forward)
  float adj_[2][kAdjAlloc];       // their adjoints as read (level-P slots: prior values)
  float sum_[2][kAdjAlloc];       // this thread's partial level-P sums
  unsigned qf_[kFragsInRegisters ? kDSteps : 1][4];   // Q A fragments (PTX A layout) per k16 step
  unsigned of_[kFragsInRegisters ? kDvSteps : 1][4];  // dO A fragments

  __device__ __forceinline__ int lq() const { return static_cast<int>(p_.lq); }
  __device__ __forceinline__ int lk() const { return static_cast<int>(p_.lk); }
  /// Index in lq of the thread's row rr (0: row g of the warp's 16, 1: row g + 8; PTX m16n8 C
  /// layout: accumulator elements 0, 1 are row g, elements 2, 3 row g + 8).
  __device__ __forceinline__ int row(int rr) const { return m0_ + warp_ * 16 + accRow(g_, 2 * rr); }

  /// K and V tile `tile` -> stage `stage` (rows >= lk zero-filled).
  __device__ __forceinline__ void loadKeyTile(int tile, int stage) const {
    const int n0 = tile * kBlockN;
    const long long headK = static_cast<long long>(head_) * p_.lk;
    bwdCopyTile<KTile, kBlockN, kD, kThreads>(sK_ + stage * KTile::kBytes, static_cast<const Elem*>(p_.k) + headK * kD,
                                              n0, lk());
    bwdCopyTile<VTile, kBlockN, kDv, kThreads>(sV_ + stage * VTile::kBytes,
                                               static_cast<const Elem*>(p_.v) + headK * kDv, n0, lk());
  }

  /// ldmatrix.x4 of the A fragment for columns 16kk..16kk+15 of the warp's 16 rows of the
  /// row-major tile at `base` (PTX A layout: lanes 0-15 address rows 0-15 at column 16kk,
  /// lanes 16-31 rows 0-15 at 16kk + 8; matrices 0..3 = A reg0..reg3).
  template <class Tile>
  __device__ __forceinline__ void loadAFragment(unsigned (&a)[4], unsigned base, int kk) const {
    const int rowLane = ldmatrixARow(lane_);
    const int phase = Tile::lanePhase(rowLane, ldmatrixACol(lane_) >> 3);
    ldmatrixX4(a, base + Tile::chunkOffset(warp_ * 16 + rowLane, physicalChunk<Tile>(2 * kk, phase)));
  }

  /// One key tile in this warp: per chunk of kKeyChunk keys S, G, the hooks, the sums.
  __device__ __forceinline__ void keyTile(int tile, int stage) {
    const int n0 = tile * kBlockN;
    if (n0 >= warpHi_ || n0 + kBlockN <= warpLo_) return;  // no row of the warp sees it (warp-uniform)
    const unsigned kBase = sK_ + stage * KTile::kBytes;
    const unsigned vBase = sV_ + stage * VTile::kBytes;
#pragma unroll
    for (int kc = 0; kc < kBlockN / kKeyChunk; ++kc) {
      const int c0 = n0 + kc * kKeyChunk;
      if (c0 >= warpHi_ || c0 + kKeyChunk <= warpLo_) continue;  // warp-uniform
      float s[kChunkTiles][4], g[kChunkTiles][4];
#pragma unroll
      for (int nt = 0; nt < kChunkTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] = g[nt][e] = 0.0f;
      dots<QTile, KTile, kDSteps>(s, qf_, sQ_, kBase, kc);
      dots<DoTile, VTile, kDvSteps>(g, of_, sDo_, vBase, kc);
      elements(s, g, n0, kc * kKeyChunk);
    }
  }

  /// acc (16 x kKeyChunk, PTX C layout per n8 tile) = A B^T for the warp's 16 rows of A (Q or
  /// dO: fragments `frags` in registers, else from the shared tile at aBase) and keys
  /// kc*kKeyChunk.. of the key-side tile at bBase (K or V, N-major B).
  template <class ATile, class BTile, int kSteps>
  __device__ __forceinline__ void dots(float (&acc)[kChunkTiles][4], const unsigned (&frags)[kFragsInRegisters ? kSteps : 1][4],
                                       unsigned aBase, unsigned bBase, int kc) const {
    // ldmatrix.x4 (no .trans) on key rows (N-major B): for keys 16np.. and dims 16kk..,
    // registers 0,1 = B of keys 0-7, registers 2,3 = B of keys 8-15 (lane: key row
    // ldmatrixBRow, dim chunk ldmatrixBCol / 8).
    const int rowLane = ldmatrixBRow(lane_);
    const int phase = BTile::lanePhase(rowLane, ldmatrixBCol(lane_) >> 3);
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
      unsigned a[4];
      if constexpr (kFragsInRegisters) {
#pragma unroll
        for (int x = 0; x < 4; ++x) a[x] = frags[kk][x];
      } else {
        loadAFragment<ATile>(a, aBase, kk);
      }
#pragma unroll
      for (int np = 0; np < kChunkTiles / 2; ++np) {
        unsigned b[4];
        ldmatrixX4(b, bBase + BTile::chunkOffset(kc * kKeyChunk + np * 16 + rowLane, physicalChunk<BTile>(2 * kk, phase)));
        mma16816<Elem>(acc[2 * np], a, b[0], b[1]);
        mma16816<Elem>(acc[2 * np + 1], a, b[2], b[3]);
      }
    }
  }

  /// Per S, G element of the thread: the hook and, where visible, the level-P sums.
  /// jBase = the chunk's first key relative to the tile's n0.
  __device__ __forceinline__ void elements(const float (&s)[kChunkTiles][4], const float (&g)[kChunkTiles][4], int n0,
                                           int jBase) {
    int loRel[2], hiRel[2];  // the row's key range relative to the tile, clamped to [0, kBlockN]
    BwdRow rows[2];
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      loRel[rr] = minInt(maxInt(lo_[rr] - n0, 0), kBlockN);
      hiRel[rr] = minInt(maxInt(hi_[rr] - n0, 0), kBlockN);
      const float n = static_cast<float>(maxInt(hi_[rr] - lo_[rr], 0));
      rows[rr] = BwdRow{st_[rr], adj_[rr], p_.lk - p_.lq + row(rr), n, p_.lk, rq_[rr]};
    }
#pragma unroll
    for (int nt = 0; nt < kChunkTiles; ++nt) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        // PTX m16n8 C layout: elements c (row g) and 2 + c (row g + 8) are column 2t + c.
        const int jl = jBase + nt * 8 + accCol(t_, c);
        const int j = n0 + jl;
        float rk = 0.0f;
        if constexpr (V::kKeyNorm)
          if (j < lk()) rk = p_.rk[static_cast<long long>(head_) * p_.lk + j];
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          const int e = 2 * rr + c;
          float x[kAdjAlloc];
#pragma unroll
          for (int a = 0; a < kAdjAlloc; ++a) x[a] = 0.0f;
          const bool keep = V::template rowTerms<P>(rows[rr], s[nt][e], g[nt][e], j, rk, x);
          const bool vis = keep && jl >= loRel[rr] && jl < hiRel[rr];
#pragma unroll
          for (int a = 0; a < kAdj; ++a)
            if (V::level(a) == P) sum_[rr][a] += vis ? x[a] : 0.0f;  // select: x may be NaN where invisible
        }
      }
    }
  }

  /// The sums merged over the 4 lanes sharing the rows; lane t == 0 adds them to adj (then
  /// the optional rowFinish hook) and stores the row's adjoints.
  __device__ __forceinline__ void finish() {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr)
#pragma unroll
      for (int a = 0; a < kAdj; ++a)
        if (V::level(a) == P) sum_[rr][a] = quadSum(sum_[rr][a]);  // every lane of the warp takes part
    if (t_ != 0) return;
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      if (row(rr) >= lq()) continue;
      float* dst = p_.adj + (static_cast<long long>(head_) * p_.lq + row(rr)) * kAdj;
#pragma unroll
      for (int a = 0; a < kAdj; ++a)
        if (V::level(a) == P) adj_[rr][a] += sum_[rr][a];
      if constexpr (HasRowFinish<V>::value) {
        const float n = static_cast<float>(maxInt(hi_[rr] - lo_[rr], 0));
        const BwdRow r{st_[rr], adj_[rr], p_.lk - p_.lq + row(rr), n, p_.lk, rq_[rr]};
        V::template rowFinish<P>(r, adj_[rr]);
#pragma unroll
        for (int a = 0; a < kAdj; ++a) dst[a] = adj_[rr][a];
      } else {
#pragma unroll
        for (int a = 0; a < kAdj; ++a)
          if (V::level(a) == P) dst[a] = adj_[rr][a];
      }
    }
  }
};

// ------------------------------------------------------------------ gradient

/// The gradient kernel's state for one thread. Warp layout: warp w owns keys
/// keyWarp * 16 kMTiles .. + 16 kMTiles of the CTA's kBlockN (keyWarp = w % kKeyWarps) and,
/// for dK / dV, head-dimension part `part` (w / kKeyWarps) of kWarpSplit; the warps of one
/// key group compute the same S^T, G^T (only part 0 publishes dS^T and the rqBar / rkBar
/// sums). In the dQ phase warp w owns query rows 16w..16w+15 of the query tile.
/// Per thread (PTX m16n8 C layout of S^T = K Q^T: rows = keys, columns = queries) the keys are
/// g and g + 8 of each of the warp's m16 tiles; rk, rkBar partial sums and dK / dV accumulator
/// rows follow. Everything is inlined into backwardGradient(), so the arrays are registers.
template <class V, class Cfg>
class GradientCta {
 public:
  using Elem = typename Cfg::Elem;
  using L = BackwardGradientLayout<Cfg>;
  using KTile = typename L::KTile;
  using VTile = typename L::VTile;
  using DsTile = typename L::DsTile;
  using QTile = typename L::QTile;
  using DoTile = typename L::DoTile;

  static constexpr int kWarps = Cfg::kWarps;
  static constexpr int kBlockM = Cfg::kBlockM;
  static constexpr int kBlockN = Cfg::kBlockN;
  static constexpr int kStages = Cfg::kStages;
  static constexpr int kD = Cfg::kD;
  static constexpr int kDv = Cfg::kDv;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kKeyWarps = kWarps < kBlockN / 16 ? kWarps : kBlockN / 16;  // warp groups over the keys
  static constexpr int kWarpSplit = kWarps / kKeyWarps;       // warps sharing a key group (dimension parts)
  static constexpr int kMTiles = kBlockN / (16 * kKeyWarps);  // m16 key tiles per warp
  static constexpr int kSeqSplit = GradDimSplit<Cfg, kMTiles, kWarpSplit>::value;  // sequential dimension passes
  static constexpr int kParts = kSeqSplit * kWarpSplit;
  static constexpr int kDc = kD / kParts;    // dK columns per warp and pass
  static constexpr int kDvc = kDv / kParts;  // dV columns per warp and pass
  static constexpr int kDqDims = kD / kSeqSplit;  // dQ columns per pass (all warps)
  static constexpr int kDqChunk = kDqDims % 64 == 0 ? 64 : (kDqDims % 32 == 0 ? 32 : 16);  // dQ columns at a time
  static constexpr bool kKVInRegisters = GradKVInRegisters<Cfg, kMTiles>::value;
  static constexpr int kQChunk = GradQueryChunk<Cfg, kKVInRegisters, kMTiles * (kDc + kDvc) / 2>::value;
  static constexpr int kChunkTiles = kQChunk / 8;  // n8 tiles (8 queries) of S^T per chunk and m-tile
  static constexpr int kDSteps = kD / 16;
  static constexpr int kDvSteps = kDv / 16;
  static constexpr int kSlots = 2 * V::kStats;
  static constexpr int kAdj = V::kAdjoints;
  static constexpr int kRowFloats = backwardRowFloats<V>();
  static constexpr int kStatsOffset = 0;                        // floats, in a row-data block
  static constexpr int kAdjOffset = kBlockM * kSlots;
  static constexpr int kRqOffset = kAdjOffset + kBlockM * kAdj;

  static_assert(sizeof(Elem) == 2, "Elem must be __half or __nv_bfloat16");
  static_assert(kWarps >= 1 && kBlockM == 16 * kWarps, "kBlockM must be 16 * kWarps");
  static_assert(kBlockN >= 16 && kBlockN % 16 == 0, "kBlockN must be a multiple of 16");
  static_assert(kD >= 16 && kD % 16 == 0 && kD <= 256, "kD must be a multiple of 16, at most 256");
  static_assert(kDv >= 16 && kDv % 16 == 0 && kDv <= 256, "kDv must be a multiple of 16, at most 256");
  static_assert(kStages >= 1, "kStages must be at least 1");
  static_assert(kBlockN % (16 * kKeyWarps) == 0, "gradient: kBlockN must be a multiple of 16 * min(kWarps, kBlockN / 16)");
  static_assert(kWarps % kKeyWarps == 0, "gradient: kWarps must be a multiple of kBlockN / 16 when it is larger");
  static_assert(kSeqSplit >= 1 && kD % (16 * kParts) == 0 && kDv % (16 * kParts) == 0,
                "gradient: kD and kDv must split into multiples of 16 columns over kGradDimSplit * kWarps / (kBlockN / 16)");
  static_assert(kQChunk >= 16 && kQChunk % 16 == 0 && kBlockM % kQChunk == 0, "kGradQueryChunk must be 16k dividing kBlockM");

  __device__ __forceinline__ GradientCta(const BwdParams& p, unsigned char* smem) : p_(p), smem_(smem) {
    const int tid = static_cast<int>(threadIdx.x);
    lane_ = tid & 31;
    warp_ = tid >> 5;
    g_ = laneGroup(lane_);
    t_ = laneInGroup(lane_);
    head_ = static_cast<int>(blockIdx.y);
    n0_ = static_cast<int>(blockIdx.x) * kBlockN;
    keyRel0_ = (warp_ % kKeyWarps) * 16 * kMTiles;
    part_ = warp_ / kKeyWarps;
    base_ = sharedAddress(smem);

#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        rk_[mt][rr] = 0.0f;
        rkSum_[mt][rr] = 0.0f;
        if constexpr (V::kKeyNorm) {
          const int j = key(mt, rr);
          if (j < lk()) rk_[mt][rr] = p.rk[static_cast<long long>(head_) * p.lk + j];
        }
      }

    // Query rows that see some key of [n0, nEnd): causal / window: i >= n0; window also
    // i - kWindowLow < nEnd. Tiles [tileBegin_, tileEnd_) of kBlockM rows.
    const long long offset = p.lk - p.lq;
    const long long nEnd = minInt(n0_ + kBlockN, lk());
    long long rowBegin = 0, rowEnd = p.lq;
    if constexpr (V::kMask == Mask::Causal || V::kMask == Mask::Window) rowBegin = n0_ - offset;
    if constexpr (V::kMask == Mask::Window) {
      const long long w = V::kWindowLow < p.lk ? static_cast<long long>(V::kWindowLow) : p.lk;
      rowEnd = nEnd + w - offset;
    }
    rowBegin = rowBegin > 0 ? rowBegin : 0;
    rowEnd = rowEnd < p.lq ? rowEnd : p.lq;
    tileBegin_ = static_cast<int>(rowBegin / kBlockM);
    tileEnd_ = rowBegin < rowEnd ? static_cast<int>((rowEnd + kBlockM - 1) / kBlockM) : tileBegin_;
  }

  /// The whole gradient computation of this CTA.
  __device__ __forceinline__ void run() {
    const long long headK = static_cast<long long>(head_) * p_.lk;
    bwdCopyTile<KTile, kBlockN, kD, kThreads>(base_, static_cast<const Elem*>(p_.k) + headK * kD, n0_, lk());
    bwdCopyTile<VTile, kBlockN, kDv, kThreads>(base_ + L::kVOffset, static_cast<const Elem*>(p_.v) + headK * kDv, n0_,
                                               lk());
    cpAsyncCommit();
    const int nTiles = tileEnd_ - tileBegin_;
#pragma unroll 1
    for (int h = 0; h < kSeqSplit; ++h) {
      if (h > 0) __syncthreads();  // every warp is done with the previous pass's stages
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
        for (int dn = 0; dn < kDc / 8; ++dn)
#pragma unroll
          for (int e = 0; e < 4; ++e) dk_[mt][dn][e] = 0.0f;
#pragma unroll
        for (int dn = 0; dn < kDvc / 8; ++dn)
#pragma unroll
          for (int e = 0; e < 4; ++e) dv_[mt][dn][e] = 0.0f;
      }
      // Prologue: stages 0 .. kStages-2 in flight, one cp.async group each (empty ones included).
#pragma unroll
      for (int s = 0; s < kStages - 1; ++s) {
        if (s < nTiles) loadQueryTile(tileBegin_ + s, s);
        cpAsyncCommit();
      }
      if (h == 0) {
        cpAsyncWait<kStages - 1>();  // the K / V group (the oldest) is complete
        __syncthreads();
        if constexpr (kKVInRegisters) loadKVFragments();
      }
      int readStage = 0, writeStage = kStages - 1;
      for (int it = 0; it < nTiles; ++it) {
        if constexpr (kStages > 1) {
          cpAsyncWait<kStages - 2>();  // tile it's group is complete (kStages - 2 newer may be pending)
          __syncthreads();             // ... for all threads; stage writeStage and dS^T are no longer read
          if (it + kStages - 1 < nTiles) loadQueryTile(tileBegin_ + it + kStages - 1, writeStage);
          cpAsyncCommit();
        } else {
          __syncthreads();  // the single stage and dS^T are no longer read
          loadQueryTile(tileBegin_ + it, 0);
          cpAsyncCommit();
          cpAsyncWait<0>();
          __syncthreads();
        }
        queryTile(h, tileBegin_ + it, readStage);
        readStage = readStage + 1 == kStages ? 0 : readStage + 1;
        writeStage = writeStage + 1 == kStages ? 0 : writeStage + 1;
      }
      storeKeyGradients(h);
    }
    storeRkBar();
  }

 private:
  const BwdParams& p_;
  unsigned char* smem_;
  int lane_, warp_, g_, t_;
  int head_, n0_;              // blockIdx.y; the CTA's first key
  int keyRel0_, part_;         // the warp's first key (relative to n0_); its dimension part (0..kWarpSplit-1)
  unsigned base_;              // .shared address of the dynamic shared memory (= K tile)
  int tileBegin_, tileEnd_;    // query tiles the CTA visits
  float rk_[kMTiles][2];       // 1/|k_j| of the thread's keys (0 unless V::kKeyNorm)
  float rkSum_[kMTiles][2];    // their partial rkBar sums (part 0 warps, first pass)
  float dk_[kMTiles][kDc / 8][4];   // dK accumulator, PTX C layout (rows = keys, columns = dims)
  float dv_[kMTiles][kDvc / 8][4];  // dV accumulator
  unsigned kf_[kKVInRegisters ? kMTiles : 1][kKVInRegisters ? kDSteps : 1][4];   // K A fragments
  unsigned vf_[kKVInRegisters ? kMTiles : 1][kKVInRegisters ? kDvSteps : 1][4];  // V A fragments

  __device__ __forceinline__ int lq() const { return static_cast<int>(p_.lq); }
  __device__ __forceinline__ int lk() const { return static_cast<int>(p_.lk); }
  /// Absolute key of the thread's row rr of m-tile mt (PTX m16n8 C layout: accumulator
  /// elements 0, 1 are row g, 2, 3 row g + 8; rows of S^T are keys).
  __device__ __forceinline__ int key(int mt, int rr) const { return n0_ + keyRel0_ + mt * 16 + accRow(g_, 2 * rr); }

  /// Q, dO tile `tile` and its rows' stats / adj / rq -> stage `stage` (zero-filled past lq).
  __device__ __forceinline__ void loadQueryTile(int tile, int stage) const {
    const int m0 = tile * kBlockM;
    const long long headQ = static_cast<long long>(head_) * p_.lq;
    bwdCopyTile<QTile, kBlockM, kD, kThreads>(base_ + L::kQOffset + stage * QTile::kBytes,
                                              static_cast<const Elem*>(p_.q) + headQ * kD, m0, lq());
    bwdCopyTile<DoTile, kBlockM, kDv, kThreads>(base_ + L::kDoOffset + stage * DoTile::kBytes,
                                                static_cast<const Elem*>(p_.dout) + headQ * kDv, m0, lq());
    const unsigned rows = base_ + L::kRowOffset + stage * L::rowStageBytes(kRowFloats);
    const long long r0 = headQ + m0, rEnd = headQ + p_.lq;  // the head's rows m0.., valid below lq
    if constexpr (kSlots > 0)
      bwdCopyFloats<kBlockM * kSlots, kThreads>(rows + 4 * kStatsOffset, p_.stats, r0 * kSlots, rEnd * kSlots);
    if constexpr (kAdj > 0)
      bwdCopyFloats<kBlockM * kAdj, kThreads>(rows + 4 * kAdjOffset, p_.adj, r0 * kAdj, rEnd * kAdj);
    if constexpr (V::kQueryNorm) bwdCopyFloats<kBlockM, kThreads>(rows + 4 * kRqOffset, p_.rq, r0, rEnd);
  }

  /// K / V A fragments of the warp's m-tiles -> registers (PTX A layout: rows = keys).
  __device__ __forceinline__ void loadKVFragments() {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
      for (int kk = 0; kk < kDSteps; ++kk) loadKeyAFragment<KTile>(kf_[mt][kk], base_, mt, kk);
#pragma unroll
      for (int kk = 0; kk < kDvSteps; ++kk) loadKeyAFragment<VTile>(vf_[mt][kk], base_ + L::kVOffset, mt, kk);
    }
  }

  /// ldmatrix.x4 of the A fragment of key-side tile `Tile` at `base` (K or V, rows = keys,
  /// row-major): keys keyRel0_ + 16mt .. + 15, dims 16kk .. + 15 (PTX A layout: lanes 0-15
  /// address rows 0-15 at dim 16kk, lanes 16-31 rows 0-15 at 16kk + 8).
  template <class Tile>
  __device__ __forceinline__ void loadKeyAFragment(unsigned (&a)[4], unsigned base, int mt, int kk) const {
    const int rowLane = ldmatrixARow(lane_);
    const int phase = Tile::lanePhase(rowLane, ldmatrixACol(lane_) >> 3);
    ldmatrixX4(a, base + Tile::chunkOffset(keyRel0_ + mt * 16 + rowLane, physicalChunk<Tile>(2 * kk, phase)));
  }

  /// Whether some valid row of rows [rFirst, rEnd) can see some key of [kFirst, kEnd) under
  /// the mask's ranges (lo and hi grow with i, so the rows see at most [lo(first), hi(last))).
  __device__ __forceinline__ bool mayBeVisible(int rFirst, int rEnd, int kFirst, int kEnd) const {
    rEnd = minInt(rEnd, lq());
    kEnd = minInt(kEnd, lk());
    if (rFirst >= rEnd || kFirst >= kEnd) return false;
    const long long offset = p_.lk - p_.lq;
    int lo, hi, unused;
    bwdKeyRange<V>(offset + rFirst, lk(), lo, unused);
    bwdKeyRange<V>(offset + rEnd - 1, lk(), unused, hi);
    return lo < kEnd && hi > kFirst;
  }

  /// One query tile: per chunk S^T, G^T, hooks, dS^T to shared memory, dK, dV; then dQ.
  __device__ __forceinline__ void queryTile(int h, int tile, int stage) {
    const int m0 = tile * kBlockM;
    const int warpKeyFirst = n0_ + keyRel0_;
#pragma unroll 1
    for (int qc = 0; qc < kBlockM; qc += kQChunk) {
      if (mayBeVisible(m0 + qc, m0 + qc + kQChunk, warpKeyFirst, warpKeyFirst + 16 * kMTiles)) {
        queryChunk(h, m0, qc, stage);
      } else if (part_ == 0) {
        // Nothing visible: this warp's block of dS^T is 0 (dQ reads all of it).
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
          for (int nt = 0; nt < kChunkTiles; ++nt)
#pragma unroll
            for (int rr = 0; rr < 2; ++rr)
              storeDsPair(keyRel0_ + mt * 16 + accRow(g_, 2 * rr), qc + nt * 8 + accCol(t_, 0), 0.0f, 0.0f);
      }
    }
    __syncthreads();  // dS^T of the whole tile is in shared memory
    queryGradients(h, m0);
  }

  /// dS^T (key kRel, queries qRel, qRel + 1, relative to the CTA / tile) = (lo, hi): one
  /// 32-bit store (qRel even: both in one 16-byte chunk of the [key][query] row).
  __device__ __forceinline__ void storeDsPair(int kRel, int qRel, float lo, float hi) const {
    *reinterpret_cast<unsigned*>(smem_ + L::kDsOffset + DsTile::offset(kRel, qRel)) = packPair<Elem>(lo, hi);
  }

  /// Queries qc .. qc + kQChunk - 1 of the tile at m0 (stage `stage`) against the warp's keys.
  __device__ __forceinline__ void queryChunk(int h, int m0, int qc, int stage) {
    const unsigned qBase = base_ + L::kQOffset + stage * QTile::kBytes;
    const unsigned doBase = base_ + L::kDoOffset + stage * DoTile::kBytes;
    float s[kMTiles][kChunkTiles][4], g[kMTiles][kChunkTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kChunkTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = g[mt][nt][e] = 0.0f;
    transposedDots<KTile, QTile, kDSteps>(s, kf_, base_, qBase, qc);
    transposedDots<VTile, DoTile, kDvSteps>(g, vf_, base_ + L::kVOffset, doBase, qc);
    elements(h, s, g, m0, qc, stage);  // s := dS^T, g := W^T (0 where invisible)
    if (part_ == 0) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < kChunkTiles; ++nt)
#pragma unroll
          for (int rr = 0; rr < 2; ++rr)
            // PTX m16n8 C layout: elements 2rr, 2rr+1 are row (key) g + 8rr, columns (queries)
            // 2t, 2t+1 of n8 tile nt.
            storeDsPair(keyRel0_ + mt * 16 + accRow(g_, 2 * rr), qc + nt * 8 + accCol(t_, 0), s[mt][nt][2 * rr],
                        s[mt][nt][2 * rr + 1]);
    }
    const int part = h * kWarpSplit + part_;
    keyGradients<DoTile, kDvc>(dv_, g, doBase, qc, part * kDvc);  // dV += W^T dO
    keyGradients<QTile, kDc>(dk_, s, qBase, qc, part * kDc);      // dK += dS^T Q
  }

  /// acc[mt] (16 keys x kQChunk queries, PTX C layout per n8 tile) = A B^T with A the warp's
  /// key rows of the key-side tile (K or V; fragments `frags` in registers, else from shared
  /// memory at aBase) and B^T the query rows qc.. of the query-side tile at bBase (Q or dO,
  /// rows = queries: N-major B).
  template <class ATile, class BTile, int kSteps>
  __device__ __forceinline__ void transposedDots(float (&acc)[kMTiles][kChunkTiles][4],
                                                 const unsigned (&frags)[kKVInRegisters ? kMTiles : 1][kKVInRegisters ? kSteps : 1][4],
                                                 unsigned aBase, unsigned bBase, int qc) const {
    // ldmatrix.x4 (no .trans) on query rows (N-major B): for queries 16np.. and dims 16kk..,
    // registers 0,1 = B of queries 0-7, registers 2,3 = B of queries 8-15 (lane: query row
    // ldmatrixBRow, dim chunk ldmatrixBCol / 8).
    const int rowLane = ldmatrixBRow(lane_);
    const int phase = BTile::lanePhase(rowLane, ldmatrixBCol(lane_) >> 3);
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) {
      unsigned a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if constexpr (kKVInRegisters) {
#pragma unroll
          for (int x = 0; x < 4; ++x) a[mt][x] = frags[mt][kk][x];
        } else {
          loadKeyAFragment<ATile>(a[mt], aBase, mt, kk);
        }
      }
#pragma unroll
      for (int np = 0; np < kChunkTiles / 2; ++np) {
        unsigned b[4];
        ldmatrixX4(b, bBase + BTile::chunkOffset(qc + np * 16 + rowLane, physicalChunk<BTile>(2 * kk, phase)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma16816<Elem>(acc[mt][2 * np], a[mt], b[0], b[1]);
          mma16816<Elem>(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  /// Per S^T, G^T element of the thread: the hook; s becomes dS^T and g W^T (0 where the
  /// element is invisible or out of range); rqBar terms are summed over the warp's keys and
  /// atomically added, rkBar terms summed per key in registers (part 0 warps, pass h == 0).
  __device__ __forceinline__ void elements(int h, float (&s)[kMTiles][kChunkTiles][4],
                                           float (&g)[kMTiles][kChunkTiles][4], int m0, int qc, int stage) {
    const bool sums = h == 0 && part_ == 0;  // warp-uniform
    const long long offset = p_.lk - p_.lq;
    const unsigned char* rowData = smem_ + L::kRowOffset + stage * L::rowStageBytes(kRowFloats);
    const float* stats = reinterpret_cast<const float*>(rowData) + kStatsOffset;
    const float* adj = reinterpret_cast<const float*>(rowData) + kAdjOffset;
    const float* rqs = reinterpret_cast<const float*>(rowData) + kRqOffset;
#pragma unroll
    for (int nt = 0; nt < kChunkTiles; ++nt) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        // PTX m16n8 C layout: elements c (row = key g) and 2 + c (key g + 8) are column
        // (query) 2t + c of n8 tile nt.
        const int rl = qc + nt * 8 + accCol(t_, c);  // query row within the tile
        const int r = m0 + rl;
        const long long i = offset + r;
        int lo, hi;
        bwdKeyRange<V>(i, lk(), lo, hi);
        if (r >= lq()) hi = lo;  // padding rows see nothing
        float rq = 0.0f;
        if constexpr (V::kQueryNorm) rq = rqs[rl];
        const BwdRow row{stats + rl * kSlots, adj + rl * kAdj, i, static_cast<float>(maxInt(hi - lo, 0)), p_.lk, rq};
        float rqTerm = 0.0f;
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
          for (int rr = 0; rr < 2; ++rr) {
            const int e = 2 * rr + c;
            const int j = key(mt, rr);
            float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            const bool keep = V::gradTerms(row, s[mt][nt][e], g[mt][nt][e], j, rk_[mt][rr], x);
            const bool vis = keep && j >= lo && j < hi;  // hi <= lk
            // Selects, not products: x may be NaN / inf where invisible.
            s[mt][nt][e] = vis ? x[0] : 0.0f;
            g[mt][nt][e] = vis ? x[1] : 0.0f;
            if constexpr (V::kQueryNorm) rqTerm += vis ? x[2] : 0.0f;
            if constexpr (V::kKeyNorm)
              if (sums) rkSum_[mt][rr] += vis ? x[3] : 0.0f;
          }
        if constexpr (V::kQueryNorm) {
          if (sums) {
            // Sum over the warp's keys: the lanes of one query column differ in g (lane bits 2-4).
            rqTerm += __shfl_xor_sync(0xffffffffu, rqTerm, 4);
            rqTerm += __shfl_xor_sync(0xffffffffu, rqTerm, 8);
            rqTerm += __shfl_xor_sync(0xffffffffu, rqTerm, 16);
            if (g_ == 0 && r < lq()) atomicAdd(p_.rqBar + static_cast<long long>(head_) * p_.lq + r, rqTerm);
          }
        }
      }
    }
  }

  /// acc[mt] (16 keys x kCols dims from dim0, PTX C layout) += X^T Y, X^T = the chunk's
  /// dS^T or W^T in registers (C layout, rows = keys, columns = queries qc..) and Y the query
  /// rows qc.. of the query-side tile at yBase (Q or dO, stored [query][dim]: K-major B).
  template <class YTile, int kCols>
  __device__ __forceinline__ void keyGradients(float (&acc)[kMTiles][kCols / 8][4], const float (&x)[kMTiles][kChunkTiles][4],
                                               unsigned yBase, int qc, int dim0) const {
    // ldmatrix.x4.trans on query rows (K-major B): for queries 16kq.. and dims dim0 + 16dp..,
    // registers 0,1 = B of dims 0-7, registers 2,3 = B of dims 8-15 (lane: query row
    // ldmatrixBTransRow, dim chunk ldmatrixBTransCol / 8).
    const int rowLane = ldmatrixBTransRow(lane_);
    const int phase = YTile::lanePhase(rowLane, ldmatrixBTransCol(lane_) >> 3);
    const int chunk0 = dim0 >> 3;  // a multiple of kCols / 8 (dim0 = part * kCols)
#pragma unroll
    for (int kq = 0; kq < kQChunk / 16; ++kq) {
      // PTX A layout from two C tiles (queries 16kq..16kq+7 and 16kq+8..16kq+15): reg0 = row
      // (key) g, k (query) 2t.. = tile 2kq c0,c1; reg1 = row g+8 = tile 2kq c2,c3; reg2, reg3 =
      // tile 2kq+1 likewise.
      unsigned a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        a[mt][0] = packPair<Elem>(x[mt][2 * kq][0], x[mt][2 * kq][1]);
        a[mt][1] = packPair<Elem>(x[mt][2 * kq][2], x[mt][2 * kq][3]);
        a[mt][2] = packPair<Elem>(x[mt][2 * kq + 1][0], x[mt][2 * kq + 1][1]);
        a[mt][3] = packPair<Elem>(x[mt][2 * kq + 1][2], x[mt][2 * kq + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kCols / 16; ++dp) {
        unsigned b[4];
        ldmatrixX4Trans(b, yBase + YTile::chunkOffset(qc + kq * 16 + rowLane, physicalChunkAt<YTile, kCols / 8>(chunk0, 2 * dp, phase)));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma16816<Elem>(acc[mt][2 * dp], a[mt], b[0], b[1]);
          mma16816<Elem>(acc[mt][2 * dp + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  /// dQ rows 16w..16w+15 of the tile at m0, dims of pass h: dS (from dS^T in shared memory)
  /// times K, atomically added to p.dq, kDqChunk columns at a time.
  __device__ __forceinline__ void queryGradients(int h, int m0) {
    const int rowFirst = m0 + warp_ * 16;
    if (!mayBeVisible(rowFirst, rowFirst + 16, n0_, n0_ + kBlockN)) return;  // warp-uniform: dS rows all 0
    // A = dS (rows = queries, k = keys) from the [key][query] tile by ldmatrix.x4.trans: matrix
    // i = (keys 16kk + 8(i>>1) .., queries 16w + 8(i&1) ..) lands transposed, i.e. (query g,
    // keys 2t, 2t+1), which is A reg i. Lane: key row ldmatrixBRow, query chunk 2w +
    // ldmatrixBCol / 8 (the same address pattern as an N-major B pair).
    const int aRowLane = ldmatrixBRow(lane_);
    const int aPhase = DsTile::lanePhase(aRowLane, ldmatrixBCol(lane_) >> 3);
    // B = K (k = keys, n = dims), stored [key][dim]: K-major, ldmatrix.x4.trans as V in the
    // forward's O += W V (lane: key row ldmatrixBTransRow, dim chunk ldmatrixBTransCol / 8).
    const int bRowLane = ldmatrixBTransRow(lane_);
    const int bPhase = KTile::lanePhase(bRowLane, ldmatrixBTransCol(lane_) >> 3);
    float* dq = p_.dq + static_cast<long long>(head_) * p_.lq * kD;
#pragma unroll 1
    for (int d0 = h * kDqDims; d0 < (h + 1) * kDqDims; d0 += kDqChunk) {
      float acc[kDqChunk / 8][4];
#pragma unroll
      for (int dn = 0; dn < kDqChunk / 8; ++dn)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[dn][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        unsigned a[4];
        ldmatrixX4Trans(a, base_ + L::kDsOffset + DsTile::chunkOffset(kk * 16 + aRowLane, physicalChunk<DsTile>(2 * warp_, aPhase)));
#pragma unroll
        for (int dp = 0; dp < kDqChunk / 16; ++dp) {
          unsigned b[4];
          ldmatrixX4Trans(b, base_ + KTile::chunkOffset(kk * 16 + bRowLane, physicalChunkAt<KTile, kDqChunk / 8>(d0 >> 3, 2 * dp, bPhase)));
          mma16816<Elem>(acc[2 * dp], a, b[0], b[1]);
          mma16816<Elem>(acc[2 * dp + 1], a, b[2], b[3]);
        }
      }
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        // PTX m16n8 C layout: elements 2rr, 2rr+1 are row (query) g + 8rr, columns 2t, 2t+1.
        const int r = rowFirst + accRow(g_, 2 * rr);
        if (r >= lq()) continue;
#pragma unroll
        for (int dn = 0; dn < kDqChunk / 8; ++dn)
          atomicAddPair(dq + static_cast<long long>(r) * kD + d0 + dn * 8 + accCol(t_, 0), acc[dn][2 * rr],
                        acc[dn][2 * rr + 1]);
      }
    }
  }

  /// dK, dV columns of pass h and this warp's part, for its keys < lk, to p.dk, p.dv (fp32;
  /// each quad writes 32 contiguous bytes of a row).
  __device__ __forceinline__ void storeKeyGradients(int h) const {
    const int part = h * kWarpSplit + part_;
    const long long headK = static_cast<long long>(head_) * p_.lk;
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        // PTX m16n8 C layout: elements 2rr, 2rr+1 are row (key) g + 8rr, columns 2t, 2t+1.
        const int j = key(mt, rr);
        if (j >= lk()) continue;
        float* dk = p_.dk + (headK + j) * kD + part * kDc + accCol(t_, 0);
        float* dv = p_.dv + (headK + j) * kDv + part * kDvc + accCol(t_, 0);
#pragma unroll
        for (int dn = 0; dn < kDc / 8; ++dn)
          *reinterpret_cast<float2*>(dk + dn * 8) = make_float2(dk_[mt][dn][2 * rr], dk_[mt][dn][2 * rr + 1]);
#pragma unroll
        for (int dn = 0; dn < kDvc / 8; ++dn)
          *reinterpret_cast<float2*>(dv + dn * 8) = make_float2(dv_[mt][dn][2 * rr], dv_[mt][dn][2 * rr + 1]);
      }
  }

  /// rkBar of the thread's keys: the partial sums merged over the 4 lanes of a key (the quad,
  /// which holds different queries), written by lane t == 0 of part 0 warps.
  __device__ __forceinline__ void storeRkBar() {
    if constexpr (V::kKeyNorm) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) rkSum_[mt][rr] = quadSum(rkSum_[mt][rr]);
      if (t_ != 0 || part_ != 0) return;
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          const int j = key(mt, rr);
          if (j < lk()) p_.rkBar[static_cast<long long>(head_) * p_.lk + j] = rkSum_[mt][rr];
        }
    }
  }
};

}  // namespace detail

/// Row pass P (1..V::kRowPasses) of variant V under configuration Cfg (see the file comment).
template <class V, class Cfg, int P>
__device__ __forceinline__ void backwardRows(const BwdParams& p) {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  detail::RowsCta<V, Cfg, P> cta(p, attnTcSmem);
  cta.run();
}

/// The gradient kernel body of variant V under configuration Cfg (see the file comment).
template <class V, class Cfg>
__device__ __forceinline__ void backwardGradient(const BwdParams& p) {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  detail::GradientCta<V, Cfg> cta(p, attnTcSmem);
  cta.run();
}

}  // namespace attn_tc
