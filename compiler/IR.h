// The score IR: one attention head as a per-row dataflow graph in SSA form.
//
// Semantics of the whole IR. A program computes, for one query row i (an absolute
// position: with Lq queries and Lk keys, query row r has i = Lk - Lq + r) and every key
// j in 0..Lk-1 that the mask lets through, a weight w_ij (the `out` node); the output row
// is o_i = sum_j w_ij v_j over unmasked j only (a row with no unmasked key gives o_i = 0).
// Every node has a kind:
//   Constant  one value for the whole call (literals, params, L, d)
//   Row       one value per query row i (i, n, row reductions)
//   Score     one value per (i, j)
//   QueryVec  a length-d vector per query row; KeyVec a length-d vector per key
// and a type (Number or Bool; bools are 0/1 wherever a number is needed).
// Arithmetic is float32 or wider, whatever the input dtype.
// Row reductions (RowSum, RowMax, RowMin, RowMean) range over unmasked j only; over a row
// with no unmasked key they give 0. Normalize(x) = x / RowSum(Abs(x)), and 0 where that sum
// is 0 (a row whose normaliser is 0 gives weights 0, never NaN); SafeDiv(a, b) = a / b,
// and 0 where b is 0. L2Norm(x) = x / ||x||, and 0 for a zero vector; it is invariant to
// the vector's scale, and backends must keep it so at any scale float32 holds (|x| ~ 1e20
// or 1e-30: normalise by max |x_c| first).
//
// NaN and infinity follow IEEE 754 in the arithmetic's precision, with these choices:
// - Every elementwise op gives NaN for a NaN operand, relu, relu6, abs, sign, min, max and
//   clamp included (C's fmax and ATen's sign drop it); pow keeps IEEE's pow(x, 0) = 1 and
//   pow(1, y) = 1. Comparisons with a NaN are false (!= is true), so a NaN that only
//   reaches a condition is not passed on; Select passes on the NaN of the branch it takes.
// - RowSum and RowMean of a row holding a NaN are NaN; so are RowMax and RowMin (a NaN
//   wins). RowMax over a row whose values are all -inf is -inf (0 only for no key).
// - x - RowMax(x), softmax's shift, is x - 0 where RowMax(x) is -inf (every visible x is
//   -inf): softmax of such a row is 0, like any row whose normaliser is 0.
// - Masked keys take no part at all: not in reductions, and not in o_i = sum_j w_ij v_j,
//   where a masked key's 0 weight times its NaN or inf would be NaN.
// So a NaN that row i can see (in q_i, in a visible k_j or v_j, or arising in the row's
// arithmetic) gives NaN in row i's output (for v_j, in the columns where v_j is NaN), and
// nothing else; a row that sees no key is 0 whatever q_i holds. Constants are folded in
// float64 and then rounded to the arithmetic's precision (beyond float32's range: +-inf).
//
// Nodes are hash-consed: building a node equal to an existing one (same op, operands,
// value) returns the existing id, so structural equality is id equality, and common
// subexpressions are shared by construction. Ids are topologically ordered (operands
// before users).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "compiler/CheckedProgram.h"

