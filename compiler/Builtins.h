// The built-in names and functions of the .attn language (LANGUAGE.md, "Built-in names"
// and "Functions"), in one table each, so the checker, the suggestion engine and later
// stages agree on spelling and arity.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attn {

/// q, k: the query/key vectors; i: query position; j: key position; n: unmasked keys in
/// row i; L: number of keys; d: head dimension.
enum class BuiltinName { Q, K, I, J, N, L, D };

/// How a built-in function treats its arguments' kinds.
enum class FnClass {
  Elementwise,    ///< scalars in, scalar out; kind = the largest argument kind
  VectorNorm,     ///< l2norm: a vector in, the same vector kind out
  Dot,            ///< dot(query vector, key vector) -> score
  RowReduction,   ///< rowsum/rowmax/rowmin/rowmean: scalar in, row scalar out (over unmasked j)
  Normalisation,  ///< l1norm/softmax: scalar in, kind max(arg, row) out
};

enum class BuiltinFn {
  Exp, Log, Exp2, Log2, Sqrt, Rsqrt, Abs, Sign, Tanh, Sigmoid, Softplus, Relu, Relu6, Gelu,
  GeluTanh, Silu, Mish, Min, Max, Clamp, Pow,
  L2Norm, Dot,
  RowSum, RowMax, RowMin, RowMean,
  L1Norm, Softmax,
};

struct BuiltinFnInfo {
  BuiltinFn fn;
  const char* name;
  int arity;
  FnClass cls;
};

/// Every built-in function, in a fixed order.
const std::vector<BuiltinFnInfo>& builtinFunctions();
std::optional<BuiltinFnInfo> lookupBuiltinFn(std::string_view name);
const BuiltinFnInfo& info(BuiltinFn fn);

std::optional<BuiltinName> lookupBuiltinName(std::string_view name);
const char* builtinNameSpelling(BuiltinName b);  ///< "q", "k", "i", ...

/// The language's keywords (they cannot name anything).
const std::vector<std::string>& keywords();

}  // namespace attn
