#include "compiler/ScalarOps.h"

#include <cmath>
#include <limits>

namespace attn::ir {

bool isElementwise(Op op) { return op >= Op::Neg && op <= Op::Mish; }

namespace {
template <typename T>
T softplus(T x) { return std::max(x, T(0)) + std::log1p(std::exp(-std::fabs(x))); }
template <typename T>
T sigmoid(T x) {
  return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}
// max and min that give NaN when either operand is NaN (std::max and fmax drop it, and
// which one std::max drops depends on the order: the IR's meaning is NaN in, NaN out).
template <typename T>
T maxOf(T a, T b) { return std::isnan(a) || std::isnan(b) ? a + b : std::max(a, b); }
template <typename T>
T minOf(T a, T b) { return std::isnan(a) || std::isnan(b) ? a + b : std::min(a, b); }
}  // namespace

namespace {
// Half an ulp above float32's largest finite value: from here on, rounding gives inf.
constexpr double kFloat32Overflow = 340282356779733661637539395458142568448.0;  // 2^128 - 2^103
}  // namespace

bool fitsFloat32(double v) { return std::fabs(v) < kFloat32Overflow; }

double roundToFloat32(double v) {
  if (std::isnan(v)) return v;
  if (!fitsFloat32(v)) return std::copysign(std::numeric_limits<double>::infinity(), v);
  // Between float32's largest value and the overflow point the cast is not defined by C++.
  if (std::fabs(v) > kFloat32Max) return std::copysign(kFloat32Max, v);
  return static_cast<double>(static_cast<float>(v));
}

namespace {
template <typename T>
T apply(Op op, const T* a) {
  switch (op) {
    case Op::Neg: return -a[0];
    case Op::Not: return a[0] != 0 ? 0 : 1;
    case Op::Add: return a[0] + a[1];
    case Op::Sub: return a[0] - a[1];
    case Op::Mul: return a[0] * a[1];
    case Op::Div: return a[0] / a[1];
    case Op::SafeDiv: return a[1] == 0 ? 0 : a[0] / a[1];
    case Op::Pow: return std::pow(a[0], a[1]);
    case Op::Min: return minOf(a[0], a[1]);
    case Op::Max: return maxOf(a[0], a[1]);
    case Op::Clamp: return minOf(maxOf(a[0], a[1]), a[2]);
    case Op::Lt: return a[0] < a[1];
    case Op::Le: return a[0] <= a[1];
    case Op::Gt: return a[0] > a[1];
    case Op::Ge: return a[0] >= a[1];
    case Op::Eq: return a[0] == a[1];
    case Op::Ne: return a[0] != a[1];
    case Op::And: return a[0] != 0 && a[1] != 0;
    case Op::Or: return a[0] != 0 || a[1] != 0;
    case Op::Select: return a[0] != 0 ? a[1] : a[2];
    case Op::Exp: return std::exp(a[0]);
    case Op::Log: return std::log(a[0]);
    case Op::Exp2: return std::exp2(a[0]);
    case Op::Log2: return std::log2(a[0]);
    case Op::Sqrt: return std::sqrt(a[0]);
    case Op::Rsqrt: return 1 / std::sqrt(a[0]);
    case Op::Abs: return std::fabs(a[0]);
    case Op::Sign: return std::isnan(a[0]) ? a[0] : T((a[0] > 0) - (a[0] < 0));
    case Op::Tanh: return std::tanh(a[0]);
    case Op::Sigmoid: return sigmoid(a[0]);
    case Op::Softplus: return softplus(a[0]);
    case Op::Relu: return a[0] <= 0 ? 0 : a[0];  // NaN stays NaN
    case Op::Relu6: return minOf(maxOf(a[0], T(0)), T(6));
    // erfc and sigmoid: 1 + erf(x) and 1 + tanh(x) lose every digit for x < -5.
    case Op::Gelu: return T(0.5) * a[0] * std::erfc(-a[0] / std::sqrt(T(2)));
    case Op::GeluTanh: {
      const T c = std::sqrt(2 / (4 * std::atan(T(1))));
      return a[0] * sigmoid(2 * c * (a[0] + T(0.044715) * a[0] * a[0] * a[0]));
    }
    case Op::Silu: return a[0] * sigmoid(a[0]);
    case Op::Mish: return a[0] * std::tanh(softplus(a[0]));
    default: break;
  }
  ATTN_INTERNAL_ERROR(std::string("not an elementwise op: ") + opName(op));
}
}  // namespace

double applyScalar(Op op, const double* args) { return apply(op, args); }
long double applyScalar(Op op, const long double* args) { return apply(op, args); }

Op elementwiseOp(ast::UnaryOp op) {
  switch (op) {
    case ast::UnaryOp::Neg: return Op::Neg;
    case ast::UnaryOp::Not: return Op::Not;
    case ast::UnaryOp::Plus: break;
  }
  ATTN_INTERNAL_ERROR("unary '+' has no IR op");
}

Op elementwiseOp(ast::BinaryOp op) {
  switch (op) {
    case ast::BinaryOp::Pow: return Op::Pow;
    case ast::BinaryOp::Mul: return Op::Mul;
    case ast::BinaryOp::Div: return Op::Div;
    case ast::BinaryOp::Add: return Op::Add;
    case ast::BinaryOp::Sub: return Op::Sub;
    case ast::BinaryOp::Lt: return Op::Lt;
    case ast::BinaryOp::Le: return Op::Le;
    case ast::BinaryOp::Gt: return Op::Gt;
    case ast::BinaryOp::Ge: return Op::Ge;
    case ast::BinaryOp::Eq: return Op::Eq;
    case ast::BinaryOp::Ne: return Op::Ne;
    case ast::BinaryOp::And: return Op::And;
    case ast::BinaryOp::Or: return Op::Or;
  }
  ATTN_INTERNAL_ERROR("unknown binary operator");
}

std::optional<Op> elementwiseOp(BuiltinFn fn) {
  switch (fn) {
    case BuiltinFn::Exp: return Op::Exp;
    case BuiltinFn::Log: return Op::Log;
    case BuiltinFn::Exp2: return Op::Exp2;
    case BuiltinFn::Log2: return Op::Log2;
    case BuiltinFn::Sqrt: return Op::Sqrt;
    case BuiltinFn::Rsqrt: return Op::Rsqrt;
    case BuiltinFn::Abs: return Op::Abs;
    case BuiltinFn::Sign: return Op::Sign;
    case BuiltinFn::Tanh: return Op::Tanh;
    case BuiltinFn::Sigmoid: return Op::Sigmoid;
    case BuiltinFn::Softplus: return Op::Softplus;
    case BuiltinFn::Relu: return Op::Relu;
    case BuiltinFn::Relu6: return Op::Relu6;
    case BuiltinFn::Gelu: return Op::Gelu;
    case BuiltinFn::GeluTanh: return Op::GeluTanh;
    case BuiltinFn::Silu: return Op::Silu;
    case BuiltinFn::Mish: return Op::Mish;
    case BuiltinFn::Min: return Op::Min;
    case BuiltinFn::Max: return Op::Max;
    case BuiltinFn::Clamp: return Op::Clamp;
    case BuiltinFn::Pow: return Op::Pow;
    default: return std::nullopt;
  }
}

}  // namespace attn::ir