namespace attn::ir {

enum class Op {
  // Leaves
  Const,     ///< `value` (literals and params; `label` keeps a param's name for printing)
  Query,     ///< q: QueryVec
  Key,       ///< k: KeyVec
  RowIndex,  ///< i: Row, the query's absolute position
  KeyIndex,  ///< j: Score
  RowCount,  ///< n: Row, the number of unmasked keys in row i
  KeyCount,  ///< L: Constant, the number of keys
  HeadDim,   ///< d: Constant
  // Elementwise on scalars (kind = the largest operand kind)
  Neg, Not, Add, Sub, Mul, Div, SafeDiv, Pow, Min, Max, Clamp,
  Lt, Le, Gt, Ge, Eq, Ne, And, Or,
  Select,  ///< operands {cond, then, else}
  Exp, Log, Exp2, Log2, Sqrt, Rsqrt, Abs, Sign, Tanh, Sigmoid, Softplus, Relu, Relu6,
  Gelu, GeluTanh, Silu, Mish,
  // Vectors
  L2Norm,    ///< keeps the vector's side
  VecScale,  ///< {vector, scalar}: a Constant scalar, or a Row scalar for a query vector
  Dot,       ///< {query vector, key vector} -> Score
  // Row reductions over unmasked j: Score (or lower) -> Row
  RowSum, RowMax, RowMin, RowMean,
  // Normalisation: Normalize(x) = x / RowSum(Abs(x)), 0 where that is 0
  Normalize,
};

const char* opName(Op op);  ///< "add", "rowsum", ...

/// RowSum, RowMax, RowMin or RowMean: a reduction over the unmasked keys of a row.
inline bool isRowReduction(Op op) {
  return op == Op::RowSum || op == Op::RowMax || op == Op::RowMin || op == Op::RowMean;
}

using NodeId = int32_t;

struct Node {
  Op op = Op::Const;
  ValueKind kind = ValueKind::Constant;
  ValueType type = ValueType::Number;
  std::vector<NodeId> operands;
  double value = 0;    ///< Const only
  std::string label;   ///< a name for printing (a let's or param's); not part of identity
};

enum class MaskKind { Causal, Full, Window, Expr };

/// A program: the nodes, the weights (`out`), the mask, and the params it was built with.
class Graph {
 public:
  /// Adds (or finds) a node; checks operand count and kinds (an internal error otherwise).
  NodeId make(Op op, std::vector<NodeId> operands, double value = 0);
  NodeId constant(double value) { return make(Op::Const, {}, value); }
  /// Gives a node a printing label (the first label given wins).
  void label(NodeId id, const std::string& name);

  const Node& node(NodeId id) const { return nodes_.at(static_cast<size_t>(id)); }
  size_t size() const { return nodes_.size(); }
  const std::vector<Node>& nodes() const { return nodes_; }

  std::string name;
  NodeId out = -1;
  MaskKind mask = MaskKind::Full;
  /// Window: the width W (a Constant). Expr: the predicate (a Bool of kind <= Score that
  /// uses only i, j, L, d and constants). -1 for Causal and Full.
  NodeId maskExpr = -1;
  /// `mask ... per document`: the mask holds within each document only (ids given at call
  /// time, each document one contiguous run of positions); i, j, L and n are the
  /// document's: row i of a document starting at s is at position i - s of a sequence of
  /// the document's length. The kernels need not know: the drivers run each document as
  /// its own sequence (docs/LANGUAGE-NOTES.md, "Documents").
  bool perDocument = false;
  std::vector<CheckedParam> params;

 private:
  std::vector<Node> nodes_;
  std::map<std::tuple<Op, std::vector<NodeId>, uint64_t>, NodeId> index_;  ///< value by bit pattern
};

/// Lowers a checked attention: lets become labelled nodes, params constants, fns are
/// already inlined; l1norm(x) becomes Normalize(x) and softmax(x) becomes
/// Normalize(Exp(x - RowMax(x))), exactly the identities LANGUAGE.md defines them by.
Graph lower(const CheckedAttention& attention);

/// The nodes reachable from `out` and the mask, in order (what later stages walk).
std::vector<NodeId> liveNodes(const Graph& graph);

/// A readable listing, one node per line: `%7 = mul %5, %6    score   ; s`.
std::string print(const Graph& graph);

/// The expression rooted at `id` as an S-expression of op names, e.g.
/// "(normalize (exp (sub (dot q k) (rowmax (dot q k)))))": structure only, no ids or labels.
std::string expression(const Graph& graph, NodeId id);

/// The expression rooted at `id` as source-like infix text; labelled nodes below the root
/// print as their label (a let's name), so "relu(n * a - (i < 3 ? 0 : 1))".
std::string formula(const Graph& graph, NodeId id);

/// Is the node's value >= 0 wherever it is defined? (A sound, incomplete analysis.)
bool isNonNegative(const Graph& graph, NodeId id);

/// Does every use of q (side Op::Query) or k (Op::Key) go through an L2Norm? Then the
/// program does not change when each row of that input is multiplied by a positive number
/// (l2norm(c x) = x / |x| for c > 0), and a backend may rescale the rows for its arithmetic.
bool usedOnlyNormalised(const Graph& graph, Op side);

}  // namespace attn::ir
