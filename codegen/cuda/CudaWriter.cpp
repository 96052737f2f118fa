// CUDA C++ text for the scalar kernel generator. See CudaWriter.h.
#include "codegen/cuda/CudaWriter.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "compiler/Diagnostics.h"
#include "compiler/ScalarOps.h"

namespace attn::cuda {

CudaWriter::CudaWriter(std::string name, std::string real, Math math)
    : name_(std::move(name)), real_(std::move(real)), math_(math) {
  ATTN_INTERNAL_ASSERT(math_ == Math::Exact || real_ == "float", "cuda writer: approximate math is float only");
  ATTN_INTERNAL_ASSERT(real_ == "float" || real_ == "double", "cuda writer: real must be float or double");
}

void CudaWriter::line(const std::string& text) { body_ += std::string(2 * static_cast<size_t>(depth_), ' ') + text + "\n"; }

std::string CudaWriter::let(const std::string& expression) {
  std::string t = "t" + std::to_string(next_++);
  line("const auto " + t + " = " + expression + ";");
  return t;
}

std::string CudaWriter::cType(const std::string& type) const {
  if (type == "i64") return "long long";
  if (type == "ptr") return real_ + "*";
  if (type == "float" || type == "double") return type;
  ATTN_INTERNAL_ERROR("cuda writer: unknown type " + type);
}

std::string CudaWriter::mathName(const std::string& base) const { return real_ == "float" ? base + "f" : base; }

std::string CudaWriter::constant(double value) const {
  const bool f32 = real_ == "float";
  // A folded constant can be beyond float32 (1e30 * 1e30: inf in float32) or NaN (0 / 0).
  if (f32) value = ir::roundToFloat32(value);
  if (std::isinf(value)) return std::string(value < 0 ? "(-" : "(") + (f32 ? "ATTN_INF_F" : "ATTN_INF_D") + ")";
  if (std::isnan(value)) return f32 ? "ATTN_NAN_F" : "ATTN_NAN_D";
  // The shortest decimal that reads back as the same value (the float one rounded to the
  // nearest float, as the CPU backend rounds its constants).
  std::string s;
  char text[40];
  if (f32) {
    const float v = static_cast<float>(value);
    for (int p = 1; p <= 9; ++p) {
      std::snprintf(text, sizeof text, "%.*g", p, static_cast<double>(v));
      if (std::strtof(text, nullptr) == v) break;
    }
  } else {
    for (int p = 1; p <= 17; ++p) {
      std::snprintf(text, sizeof text, "%.*g", p, value);
      if (std::strtod(text, nullptr) == value) break;
    }
  }
  s = text;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  if (f32) s += "f";
  return s[0] == '-' ? "(" + s + ")" : s;
}

std::string CudaWriter::arg(int slot, const std::string& type) {
  const std::string field = "args[" + std::to_string(slot) + "]";
  if (type == "ptr") return let("reinterpret_cast<" + real_ + "*>(" + field + ")");
  ATTN_INTERNAL_ASSERT(type == "i64", "cuda writer: argument type " + type);
  return let(field);
}

std::string CudaWriter::param(const std::string& type, const std::string& name) {
  params_ += (params_.empty() ? "" : ", ") + cType(type) + " " + name;
  return name;
}

std::string CudaWriter::fop(const std::string& op, const std::string& a, const std::string& b) {
  const char* sym = op == "fadd" ? "+" : op == "fsub" ? "-" : op == "fmul" ? "*" : op == "fdiv" ? "/" : nullptr;
  ATTN_INTERNAL_ASSERT(sym, "cuda writer: float op " + op);
  if (op == "fdiv" && approximateMath()) return let("attn_fast_div(" + a + ", " + b + ")");
  return let(a + " " + sym + " " + b);
}

std::string CudaWriter::fneg(const std::string& a) { return let("-" + a); }

std::string CudaWriter::fcmp(const std::string& pred, const std::string& a, const std::string& b) {
  // C++ comparisons are the ordered ones (false with a NaN), and != is unordered.
  const char* sym = pred == "oeq" ? "==" : pred == "ogt" ? ">" : pred == "oge" ? ">=" : pred == "olt" ? "<"
                  : pred == "ole" ? "<=" : pred == "une" ? "!=" : nullptr;
  ATTN_INTERNAL_ASSERT(sym, "cuda writer: float predicate " + pred);
  return let(a + " " + sym + " " + b);
}

std::string CudaWriter::select(const std::string& cond, const std::string& a, const std::string& b,
                               const std::string& type) {
  const std::string ty = cType(type.empty() ? real_ : type);
  return let("static_cast<" + ty + ">(" + cond + " ? " + a + " : " + b + ")");
}

std::string CudaWriter::call(const std::string& fn, const std::string& a) { return let(fn + "(" + a + ")"); }

std::string CudaWriter::intrinsic(const std::string& base, const std::string& a) {
  ATTN_INTERNAL_ASSERT(base == "exp" || base == "log" || base == "exp2" || base == "log2" || base == "sqrt" ||
                           base == "fabs" || (base == "log_approx" && approximateMath()),
                       "cuda writer: intrinsic " + base);
  if (approximateMath() && base == "exp") return let("attn_fast_exp(" + a + ")");
  if (base == "log_approx") return let("attn_fast_log(" + a + ")");
  return let(mathName(base) + "(" + a + ")");
}

std::string CudaWriter::intrinsic2(const std::string& base, const std::string& a, const std::string& b) {
  ATTN_INTERNAL_ASSERT(base == "pow", "cuda writer: intrinsic " + base);
  return let(mathName(base) + "(" + a + ", " + b + ")");
}

std::string CudaWriter::powi(const std::string& a, int exponent) {
  return let("attn_powi(" + a + ", " + std::to_string(exponent) + ")");
}

std::string CudaWriter::bool2real(const std::string& i1) {
  return let("static_cast<" + real_ + ">(" + i1 + " ? 1 : 0)");
}

std::string CudaWriter::real2bool(const std::string& x) { return let(x + " != 0"); }

std::string CudaWriter::sitofp(const std::string& v) { return let("static_cast<" + real_ + ">(" + v + ")"); }

std::string CudaWriter::andBool(const std::string& a, const std::string& b) { return let(a + " && " + b); }
std::string CudaWriter::orBool(const std::string& a, const std::string& b) { return let(a + " || " + b); }

std::string CudaWriter::iop(const std::string& op, const std::string& a, const std::string& b) {
  const char* sym = op == "add nsw" ? "+" : op == "sub nsw" ? "-" : op == "mul nsw" ? "*" : op == "and" ? "&" : nullptr;
  ATTN_INTERNAL_ASSERT(sym, "cuda writer: integer op " + op);
  return let("static_cast<long long>(" + a + ") " + sym + " " + b);
}

std::string CudaWriter::icmp(const std::string& pred, const std::string& a, const std::string& b) {
  const char* sym = pred == "slt" ? "<" : pred == "sgt" ? ">" : pred == "ne" ? "!=" : nullptr;
  ATTN_INTERNAL_ASSERT(sym, "cuda writer: integer predicate " + pred);
  return let("static_cast<long long>(" + a + ") " + sym + " " + b);
}

std::string CudaWriter::gep(const std::string& type, const std::string& base, const std::string& index) {
  return let(base + " + " + index);
}

std::string CudaWriter::load(const std::string& type, const std::string& ptr) { return let("*" + ptr); }

void CudaWriter::store(const std::string& type, const std::string& value, const std::string& ptr) {
  line("*" + ptr + " = " + value + ";");
}

std::string CudaWriter::variable(const std::string& type, int count) {
  std::string v = "v" + std::to_string(next_++);
  entry_ += "  " + cType(type) + " " + v + "[" + std::to_string(count) + "];\n";
  return v;
}

void CudaWriter::loop(const std::string& lo, const std::string& hi, const std::function<void(const std::string&)>& body,
                      long long step) {
  std::string iv = "i" + std::to_string(next_++);
  line("for (long long " + iv + " = " + lo + "; " + iv + " < " + hi + "; " + iv + " += " + std::to_string(step) + ") {");
  ++depth_;
  body(iv);
  --depth_;
  line("}");
}

void CudaWriter::ifThen(const std::string& cond, const std::function<void()>& then) {
  line("if (" + cond + ") {");
  ++depth_;
  then();
  --depth_;
  line("}");
}

std::string CudaWriter::finish() {
  const std::string signature = params_.empty() ? "long long* args" : params_;
  return "ATTN_DEVICE void " + name_ + "(" + signature + ") {\n" + entry_ + body_ + "}\n";
}

}  // namespace attn::cuda
