#include "compiler/StabiliseNormalize.h"

#include <cmath>

#include "compiler/IRRewriter.h"

namespace attn::ir {

namespace {

class Stabiliser : public IRRewriter {
 protected:
  NodeId rewrite(const Node& n, const std::vector<NodeId>& ops, Graph& g) override {
    if (n.op != Op::Normalize) return IRRewriter::rewrite(n, ops, g);
    const NodeId x = ops[0];
    const Node inner = g.node(x);  // a copy: g.make below may reallocate the nodes
    if (inner.op == Op::Exp || inner.op == Op::Exp2) {
      NodeId e = inner.operands[0];
      if (!isShiftedByRowMax(g, e)) {
        NodeId shifted = g.make(Op::Sub, {e, g.make(Op::RowMax, {e})});
        return g.make(Op::Normalize, {g.make(inner.op, {shifted})});
      }
    }
    if (inner.op == Op::Pow) {
      NodeId base = inner.operands[0];
      const Node exponent = g.node(inner.operands[1]);
      if (exponent.op == Op::Const && exponent.value > 0 && !isScaledByRowMax(g, base)) {
        bool integer = std::floor(exponent.value) == exponent.value;
        NodeId scale = -1;
        if (isNonNegative(g, base)) scale = g.make(Op::RowMax, {base});
        else if (integer) scale = g.make(Op::RowMax, {g.make(Op::Abs, {base})});
        if (scale >= 0) {
          NodeId scaled = g.make(Op::SafeDiv, {base, scale});
          return g.make(Op::Normalize, {g.make(Op::Pow, {scaled, inner.operands[1]})});
        }
      }
    }
    return IRRewriter::rewrite(n, ops, g);
  }

 private:
  // e = x - rowmax(x)?
  static bool isShiftedByRowMax(const Graph& g, NodeId e) {
    const Node& n = g.node(e);
    if (n.op != Op::Sub) return false;
    const Node& m = g.node(n.operands[1]);
    return m.op == Op::RowMax && m.operands[0] == n.operands[0];
  }
  // b = safediv(x, rowmax(x)) or safediv(x, rowmax(abs(x)))?
  static bool isScaledByRowMax(const Graph& g, NodeId b) {
    const Node& n = g.node(b);
    if (n.op != Op::SafeDiv) return false;
    const Node& m = g.node(n.operands[1]);
    if (m.op != Op::RowMax) return false;
    NodeId inside = m.operands[0];
    if (inside == n.operands[0]) return true;
    const Node& a = g.node(inside);
    return a.op == Op::Abs && a.operands[0] == n.operands[0];
  }
};

}  // namespace

Graph stabiliseNormalize(const Graph& graph) { return Stabiliser().run(graph); }

}  // namespace attn::ir
