// KernelPlan (+ its BackwardPlan) -> LLVM IR text for the CPU backend.
//
// Every kernel has the one signature `void kernel(int64_t* args)`: args is an array of
// 8-byte fields (pointers and integers) indexed by Arg below, filled by CpuBackend.cpp.
// A kernel works on one head (the caller offsets the pointers) and on a range of query rows
// (and for the gradient kernel a range of keys), so the caller can thread over
// (batch, head, query block) and over key blocks.
//
//   attn_forward           every forward key pass for rows [r0, r1): o (divided), and the
//                          row statistics (2 slots each) that backward reads
//   attn_backward_rows_N   backward row pass N: sums the row adjoints of level N
//   attn_backward_gradient the gradient pass over rows [r0, r1) x keys [j0, j1): adds to dq
//                          (flags & 1) and to dk, dv (flags & 2); the adjoints of 1/|q_i|
//                          and 1/|k_j| (for l2norm) go to rqbar, rkbar for the caller to
//                          finish (they need all of q_i or k_j)
//
// Loops: key blocks of kKeyBlock keys outside, the task's query rows inside (so a block of
// k and v stays in L1 while every row of the task visits it); in each (row, key block) the
// raw dots q_i·k_j are computed first, then the program's elementwise code per key, then
// the online rescaling, then the weighted sum into o. Fully masked (row, block) pairs are
// skipped. LLVM's O3 vectorises the loops over the head dimension.
#pragma once

#include <string>
#include <vector>

#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::llvmjit {

enum Arg : int {
  kQ, kK, kV, kO, kStats, kRq, kRk, kDout, kAdj, kDq, kDk, kDv, kRqBar, kRkBar,
  kR0, kR1, kJ0, kJ1, kLq, kLk, kD, kDvDim, kFlags, kArgCount
};

constexpr int kKeyBlock = 64;

/// Sizes fixed at compile time (0: read from args at run time). With the head dimensions
/// known, LLVM unrolls and keeps whole rows of q, dq, o in vector registers.
struct CpuSpecialisation {
  int64_t d = 0;   ///< head dimension of q and k
  int64_t dv = 0;  ///< head dimension of v
};

struct CpuKernelSource {
  std::string ir;  ///< the module: every kernel below
  std::string forward = "attn_forward";
  std::vector<std::string> rowPasses;  ///< attn_backward_rows_1 ...
  std::string gradient = "attn_backward_gradient";
  int statSlots = 0;                   ///< reals per query row in `stats`
  int adjointSlots = 0;                ///< reals per query row in `adj`
  std::vector<int> identitySlots;      ///< adj slots the caller fills with dO_i·o_i
  bool needsQueryNorm = false;         ///< rq_i = 1/|q_i| (0 for a zero vector) is read
  bool needsKeyNorm = false;           ///< rk_j = 1/|k_j|
  std::string backwardUnsupported;     ///< empty when backward kernels were generated
  CpuSpecialisation sizes;             ///< what the kernels were specialised for
};

/// `real` is "float" or "double".
CpuKernelSource generateCpuKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                   const CpuSpecialisation& sizes = {});

}  // namespace attn::llvmjit
