// The meaning of every elementwise IR op on one double: constant folding uses it, and it
// is the one definition the backends' elementwise code is tested against.
#pragma once

#include "compiler/IR.h"

namespace attn::ir {

/// Is `op` an elementwise scalar op (Neg .. Mish)?
bool isElementwise(Op op);

/// Applies elementwise `op` to `args` (arity(op) of them). Bools are 0/1.
double applyScalar(Op op, const double* args);

}  // namespace attn::ir
