#include "compiler/Simplify.h"

#include "compiler/IRRewriter.h"
#include "compiler/ScalarOps.h"

namespace attn::ir {

namespace {

class Simplifier : public IRRewriter {
 protected:
  NodeId rewrite(const Node& n, const std::vector<NodeId>& ops, Graph& g) override {
    auto isConst = [&](NodeId id, double v) {
      const Node& c = g.node(id);
      return c.op == Op::Const && c.value == v;
    };
    auto isNumber = [&](NodeId id) { return g.node(id).type == ValueType::Number; };

    if (isElementwise(n.op)) {
      bool allConst = !ops.empty();
      std::vector<double> values;
      for (NodeId o : ops) {
        allConst = allConst && g.node(o).op == Op::Const;
        values.push_back(g.node(o).value);
      }
      if (allConst) return g.constant(applyScalar(n.op, values.data()));
    }
    switch (n.op) {
      case Op::Mul:
        if (isConst(ops[1], 1) && isNumber(ops[0])) return ops[0];
        if (isConst(ops[0], 1) && isNumber(ops[1])) return ops[1];
        break;
      case Op::Add:
        if (isConst(ops[1], 0) && isNumber(ops[0])) return ops[0];
        if (isConst(ops[0], 0) && isNumber(ops[1])) return ops[1];
        break;
      case Op::Sub:
        if (isConst(ops[1], 0) && isNumber(ops[0])) return ops[0];
        break;
      case Op::Div:
        if (isConst(ops[1], 1) && isNumber(ops[0])) return ops[0];
        if (const Node& den = g.node(ops[1]); den.op == Op::RowSum) {
          NodeId summed = den.operands[0];
          const Node& s = g.node(summed);
          if (s.op == Op::Abs && s.operands[0] == ops[0]) return g.make(Op::Normalize, {ops[0]});
          if (summed == ops[0] && isNonNegative(g, ops[0])) return g.make(Op::Normalize, {ops[0]});
        }
        break;
      case Op::Pow:
        if (isConst(ops[1], 1) && isNumber(ops[0])) return ops[0];
        break;
      case Op::Neg:
        if (g.node(ops[0]).op == Op::Neg) return g.node(ops[0]).operands[0];
        break;
      case Op::Select:
        if (g.node(ops[0]).op == Op::Const) return g.node(ops[0]).value != 0 ? ops[1] : ops[2];
        break;
      default:
        break;
    }
    return IRRewriter::rewrite(n, ops, g);
  }
};

}  // namespace

Graph simplify(const Graph& graph) { return Simplifier().run(graph); }

}  // namespace attn::ir
