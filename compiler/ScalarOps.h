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
/// The same meaning in long double (x87 extended on x86-64: 64-bit significand), for the
/// tests' higher-precision oracle (interpretPlanExtended).
long double applyScalar(Op op, const long double* args);

/// `v` rounded to the nearest float32 (ties to even), as a double: what a constant is in
/// float32 arithmetic. Beyond float32's range it is +-inf (IEEE overflow); NaN stays NaN.
double roundToFloat32(double v);
/// Does `v` round to a finite float32 (|v| < 2^128 - 2^103, i.e. about 3.4028235e38)?
bool fitsFloat32(double v);
/// float32's largest finite value, 3.40282347e38.
constexpr double kFloat32Max = 3.4028234663852886e38;

/// The IR op of a language operator or built-in function. For functions that are not
/// elementwise on scalars (l2norm, dot, row reductions, l1norm, softmax): nullopt.
Op elementwiseOp(ast::UnaryOp op);  ///< not for unary '+', which is no op at all
Op elementwiseOp(ast::BinaryOp op);
std::optional<Op> elementwiseOp(BuiltinFn fn);

}  // namespace attn::ir
