// Simplify: constant folding, algebraic identities, and the canonical form of a
// normalisation, so that later passes see one spelling of each idea.
//   - an elementwise op whose operands are all literal constants is folded;
//   - x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1, x ^ 1, --x, +x become x (numbers only);
//   - `c ? a : b` with a constant c becomes a or b;
//   - x / rowsum(abs(x)), and x / rowsum(x) for x >= 0, become normalize(x), so a
//     user-written `exp(s) / rowsum(exp(s))` is the same program as `l1norm(exp(s))`.
#pragma once

#include "compiler/IR.h"

namespace attn::ir {

Graph simplify(const Graph& graph);

}  // namespace attn::ir
