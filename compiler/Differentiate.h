// Differentiate: the schedule of the backward pass, derived from the forward plan by
// reverse-mode reasoning over the same graph.
//
// Forward saves o and the plan's row statistics (a few numbers per row); backward
// recomputes every score value from q, k and those statistics, so it never stores L×L.
// What backward needs beyond that are *row adjoints*: per-row sums over the keys of
// adjoint terms, one per
//   - normalisation node N (w = normalize(x), softmax(e), b^p / sum b^p):
//       T_N = sum_j adj(w_ij) w_ij,   and then adj(x_ij) = (adj(w_ij) - sign(x_ij) T_N) / sum|x|
//     (for softmax adj(e_ij) = w_ij (adj(w_ij) - T_N); for powers the chain rule through b^p);
//   - row value r that carries a gradient (a row reduction, or arithmetic on one):
//       R_r = sum_j of what its score-element users send back, plus its row users' share;
//     a reduction sends R_r back to its operand (rowsum: R, rowmean: R/n,
//     rowmax/rowmin: R to the first key at the extreme, whose index forward saves with the
//     statistic: never by comparing a recomputed value with the saved one, which another
//     kernel, a vectorised exp or another order of summation may round differently).
// The FlashAttention identity is the first of these found by algebra: when w = normalize(..)
// is the output itself (o = c sum_j w_ij v_j and adj(w_ij) = c dO_i·v_j), then
// T = sum_j adj(w_ij) w_ij = dO_i·o_i, known before any pass. It is used where the
// normaliser, as accumulated, is at least 1 (softmax, and b^p rescaled by the row maximum):
// for a plain x / sum|x| the sum can be tiny, and dividing the difference of two
// independently rounded numbers by it turns float32 rounding into visible error (a row with
// one key would get a non-zero gradient); a row pass instead sums T from the same g_j the
// gradient pass uses. Every other row adjoint needs a pass over the keys, and a row adjoint can only be summed once every adjoint it depends on
// is finished: that dependency depth is its *level*. Backward is then: one row pass per
// level (1..levels), then one gradient pass that computes dq (over the keys of each query
// row) and dk, dv (over the queries of each key).
//
// Softmax and LSSAR's outer re-weighting need no row pass (the identity covers them); LSSA
// needs one (T of its l1norm), LSSAR one (T of its inner l1norm).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/Schedule.h"

namespace attn {

struct RowAdjoint {
  enum class Kind {
    Normalisation,  ///< T_N = sum_j adj(w) w for a normalisation node N
    RowValue,       ///< R_r, the adjoint of a row value r
    /// c, a value within rounding of a normalisation's T, by which T is shifted when it is
    /// summed in a row pass (`shifted`): dO·o for the output (identity), else T summed the
    /// plain way one pass earlier. The pass sums T - c = sum_j w_j (adj(w_j) - c) (sum_j w_j
    /// = 1), and the gradient uses adj(w_j) - sign(w_j) T = (adj(w_j) - sign(w_j) c) -
    /// sign(w_j) (T - c).
    /// For the key carrying almost all the weight, adj(w_j) - T is a difference of two nearly
    /// equal numbers; computed as (adj(w_j) - c) - (T - c), with c within rounding of both,
    /// it loses nothing (a row with one key gets exactly 0), where adj(w_j) - T computed
    /// directly is rounding noise, which the power form's chain rule multiplies by p.
    Shift,
  };
  Kind kind = Kind::RowValue;
  ir::NodeId node = -1;
  int level = 0;          ///< 0: known without a pass (the identity); else the row pass that sums it
  bool identity = false;  ///< T = dO·o (or, for a Shift, c = dO·o)
  bool shifted = false;   ///< a Normalisation summed as T - c (its Shift is shiftOf[node])
};

/// A power normalisation's T is used unshifted only up to this p (the output's from the
/// identity dO·o, free; another's summed in a row pass): its rounding against the adj(w_j)
/// the gradient uses is multiplied by p in the chain rule. Above it T is summed relative to
/// a shift c (RowAdjoint::Shift), which costs an inner normalisation one more row pass.
constexpr double kIdentityMaxPower = 16;

struct BackwardPlan {
  std::vector<RowAdjoint> adjoints;     ///< sorted by node, then the Shifts
  std::map<ir::NodeId, int> adjointOf;  ///< node -> index into adjoints (not the Shifts)
  std::map<ir::NodeId, int> shiftOf;    ///< node -> the index of its Shift
  int rowPasses = 0;                    ///< passes over the keys before the gradient pass
  /// The backward pass (1..rowPasses+1) from which adj(x) of a score node is computable;
  /// 0 for nodes that carry no gradient.
  std::vector<int> adjointPass;
  std::vector<bool> carriesGradient;  ///< depends on q or k
  /// Why the derivative is not supported (empty when it is): a program whose derivative
  /// attn cannot schedule yet, said in the user's terms.
  std::string unsupported;
};

/// The backward schedule of `plan`.
BackwardPlan differentiate(const KernelPlan& plan);

/// For `attn explain`: the backward passes and what each sums.
std::string describeBackward(const KernelPlan& plan, const BackwardPlan& backward);

/// The node's operands as the derivative sees them: a normalisation node (a stabilised
/// softmax or power included) has the one operand it normalises; everything else its own.
std::vector<ir::NodeId> atomicOperands(const ir::Graph& graph, ir::NodeId id);

}  // namespace attn
