// KernelPlan (+ its BackwardPlan) -> one LLVM IR module for the CPU backend: the scalar
// kernels of codegen/scalar/ScalarKernels.h (the loops, the kernels' signature and
// arguments are described there) written as LLVM IR by TextIR.h. LLVM's O3 vectorises the
// loops over the head dimension (and, when the kernels are specialised for the head
// dimensions, over the 64 keys of a transposed key block).
#pragma once

#include <string>

#include "codegen/scalar/ScalarKernels.h"

namespace attn::llvmjit {

using namespace attn::kernels;  // Arg, kKeyBlock: the kernels' calling convention

using CpuSpecialisation = kernels::KernelSizes;

struct CpuKernelSource : kernels::ScalarKernels {
  std::string ir;  ///< the module: every kernel
};

/// `real` is "float" or "double".
CpuKernelSource generateCpuKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                   const CpuSpecialisation& sizes = {});

}  // namespace attn::llvmjit
