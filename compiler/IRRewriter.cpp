#include "compiler/IRRewriter.h"

namespace attn::ir {

Graph IRRewriter::run(const Graph& in) {
  Graph out;
  out.name = in.name;
  out.mask = in.mask;
  out.perDocument = in.perDocument;
  out.params = in.params;
  std::vector<NodeId> mapped(in.size(), -1);
  for (NodeId id : liveNodes(in)) {
    const Node& n = in.node(id);
    std::vector<NodeId> operands;
    for (NodeId o : n.operands) {
      ATTN_INTERNAL_ASSERT(mapped[static_cast<size_t>(o)] >= 0, "operand rewritten after its user");
      operands.push_back(mapped[static_cast<size_t>(o)]);
    }
    NodeId m = rewrite(n, operands, out);
    if (!n.label.empty()) out.label(m, n.label);
    mapped[static_cast<size_t>(id)] = m;
  }
  out.out = mapped.at(static_cast<size_t>(in.out));
  if (in.maskExpr >= 0) out.maskExpr = mapped.at(static_cast<size_t>(in.maskExpr));
  return out;
}

NodeId IRRewriter::rewrite(const Node& n, const std::vector<NodeId>& operands, Graph& out) {
  return out.make(n.op, operands, n.value);
}

}  // namespace attn::ir
