// The CPU backend as a LibTorch autograd op: forward runs the JIT-compiled kernels and
// saves o and the row statistics; backward runs the derived backward kernels. Built only
// with LLVM (ATTN_HAVE_LLVM); without it the cpu backend is a clear UserError.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "compiler/IR.h"

namespace attn {

/// Compiled CPU kernels of one program, scheduled and compiled on first use (per dtype and
/// head dimensions).
struct CpuProgramState;
std::shared_ptr<CpuProgramState> makeCpuProgramState(std::shared_ptr<const ir::Graph> graph);

/// o [B, H, Lq, Dv] for validated 4-D q, k, v; float32 arithmetic, float64 for float64
/// inputs; the result carries autograd history when the inputs require grad.
/// `documents`: validated ids (validateDocuments: int64 [1 or B, Lk] on the CPU) or undefined.
at::Tensor cpuAttention(CpuProgramState& state, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& documents = {});

}  // namespace attn
