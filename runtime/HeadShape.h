// The kernels' view of validated 4-D q [B,Hq,Lq,D], k [B,Hkv,Lk,D], v [B,Hkv,Lk,Dv]: batch
// and heads flattened (kernels::Shape; group = Hq / Hkv), for the CPU and CUDA autograd ops.
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
  s.group = q.size(1) / k.size(1);  // validateInputs made it exact
  return s;
}

}  // namespace attn
