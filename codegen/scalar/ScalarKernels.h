// The scalar kernels of a program: KernelPlan (+ its BackwardPlan) -> forward, backward row
// passes and gradient pass as loops over key blocks and query rows, written through a
// KernelWriter (KernelWriter.h), so one generator serves two targets:
//   - the CPU backend (codegen/llvm/CpuCodegen.h): LLVM IR, vectorised over the head dim;
//   - the CUDA backend (codegen/cuda/CudaCodegen.h): CUDA C++ device functions, the float32
//     path (one GPU thread per query row or key) and the reference for its tensor-core
//     kernels' per-element hooks.
//
// Every kernel has the one signature `void kernel(int64_t* args)`: args is an array of
// 8-byte fields (pointers and integers) indexed by Arg below, filled by the backend.
// A kernel works on one head (the caller offsets the pointers) and on a range of query rows
// (and for the gradient kernel a range of keys), so the caller can spread (batch, head,
// query block) and key blocks over threads.
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
// k and v stays in cache while every row of the task visits it); in each (row, key block)
// the raw dots q_i·k_j are computed first, then the program's elementwise code per key,
// then the online rescaling, then the weighted sum into o. Fully masked (row, block) pairs
// are skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "codegen/scalar/KernelWriter.h"
#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::kernels {

enum Arg : int {
  kQ, kK, kV, kO, kStats, kRq, kRk, kDout, kAdj, kDq, kDk, kDv, kRqBar, kRkBar,
  kR0, kR1, kJ0, kJ1, kLq, kLk, kD, kDvDim, kFlags, kArgCount
};

constexpr int kKeyBlock = 64;

/// One call's sizes as the backends' drivers see them: row-major arrays with the heads
/// flattened, q [heads, Lq, D], k [heads / group, Lk, D], v [heads / group, Lk, Dv].
struct Shape {
  int64_t heads = 1;  ///< batch × query heads
  int64_t lq = 0, lk = 0, d = 0, dv = 0;
  /// Query heads per key/value head (grouped-query attention; 1 without it): flattened
  /// query head h reads key/value head h / group, and dk, dv sum over the group.
  int64_t group = 1;
  int64_t kvHeads() const { return heads / group; }
};

/// Sizes fixed at compile time (0: read from args at run time). With the head dimensions
/// known, the CPU kernels keep whole rows of q, dq, o in vector registers.
struct KernelSizes {
  int64_t d = 0;   ///< head dimension of q and k
  int64_t dv = 0;  ///< head dimension of v
};

struct KernelFunction {
  std::string name;
  std::string text;  ///< the target's text of the whole function
};

/// The kernels and what their caller must know to run them.
struct ScalarKernels {
  std::vector<KernelFunction> functions;  ///< forward, row passes, gradient (in that order)
  std::set<std::string> declarations;     ///< module-level declarations they need
  std::string forward = "attn_forward";
  std::vector<std::string> rowPasses;  ///< attn_backward_rows_1 ...
  std::string gradient = "attn_backward_gradient";
  int statSlots = 0;                   ///< reals per query row in `stats`
  int adjointSlots = 0;                ///< reals per query row in `adj`
  std::vector<int> identitySlots;      ///< adj slots the caller fills with dO_i·o_i
  bool needsQueryNorm = false;         ///< rq_i = 1/|q_i| (0 for a zero vector) is read
  bool needsKeyNorm = false;           ///< rk_j = 1/|k_j|
  std::string backwardUnsupported;     ///< empty when backward kernels were generated
  KernelSizes sizes;                   ///< what the kernels were specialised for
};

/// Makes the writer of one function, `name`, on element type `real`.
using WriterFactory = std::function<std::unique_ptr<KernelWriter>(const std::string& name, const std::string& real)>;

/// `real` is "float" or "double".
ScalarKernels generateScalarKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                    const KernelSizes& sizes, const WriterFactory& makeWriter);

/// The per-element hooks of a tiled (tensor-core) forward kernel, one function per forward
/// pass P, `attn_hook_P(stats, i, n, lk, rq, s, j, rk, x)`: for query row i (absolute
/// position; n = its visible key count, lk = the key count, rq = 1/|q_i|) whose finished
/// statistics are stats[2*kStats] (those of passes before P), and key j with raw dot s =
/// q_i·k_j (rk = 1/|k_j|), it writes
///   x[s]          the operand of each statistic s produced in pass P: the term summed
///                 (Sum; |x| for a normaliser's sum), averaged (Mean), compared (Max, Min),
///                 the exponent (OnlineExp, natural-log units) or the base (OnlinePower);
///                 nothing for Count and the output's Normaliser
///   x[kStats]     in the last pass, the output operand: the weight (Direct), the value
///                 normalised (DeferredDivision), the exponent (OnlineExp) or base (OnlinePower)
///   x[kStats + 1] 1 when the element is visible under an expression mask, else 0
/// where kStats = plan.statistics.size(). The skeleton does the accumulating.
std::vector<KernelFunction> generateElementHooks(const KernelPlan& plan, const BackwardPlan& backward,
                                                const std::string& real, const KernelSizes& sizes,
                                                const WriterFactory& makeWriter);

/// The per-element hooks of tiled (tensor-core) backward kernels, in this order:
///   attn_bwd_rows_P(stats, adj, i, n, lk, rq, s, g, j, rk, x)  for each row pass P:
///       x[a] = the element's term of each row adjoint a of level P (the kernel sums them
///       over the row's keys and adds them to adj[a]); x[A] = visibility (A = adjoints)
///   attn_bwd_rowfinish_P(stats, adj, i, n, lk, rq)  after row pass P, once per row: the
///       row users' shares of that level's row-value adjoints, on adj in place
///   attn_bwd_grad(stats, adj, i, n, lk, rq, s, g, j, rk, x)  the gradient pass:
///       x[0] = dS (dq_i += dS k_j, dk_j += dS q_i), x[1] = w (dv_j += w dO_i),
///       x[2] = the term of rqBar_i, x[3] = of rkBar_j, x[4] = visibility
/// with g = dO_i·v_j and the rest as for generateElementHooks; adj holds the row's
/// adjoints (BackwardPlan order; identity ones filled with dO_i·o_i by the caller).
std::vector<KernelFunction> generateBackwardHooks(const KernelPlan& plan, const BackwardPlan& backward,
                                                 const std::string& real, const KernelSizes& sizes,
                                                 const WriterFactory& makeWriter);

}  // namespace attn::kernels
