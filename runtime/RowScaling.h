// Rescaling the rows of q or k that a program only uses through l2norm, for the fused
// kernels (CpuOp, CudaOp). l2norm is scale-invariant, but the kernels compute the raw dot
// q_i . k_j and |x|^2 and normalise afterwards: at |x| ~ 1e20 those overflow float32, at
// 1e-30 they underflow. Each row is multiplied by a power of two that brings its largest
// |x_c| into [1, 2): exact in binary floating point, so on ordinary inputs the kernels see
// the same numbers up to that exponent and give the same results. The factor is a constant
// for autograd (the program does not depend on it): dq is the kernels' dq times it.
#pragma once

#include <ATen/ATen.h>

namespace attn {

/// x [.., D] with each row times 2^-e, e = floor(log2(max_c |x_c|)); rows that are zero,
/// or hold a NaN or inf, unchanged. The result has x's dtype.
inline at::Tensor scaleRowsToUnit(const at::Tensor& x) {
  at::Tensor largest = x.detach().abs().amax(-1, true).to(at::kFloat);
  at::Tensor e = at::floor(at::log2(largest));
  e = at::where(at::isfinite(e), e, at::zeros_like(e));
  // Two factors, each at most 2^75 for float32's exponents (-149 .. 127): one 2^-e could be
  // beyond float32 for subnormal rows.
  at::Tensor half = at::floor(e / 2);
  at::Tensor scaled = x.to(at::kFloat) * at::exp2(-half) * at::exp2(half - e);
  return x.scalar_type() == at::kDouble ? x * at::exp2(-e.to(at::kDouble)) : scaled.to(x.scalar_type());
}

}  // namespace attn
