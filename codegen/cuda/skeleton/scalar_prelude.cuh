// scalar_prelude.cuh — the fixed part of attn's float32 ("scalar") CUDA kernels.
//
// The generated source (codegen/cuda/CudaCodegen.cpp) defines the argument indices
// (enum AttnArg: kQ .. kArgCount, the order of codegen/scalar/ScalarKernels.h), includes
// this file, then writes one `ATTN_DEVICE void NAME(long long* args)` per kernel (the
// scalar generator's loops, through codegen/cuda/CudaWriter.h) and small __global__
// wrappers that call them: one GPU thread per query row (forward, row passes, dq) or per
// key (dk, dv), one grid row (blockIdx.y) per batch·head.
//
// The same text compiles as host C++ (no __CUDACC__): the device functions become plain
// C functions and the tests run the generated CUDA C++ on the CPU against the
// reference. This file is not the tensor-core path (tc_forward.cuh).
#pragma once

#include "attn_math.cuh"

/// The kernels' argument array for a whole batch: pointers to head 0, sizes, and how many
/// reals per row `stats` and `adj` hold (set by the host, see CudaBackend).
struct AttnScalarParams {
  long long args[kArgCount];
  long long heads;
  long long statSlots, adjointSlots;
};

#ifdef __CUDACC__
/// The head blockIdx.y's view of p's arguments (every pointer moved to that head's rows).
ATTN_INLINE void attn_head_args(const AttnScalarParams& p, long long h, long long* a) {
  for (int s = 0; s < kArgCount; ++s) a[s] = p.args[s];
  const long long lq = a[kLq], lk = a[kLk], d = a[kD], dv = a[kDvDim];
  const long long bytes = static_cast<long long>(sizeof(float));
  auto move = [&](int slot, long long perHead) {
    if (a[slot] != 0) a[slot] += h * perHead * bytes;
  };
  move(kQ, lq * d); move(kK, lk * d); move(kV, lk * dv); move(kO, lq * dv);
  move(kStats, lq * p.statSlots); move(kRq, lq); move(kRk, lk);
  move(kDout, lq * dv); move(kAdj, lq * p.adjointSlots);
  move(kDq, lq * d); move(kDk, lk * d); move(kDv, lk * dv); move(kRqBar, lq); move(kRkBar, lk);
}

/// This thread's index along x, and whether it is below `count`.
ATTN_INLINE bool attn_thread(long long count, long long* index) {
  *index = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  return *index < count;
}

/// out[r] = 1/|x_r| (0 for a zero row): the l2norm's inverse norms, rows = heads·L.
extern "C" __global__ void attn_inverse_norms(const float* x, float* out, long long rows, long long d) {
  long long r;
  if (!attn_thread(rows, &r)) return;
  // Squares of x / max |x| (double holds float32's squares, but not float32's 1/|x| cubed
  // below without the reordering there).
  double m = 0;
  for (long long c = 0; c < d; ++c) m = fmax(m, fabs(static_cast<double>(x[r * d + c])));
  double s = 0;
  for (long long c = 0; c < d; ++c) {
    const double u = x[r * d + c] / (m == 0 ? 1 : m);  // a NaN stays (fmax dropped it)
    s += u * u;
  }
  out[r] = s == 0 ? 0.f : static_cast<float>(1 / (m * sqrt(s)));
}

/// adj[r][slot] = dO_r · o_r: the row adjoints the FlashAttention identity gives.
extern "C" __global__ void attn_identity_adjoint(const float* dout, const float* o, float* adj, long long rows,
                                                 long long dv, long long slots, long long slot) {
  long long r;
  if (!attn_thread(rows, &r)) return;
  double s = 0;
  for (long long c = 0; c < dv; ++c) s += static_cast<double>(dout[r * dv + c]) * o[r * dv + c];
  adj[r * slots + slot] = static_cast<float>(s);
}

/// dx_r += -bar_r · rinv_r^3 · x_r: the l2norm's share of the gradient, once bar is whole.
extern "C" __global__ void attn_finish_norm(const float* rinv, const float* bar, const float* x, float* dx,
                                            long long rows, long long d) {
  long long r;
  if (!attn_thread(rows, &r)) return;
  // (-bar r) r (r x): each factor of the gradient's size, where r^3 alone over- or underflows.
  const float f = -bar[r] * rinv[r] * rinv[r];
  for (long long c = 0; c < d; ++c) dx[r * d + c] += f * (rinv[r] * x[r * d + c]);
}
#endif
