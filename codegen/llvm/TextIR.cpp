#include "codegen/llvm/TextIR.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace attn::llvmjit {

// No fast-math flags, on purpose: every kernel must compute a per-element value with the same
// IEEE operations wherever it is computed. Forward's passes and backward's kernels recompute
// the scores and what depends on them, and compare or subtract them with statistics saved
// from another kernel: y - rowsum(y) of a row with one key must be exactly 0, a relu of
// a - rowmin(a) must see 0 at every key tied with the minimum. With reassoc/contract/afn (and
// glibc's vector math) LLVM computed the same value differently in a vectorised loop body, its
// scalar remainder and another kernel (an FMA here, a vector exp there), and those last bits
// were normalised into wrong outputs and gradients (issue 13; suites gradients1-4). Measured
// cost: 5-10 % of attn_bench's CPU time (docs/PERFORMANCE.md).

TextFunction::TextFunction(std::string name, std::string real)
    : name_(std::move(name)), real_(std::move(real)), suffix_(real_ == "float" ? "f32" : "f64") {}

std::string TextFunction::tmp() { return "%t" + std::to_string(next_++); }
std::string TextFunction::label() { return "L" + std::to_string(next_++); }
void TextFunction::emit(const std::string& line) { body_ += "  " + line + "\n"; }
void TextFunction::startBlock(const std::string& l) { body_ += l + ":\n"; }

std::string TextFunction::constant(double value) const {
  // LLVM writes floating constants as the hex of a double; for float it must be exactly
  // representable as a float.
  double v = real_ == "float" ? static_cast<double>(static_cast<float>(value)) : value;
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  char text[32];
  std::snprintf(text, sizeof text, "0x%016" PRIX64, bits);
  return text;
}

std::string TextFunction::arg(int slot, const std::string& type) {
  std::string p = gep("i64", "%args", i64(slot));
  return load(type, p);
}

std::string TextFunction::fop(const std::string& op, const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = " + op + " " + real_ + " " + a + ", " + b);
  return t;
}

std::string TextFunction::fneg(const std::string& a) {
  std::string t = tmp();
  emit(t + " = fneg " + real_ + " " + a);
  return t;
}

std::string TextFunction::fcmp(const std::string& pred, const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = fcmp " + pred + " " + real_ + " " + a + ", " + b);
  return t;
}

std::string TextFunction::select(const std::string& cond, const std::string& a, const std::string& b,
                                 const std::string& type) {
  std::string t = tmp();
  const std::string& ty = type.empty() ? real_ : type;
  emit(t + " = select i1 " + cond + ", " + ty + " " + a + ", " + ty + " " + b);
  return t;
}

std::string TextFunction::call(const std::string& fn, const std::string& a) {
  declarations_.insert("declare " + real_ + " @" + fn + "(" + real_ + ")" + (fn.rfind("llvm.", 0) == 0 ? "" : " #0"));
  std::string t = tmp();
  emit(t + " = call " + real_ + " @" + fn + "(" + real_ + " " + a + ")");
  return t;
}

std::string TextFunction::call2(const std::string& fn, const std::string& a, const std::string& b) {
  declarations_.insert("declare " + real_ + " @" + fn + "(" + real_ + ", " + real_ + ")" + (fn.rfind("llvm.", 0) == 0 ? "" : " #0"));
  std::string t = tmp();
  emit(t + " = call " + real_ + " @" + fn + "(" + real_ + " " + a + ", " + real_ + " " +
       b + ")");
  return t;
}

std::string TextFunction::intrinsic(const std::string& base, const std::string& a) {
  return call("llvm." + base + "." + suffix_, a);
}

std::string TextFunction::intrinsic2(const std::string& base, const std::string& a, const std::string& b) {
  return call2("llvm." + base + "." + suffix_, a, b);
}

std::string TextFunction::powi(const std::string& a, int exponent) {
  std::string fn = "llvm.powi." + suffix_ + ".i32";
  declarations_.insert("declare " + real_ + " @" + fn + "(" + real_ + ", i32)");
  std::string t = tmp();
  emit(t + " = call " + real_ + " @" + fn + "(" + real_ + " " + a + ", i32 " +
       std::to_string(exponent) + ")");
  return t;
}

std::string TextFunction::bool2real(const std::string& i1) {
  std::string t = tmp();
  emit(t + " = uitofp i1 " + i1 + " to " + real_);
  return t;
}

std::string TextFunction::real2bool(const std::string& x) { return fcmp("une", x, constant(0)); }

std::string TextFunction::sitofp(const std::string& v) {
  std::string t = tmp();
  emit(t + " = sitofp i64 " + v + " to " + real_);
  return t;
}

std::string TextFunction::iop(const std::string& op, const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = " + op + " i64 " + a + ", " + b);
  return t;
}

std::string TextFunction::icmp(const std::string& pred, const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = icmp " + pred + " i64 " + a + ", " + b);
  return t;
}

std::string TextFunction::andBool(const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = and i1 " + a + ", " + b);
  return t;
}

std::string TextFunction::orBool(const std::string& a, const std::string& b) {
  std::string t = tmp();
  emit(t + " = or i1 " + a + ", " + b);
  return t;
}

std::string TextFunction::gep(const std::string& type, const std::string& base, const std::string& index) {
  std::string t = tmp();
  emit(t + " = getelementptr inbounds " + type + ", ptr " + base + ", i64 " + index);
  return t;
}

std::string TextFunction::load(const std::string& type, const std::string& ptr) {
  std::string t = tmp();
  emit(t + " = load " + type + ", ptr " + ptr);
  return t;
}

void TextFunction::store(const std::string& type, const std::string& value, const std::string& ptr) {
  emit("store " + type + " " + value + ", ptr " + ptr);
}

std::string TextFunction::variable(const std::string& type, int count) {
  std::string t = "%v" + std::to_string(next_++);
  entry_ += "  " + t + " = alloca " + type + (count > 1 ? ", i64 " + std::to_string(count) : "") + ", align 64\n";
  return t;
}

void TextFunction::loop(const std::string& lo, const std::string& hi,
                        const std::function<void(const std::string&)>& body, long long step) {
  std::string counter = variable("i64");
  store("i64", lo, counter);
  std::string head = label(), bodyLabel = label(), exit = label();
  emit("br label %" + head);
  startBlock(head);
  std::string iv = load("i64", counter);
  std::string more = icmp("slt", iv, hi);
  emit("br i1 " + more + ", label %" + bodyLabel + ", label %" + exit);
  startBlock(bodyLabel);
  body(iv);
  std::string next = iop("add nsw", iv, i64(step));
  store("i64", next, counter);
  emit("br label %" + head);
  startBlock(exit);
}

void TextFunction::ifThen(const std::string& cond, const std::function<void()>& then) {
  std::string yes = label(), done = label();
  emit("br i1 " + cond + ", label %" + yes + ", label %" + done);
  startBlock(yes);
  then();
  emit("br label %" + done);
  startBlock(done);
}

std::string TextFunction::finish() {
  return "define void @" + name_ + "(ptr noalias %args) #1 {\nentry:\n" + entry_ + "  br label %start\nstart:\n" +
         body_ + "  ret void\n}\n";
}

}  // namespace attn::llvmjit
