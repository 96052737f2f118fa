// StabiliseNormalize: normalisations that would overflow are rescaled by a row maximum,
// found by algebra, not by the name of a function.
//
// normalize(x) is invariant under x -> x * c for any row scalar c > 0. So
//   normalize(exp(e))   = normalize(exp(e - rowmax(e)))            (online softmax's idea)
//   normalize(exp2(e))  = normalize(exp2(e - rowmax(e)))
//   normalize(b ^ p)    = normalize(safediv(b, rowmax(b)) ^ p)      for b >= 0, constant p > 0
//   normalize(b ^ p)    = normalize(safediv(b, rowmax(abs(b))) ^ p) for any b, integer p > 0
// The rescaled values lie in [0, 1] (or [-1, 1]), so LSSAR's relu(n·a - 1)^15 stays finite
// in float32 for any row length. A row whose maximum is 0 has all b = 0: safediv gives 0
// and normalize gives 0, as the language requires. The materialised reference computes
// rowmax directly; streaming backends turn it into a running maximum.
#pragma once

#include "compiler/IR.h"

namespace attn::ir {

Graph stabiliseNormalize(const Graph& graph);

}  // namespace attn::ir
