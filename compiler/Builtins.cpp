#include "compiler/Builtins.h"

#include "compiler/Diagnostics.h"

namespace attn {

const std::vector<BuiltinFnInfo>& builtinFunctions() {
  static const std::vector<BuiltinFnInfo> table = {
      {BuiltinFn::Exp, "exp", 1, FnClass::Elementwise},
      {BuiltinFn::Log, "log", 1, FnClass::Elementwise},
      {BuiltinFn::Exp2, "exp2", 1, FnClass::Elementwise},
      {BuiltinFn::Log2, "log2", 1, FnClass::Elementwise},
      {BuiltinFn::Sqrt, "sqrt", 1, FnClass::Elementwise},
      {BuiltinFn::Rsqrt, "rsqrt", 1, FnClass::Elementwise},
      {BuiltinFn::Abs, "abs", 1, FnClass::Elementwise},
      {BuiltinFn::Sign, "sign", 1, FnClass::Elementwise},
      {BuiltinFn::Tanh, "tanh", 1, FnClass::Elementwise},
      {BuiltinFn::Sigmoid, "sigmoid", 1, FnClass::Elementwise},
      {BuiltinFn::Softplus, "softplus", 1, FnClass::Elementwise},
      {BuiltinFn::Relu, "relu", 1, FnClass::Elementwise},
      {BuiltinFn::Relu6, "relu6", 1, FnClass::Elementwise},
      {BuiltinFn::Gelu, "gelu", 1, FnClass::Elementwise},
      {BuiltinFn::GeluTanh, "gelu_tanh", 1, FnClass::Elementwise},
      {BuiltinFn::Silu, "silu", 1, FnClass::Elementwise},
      {BuiltinFn::Mish, "mish", 1, FnClass::Elementwise},
      {BuiltinFn::Min, "min", 2, FnClass::Elementwise},
      {BuiltinFn::Max, "max", 2, FnClass::Elementwise},
      {BuiltinFn::Clamp, "clamp", 3, FnClass::Elementwise},
      {BuiltinFn::Pow, "pow", 2, FnClass::Elementwise},
      {BuiltinFn::L2Norm, "l2norm", 1, FnClass::VectorNorm},
      {BuiltinFn::Dot, "dot", 2, FnClass::Dot},
      {BuiltinFn::RowSum, "rowsum", 1, FnClass::RowReduction},
      {BuiltinFn::RowMax, "rowmax", 1, FnClass::RowReduction},
      {BuiltinFn::RowMin, "rowmin", 1, FnClass::RowReduction},
      {BuiltinFn::RowMean, "rowmean", 1, FnClass::RowReduction},
      {BuiltinFn::L1Norm, "l1norm", 1, FnClass::Normalisation},
      {BuiltinFn::Softmax, "softmax", 1, FnClass::Normalisation},
  };
  return table;
}

std::optional<BuiltinFnInfo> lookupBuiltinFn(std::string_view name) {
  for (const auto& f : builtinFunctions())
    if (name == f.name) return f;
  return std::nullopt;
}

const BuiltinFnInfo& info(BuiltinFn fn) {
  for (const auto& f : builtinFunctions())
    if (f.fn == fn) return f;
  ATTN_INTERNAL_ERROR("unknown built-in function");
}

namespace {
struct NameEntry {
  BuiltinName name;
  const char* spelling;
};
const NameEntry kNames[] = {
    {BuiltinName::Q, "q"}, {BuiltinName::K, "k"}, {BuiltinName::I, "i"}, {BuiltinName::J, "j"},
    {BuiltinName::N, "n"}, {BuiltinName::L, "L"}, {BuiltinName::D, "d"},
};
}  // namespace

std::optional<BuiltinName> lookupBuiltinName(std::string_view name) {
  for (const auto& e : kNames)
    if (name == e.spelling) return e.name;
  return std::nullopt;
}

const char* builtinNameSpelling(BuiltinName b) {
  for (const auto& e : kNames)
    if (e.name == b) return e.spelling;
  return "?";
}

const std::vector<std::string>& keywords() {
  static const std::vector<std::string> k = {"attention", "fn",     "param", "let",  "mask", "out",
                                             "causal",    "full",   "window", "true", "false"};
  return k;
}

}  // namespace attn
