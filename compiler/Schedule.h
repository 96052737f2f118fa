// Schedule: how many streaming passes over the keys a program needs, which row
// statistics each pass accumulates, and how the output is accumulated — without ever
// storing an L×L matrix. The result is the backend-neutral KernelPlan every fast backend
// (LLVM, CUDA) compiles.
//
// The idea (docs/ARCHITECTURE.md): a value that needs a finished reduction of its own row
// cannot be computed in the pass that produces that reduction, so reductions cut the key
// loop into passes. The schedule proves which cuts are not needed:
//   - a final normalisation o = sum_j x_ij v_j / sum_j |x_ij| is accumulated in one pass
//     (numerator and normaliser together; the division is deferred to the end);
//   - normalize(exp(e - rowmax(e))) keeps a running maximum and rescales what it has
//     accumulated when the maximum grows (online softmax), in the same pass as e;
//   - normalize((b / rowmax(b))^p) does the same with the factor (m_old / m_new)^p;
//   - those two, used as values inside a larger expression (LSSAR's a, a re-centred
//     softmax), cost one statistics pass that produces the running maximum and the
//     rescaled sum together.
// Anything else that reads a finished row statistic is computed one pass later, by
// recomputing its scores from q and k.
#pragma once

#include <string>
#include <vector>

#include "compiler/IR.h"

namespace attn {

/// A per-row value accumulated over the keys of one pass.
struct RowStatistic {
  enum class Kind {
    Sum,          ///< sum_j x (over unmasked j)
    Mean,         ///< sum_j x / n
    Max,          ///< max_j x, and the first j attaining it (where backward sends rowmax's adjoint)
    Min,          ///< min_j x, and the first j attaining it
    Count,        ///< the number of unmasked j (n, for an expression mask)
    OnlineExp,    ///< running max m of e and sum_j exp(e - m): normalize(exp(e - rowmax(e)))
    OnlinePower,  ///< running max m of b and sum_j (b / m)^p: normalize((b / rowmax(b))^p)
    Normaliser,   ///< the output's normaliser (sum |x|, or the running m and sum of the online forms)
  };
  Kind kind = Kind::Sum;
  ir::NodeId node = -1;     ///< the graph node whose value it is (a reduction or a normalize)
  ir::NodeId operand = -1;  ///< the score value accumulated (x, e or b)
  int pass = 0;             ///< the pass that produces it (1-based)
};

/// How the last pass turns weights into the output row.
struct OutputAccumulation {
  enum class Form {
    Direct,            ///< o = sum_j w v
    DeferredDivision,  ///< o = sum_j x v / sum_j |x|            (w = normalize(x))
    OnlineExp,         ///< o = sum_j exp(e - m) v / sum_j exp(e - m), running m
    OnlinePower,       ///< o = sum_j (b/m)^p v / sum_j (b/m)^p, running m
  };
  Form form = Form::Direct;
  ir::NodeId value = -1;  ///< w (Direct), x (DeferredDivision), e (OnlineExp) or b (OnlinePower)
  ir::NodeId power = -1;  ///< p (OnlinePower)
  double scale = 1;       ///< a constant factor on the result (e.g. -1 for -softmax)
};

/// Work per score element (per query row and key) in one pass.
struct PassCost {
  int dotProducts = 0;      ///< q·k products: 2·d matmul flops each
  bool outputProduct = false;  ///< w·v accumulated into o: 2·Dv matmul flops
  int transcendentals = 0;  ///< exp, log, tanh, erf, a non-integer pow ... (SFU work on a GPU)
  int otherFlops = 0;       ///< add, mul, compare, select, integer powers as multiplications ...
};

struct KeyPass {
  int index = 0;                            ///< 1-based
  std::vector<RowStatistic> produces;       ///< statistics finished at the end of this pass
  std::vector<int> reads;                   ///< indices into KernelPlan::statistics from earlier passes
  bool accumulatesOutput = false;           ///< the last pass
  PassCost cost;
};

struct KernelPlan {
  ir::Graph graph;
  std::vector<RowStatistic> statistics;  ///< every statistic, in pass order
  std::vector<KeyPass> passes;
  OutputAccumulation output;
  /// What forward keeps for backward: o and these statistics (indices), per row; backward
  /// recomputes the scores from q and k.
  std::vector<int> savedForBackward;
};

/// A normalisation node seen as one op, the way the schedule and the derivative see it:
///   Plain  w = x / sum|x|                 normalize(x), operand x
///   Exp    w = softmax(e)                 the stabilised normalize(exp(e - rowmax(e))), operand e
///                                         (exp2: w = softmax(e ln 2))
///   Power  w = b^p / sum |b^p|            the stabilised normalize((b / rowmax(b))^p), operand b
struct NormalizeForm {
  enum class Kind { None, Plain, Exp, Power };
  Kind kind = Kind::None;
  ir::NodeId operand = -1;
  ir::NodeId power = -1;  ///< Power: the constant p
  bool exp2 = false;      ///< Exp: exp2 rather than exp
};
NormalizeForm normalizeForm(const ir::Graph& graph, ir::NodeId id);

/// Schedules `graph` (after simplify and stabiliseNormalize).
KernelPlan schedule(const ir::Graph& graph);

/// The plan for a researcher: passes, statistics, output form, what is saved, cost.
std::string describePlan(const KernelPlan& plan);

}  // namespace attn
