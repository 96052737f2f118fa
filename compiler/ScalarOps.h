// The meaning of every elementwise IR op on one double: constant folding uses it, and it
// is the one definition the backends' elementwise code is tested against.
#pragma once

#include <optional>

#include "compiler/IR.h"

namespace attn::ir {

/// Is `op` an elementwise scalar op (Neg .. Mish)?
bool isElementwise(Op op);

/// Applies elementwise `op` to `args` (arity(op) of them). Bools are 0/1.
double applyScalar(Op op, const double* args);

/// The IR op of a language operator or built-in function. For functions that are not
/// elementwise on scalars (l2norm, dot, row reductions, l1norm, softmax): nullopt.
Op elementwiseOp(ast::UnaryOp op);  ///< not for unary '+', which is no op at all
Op elementwiseOp(ast::BinaryOp op);
std::optional<Op> elementwiseOp(BuiltinFn fn);

}  // namespace attn::ir
