// The CUDA backend as a LibTorch autograd op: forward runs the program's generated CUDA
// kernels (the tensor-core forward for fp16/bf16 inputs with head dims multiple of 16, the
// float32 kernels otherwise) and saves o and the row statistics; backward runs the same
// path's backward kernels. Built with the CUDA toolkit (ATTN_HAVE_CUDA); the GPU itself is needed
// only when called, and its absence is a clear UserError.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "compiler/IR.h"

namespace attn {

/// Compiled CUDA kernels of one program, per (dtype, head dims, device), on first use.
struct CudaProgramState;
std::shared_ptr<CudaProgramState> makeCudaProgramState(std::shared_ptr<const ir::Graph> graph);

/// o [B, H, Lq, Dv] for validated 4-D q, k, v on a CUDA device (float16, bfloat16 or
/// float32); the result has q's dtype and carries autograd history when the inputs
/// require grad.
at::Tensor cudaAttention(CudaProgramState& state, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

/// Throws UserError saying why when this process cannot run the cuda backend (not built
/// with CUDA, no driver, no GPU).
void requireCudaBackend();

}  // namespace attn
