// The base of every IR pass: rebuilds a graph node by node (live nodes, in order), letting
// the pass replace each node by anything built from the already-rewritten operands.
// Because graphs are hash-consed, rebuilding also removes dead and duplicate nodes.
#pragma once

#include <vector>

#include "compiler/IR.h"

namespace attn::ir {

class IRRewriter {
 public:
  virtual ~IRRewriter() = default;

  /// Rebuilds `in`; out, mask and params carry over.
  Graph run(const Graph& in);

 protected:
  /// The new id for old node `n` whose operands are already rewritten to `operands` in
  /// `out`. The default rebuilds the node as it was.
  virtual NodeId rewrite(const Node& n, const std::vector<NodeId>& operands, Graph& out);
};

}  // namespace attn::ir
