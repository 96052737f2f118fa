// The kernels' view of validated 4-D q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]: batch and
// heads flattened (kernels::Shape), for the CPU and CUDA autograd ops.
#pragma once

#include <ATen/core/Tensor.h>

#include "codegen/scalar/ScalarKernels.h"

namespace attn {

inline kernels::Shape headShape(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  kernels::Shape s;
  s.heads = q.size(0) * q.size(1);
  s.lq = q.size(2);
  s.lk = k.size(2);
  s.d = q.size(3);
  s.dv = v.size(3);
  return s;
}

}  // namespace attn
