// tc_support.cuh: the small kernels a tensor-core module launches around the forward and
// backward skeletons (tc_forward.cuh, tc_backward.cuh), as device functions templated on the
// element type. The generator writes one `extern "C" __global__` wrapper per kernel it needs
// (CudaCodegen.cpp), with Config::Elem, and launches it with one thread per row (rows =
// heads * L, a 1-D grid).
//
// What it is: per-row loops in float32 over Elem inputs (__half or __nv_bfloat16): the
// inverse norms l2norm needs, the row adjoints the FlashAttention identity gives, and the
// l2norm's share of the gradient. What it isn't: the float32 modules' versions of the same
// kernels (scalar_prelude.cuh, which accumulate in double over float inputs).
#pragma once

namespace attn_tc {

/// This thread's row in a 1-D launch of one thread per row.
__device__ __forceinline__ long long supportRow() {
  return static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}

/// out[r] = 1/|x_r| (0 for a zero row), for l2norm: squares of x / max |x|, which neither
/// overflow nor underflow at any scale bf16 holds (l2norm is scale-invariant).
template <class Elem>
__device__ __forceinline__ void inverseNorms(const Elem* x, float* out, long long rows, long long d) {
  const long long r = supportRow();
  if (r >= rows) return;
  float m = 0.f, s = 0.f;
  for (long long c = 0; c < d; ++c) m = fmaxf(m, fabsf(static_cast<float>(x[r * d + c])));
  for (long long c = 0; c < d; ++c) {
    const float e = static_cast<float>(x[r * d + c]) / (m == 0.f ? 1.f : m);
    s += e * e;
  }
  out[r] = s == 0.f ? 0.f : 1.f / (m * sqrtf(s));
}

/// adj[r][slot] = dO_r . o_r: the row adjoints the FlashAttention identity gives.
template <class Elem>
__device__ __forceinline__ void identityAdjoint(const Elem* dout, const Elem* o, float* adj, long long rows,
                                                long long dv, long long slots, long long slot) {
  const long long r = supportRow();
  if (r >= rows) return;
  float s = 0.f;
  for (long long c = 0; c < dv; ++c) s += static_cast<float>(dout[r * dv + c]) * static_cast<float>(o[r * dv + c]);
  adj[r * slots + slot] = s;
}

/// dx_r += -bar_r rinv_r^3 x_r: the l2norm's share of the gradient, once bar is whole.
template <class Elem>
__device__ __forceinline__ void finishNorm(const float* rinv, const float* bar, const Elem* x, float* dx,
                                           long long rows, long long d) {
  const long long r = supportRow();
  if (r >= rows) return;
  const float f = -bar[r] * rinv[r] * rinv[r];  // (-bar r) r (r x): r^3 alone over- or underflows
  for (long long c = 0; c < d; ++c) dx[r * d + c] += f * (rinv[r] * static_cast<float>(x[r * d + c]));
}

}  // namespace attn_tc
