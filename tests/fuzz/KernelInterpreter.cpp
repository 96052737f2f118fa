#include "fuzz/KernelInterpreter.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>

namespace attn::fuzz {

namespace {

using kernels::KernelWriter;

enum class Code {
  Arg, Param, FAdd, FSub, FMul, FDiv, FNeg, FCmp, Select, Tanh, Erf, Exp, Log, Exp2, Log2, Sqrt, Fabs, Pow, Powi,
  Erfc, Bool2Real, Real2Bool, SiToFp, And, Or, IAdd, ISub, IMul, IAnd, ICmp, Gep, Load, Store, Loop, If
};
enum class Pred { Oeq, Ogt, Oge, Olt, Ole, One, Une, Slt, Sgt, Sle, Sge, Eq, Ne };

// An operand: a register, or a literal folded in at recording time.
struct Operand {
  enum Kind { Reg, Real, Int } kind = Int;
  int reg = -1;
  double f = 0;
  int64_t i = 0;
};

struct Instr {
  Code code;
  int dst = -1;
  Operand a, b, c;
  Pred pred = Pred::Oeq;
  int size = 8;    // bytes of the element a Gep / Load / Store addresses
  bool real = true;  // Load / Store / Select: a real (else an integer or pointer)
  int64_t imm = 0;   // Arg slot, Powi exponent, Loop step
  int block = -1;    // Loop body, If then-block
};

struct Variable {
  int reg;
  int size;
  bool real;
  int count;
};

}  // namespace

struct RecordedFunction {
  std::string name;
  bool f32 = false;
  std::vector<std::vector<Instr>> blocks{1};  // block 0: the body
  std::vector<Variable> variables;
  int registers = 0;
  size_t instructions = 0;
};

namespace {

constexpr int64_t kPoison = 0x5EAD5EAD5EAD5EADll;

int sizeOf(const std::string& type, const std::string& name) {
  if (type == "double" || type == "i64" || type == "ptr") return 8;
  if (type == "float") return 4;
  if (type == "i1") return 1;
  throw KernelError(name + ": unknown type '" + type + "'");
}

// The recording writer: every method appends an instruction to the current block.
class Recorder final : public KernelWriter {
 public:
  Recorder(std::shared_ptr<RecordedFunction> fn, std::string real, std::function<void()> done,
           bool approximate = false)
      : fn_(std::move(fn)), real_(std::move(real)), done_(std::move(done)), approximate_(approximate) {
    fn_->f32 = real_ == "float";
    if (real_ != "float" && real_ != "double") throw KernelError(fn_->name + ": element type " + real_);
  }

  const std::string& real() const override { return real_; }
  bool approximateMath() const override { return approximate_; }

  std::string constant(double value) const override {
    const double v = fn_->f32 ? static_cast<double>(static_cast<float>(value)) : value;
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    char text[32];
    std::snprintf(text, sizeof text, "#%016" PRIx64, bits);
    return text;
  }
  std::string arg(int slot, const std::string& type) override {
    if (slot < 0 || slot >= kernels::kArgCount) fail("argument slot " + std::to_string(slot));
    Instr in{Code::Arg};
    in.imm = slot;
    in.real = false;
    sizeOf(type, fn_->name);
    if (type != "ptr" && type != "i64") fail("argument of type " + type);
    return emit(in);
  }
  std::string param(const std::string& type, const std::string& name) override {
    Instr in{Code::Param};
    in.real = type != "ptr" && type != "i64";
    sizeOf(type, fn_->name);
    return emit(in);
  }
  std::string fop(const std::string& op, const std::string& a, const std::string& b) override {
    static const std::map<std::string, Code> codes = {
        {"fadd", Code::FAdd}, {"fsub", Code::FSub}, {"fmul", Code::FMul}, {"fdiv", Code::FDiv}};
    auto it = codes.find(op);
    if (it == codes.end()) fail("unknown float operation " + op);
    return emit(it->second, a, b);
  }
  std::string fneg(const std::string& a) override { return emit(Code::FNeg, a); }
  std::string fcmp(const std::string& pred, const std::string& a, const std::string& b) override {
    static const std::map<std::string, Pred> preds = {{"oeq", Pred::Oeq}, {"ogt", Pred::Ogt}, {"oge", Pred::Oge},
                                                      {"olt", Pred::Olt}, {"ole", Pred::Ole}, {"one", Pred::One},
                                                      {"une", Pred::Une}};
    auto it = preds.find(pred);
    if (it == preds.end()) fail("unknown fcmp predicate " + pred);
    Instr in = make(Code::FCmp, a, b);
    in.pred = it->second;
    return emit(in);
  }
  std::string select(const std::string& cond, const std::string& a, const std::string& b,
                     const std::string& type) override {
    if (!type.empty() && type != "i64" && type != "ptr") fail("select of type " + type);
    Instr in = make(Code::Select, cond, a, b);
    in.real = type.empty();
    return emit(in);
  }
  std::string call(const std::string& fn, const std::string& a) override {
    // The C library's name for the element type: tanh / tanhf.
    const std::string base = fn_->f32 && !fn.empty() && fn.back() == 'f' ? fn.substr(0, fn.size() - 1) : fn;
    if (fn_->f32 != (base != fn)) fail("libm function " + fn + " for element type " + real_);
    if (base == "tanh") return emit(Code::Tanh, a);
    if (base == "erf") return emit(Code::Erf, a);
    if (base == "erfc") return emit(Code::Erfc, a);
    fail("unknown libm function " + fn);
  }
  std::string intrinsic(const std::string& base, const std::string& a) override {
    static const std::map<std::string, Code> codes = {{"exp", Code::Exp},   {"log", Code::Log},   {"exp2", Code::Exp2},
                                                      {"log2", Code::Log2}, {"sqrt", Code::Sqrt}, {"fabs", Code::Fabs}};
    // log_approx only where approximateMath() said so (the hooks); run as log.
    if (base == "log_approx" && approximate_) return emit(Code::Log, a);
    auto it = codes.find(base);
    if (it == codes.end()) fail("unknown intrinsic " + base);
    return emit(it->second, a);
  }
  std::string intrinsic2(const std::string& base, const std::string& a, const std::string& b) override {
    if (base != "pow") fail("unknown intrinsic " + base);
    return emit(Code::Pow, a, b);
  }
  std::string powi(const std::string& a, int exponent) override {
    Instr in = make(Code::Powi, a);
    in.imm = exponent;
    return emit(in);
  }
  std::string bool2real(const std::string& i1) override { return emit(Code::Bool2Real, i1); }
  std::string real2bool(const std::string& x) override { return emit(Code::Real2Bool, x); }
  std::string sitofp(const std::string& v) override { return emit(Code::SiToFp, v); }
  std::string andBool(const std::string& a, const std::string& b) override { return emitInt(Code::And, a, b); }
  std::string orBool(const std::string& a, const std::string& b) override { return emitInt(Code::Or, a, b); }
  std::string iop(const std::string& op, const std::string& a, const std::string& b) override {
    static const std::map<std::string, Code> codes = {
        {"add nsw", Code::IAdd}, {"sub nsw", Code::ISub}, {"mul nsw", Code::IMul}, {"and", Code::IAnd}};
    auto it = codes.find(op);
    if (it == codes.end()) fail("unknown integer operation " + op);
    return emitInt(it->second, a, b);
  }
  std::string icmp(const std::string& pred, const std::string& a, const std::string& b) override {
    static const std::map<std::string, Pred> preds = {{"slt", Pred::Slt}, {"sgt", Pred::Sgt}, {"sle", Pred::Sle},
                                                      {"sge", Pred::Sge}, {"eq", Pred::Eq},   {"ne", Pred::Ne}};
    auto it = preds.find(pred);
    if (it == preds.end()) fail("unknown icmp predicate " + pred);
    Instr in = make(Code::ICmp, a, b);
    in.pred = it->second;
    in.real = false;
    return emit(in);
  }
  std::string gep(const std::string& type, const std::string& base, const std::string& index) override {
    Instr in = make(Code::Gep, base, index);
    in.size = sizeOf(type, fn_->name);
    in.real = false;
    return emit(in);
  }
  std::string load(const std::string& type, const std::string& ptr) override {
    Instr in = make(Code::Load, ptr);
    in.size = sizeOf(type, fn_->name);
    in.real = type == "float" || type == "double";
    return emit(in);
  }
  void store(const std::string& type, const std::string& value, const std::string& ptr) override {
    Instr in = make(Code::Store, value, ptr);
    in.size = sizeOf(type, fn_->name);
    in.real = type == "float" || type == "double";
    append(in);
  }
  std::string variable(const std::string& type, int count) override {
    if (count < 1) fail("variable of " + std::to_string(count) + " elements");
    const int reg = fn_->registers++;
    fn_->variables.push_back({reg, sizeOf(type, fn_->name), type == "float" || type == "double", count});
    return name(reg);
  }
  void loop(const std::string& lo, const std::string& hi, const std::function<void(const std::string&)>& body,
            long long step) override {
    if (step < 1) fail("loop step " + std::to_string(step));
    Instr in = make(Code::Loop, lo, hi);
    in.imm = step;
    in.dst = fn_->registers++;
    in.block = static_cast<int>(fn_->blocks.size());
    fn_->blocks.emplace_back();
    append(in);
    nested(in.block, [&] { body(name(in.dst)); });
  }
  void ifThen(const std::string& cond, const std::function<void()>& then) override {
    Instr in = make(Code::If, cond);
    in.block = static_cast<int>(fn_->blocks.size());
    fn_->blocks.emplace_back();
    append(in);
    nested(in.block, then);
  }
  std::string finish() override {
    if (current_ != 0) fail("finished inside a loop or conditional");
    if (done_) done_();
    done_ = nullptr;
    return "; interpreted function " + fn_->name + ": " + std::to_string(fn_->instructions) + " instructions\n";
  }
  const std::set<std::string>& declarations() const override { return declarations_; }

 private:
  std::shared_ptr<RecordedFunction> fn_;
  std::string real_;
  std::function<void()> done_;
  std::set<std::string> declarations_;
  bool approximate_ = false;
  int current_ = 0;

  [[noreturn]] void fail(const std::string& what) const { throw KernelError(fn_->name + ": " + what); }
  static std::string name(int reg) { return "%r" + std::to_string(reg); }

  Operand operand(const std::string& text) const {
    Operand o;
    if (text.size() > 2 && text[0] == '%' && text[1] == 'r') {
      char* end = nullptr;
      const long r = std::strtol(text.c_str() + 2, &end, 10);
      if (*end != '\0' || r < 0 || r >= fn_->registers) fail("unknown value '" + text + "'");
      o.kind = Operand::Reg;
      o.reg = static_cast<int>(r);
      return o;
    }
    if (text.size() == 17 && text[0] == '#') {
      uint64_t bits = std::strtoull(text.c_str() + 1, nullptr, 16);
      o.kind = Operand::Real;
      std::memcpy(&o.f, &bits, sizeof bits);
      return o;
    }
    char* end = nullptr;
    const long long v = text.empty() ? 0 : std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') fail("operand '" + text + "' is neither a value nor a literal");
    o.i = v;
    return o;
  }
  Instr make(Code code, const std::string& a, const std::string& b = "", const std::string& c = "") const {
    Instr in{code};
    in.a = operand(a);
    if (!b.empty()) in.b = operand(b);
    if (!c.empty()) in.c = operand(c);
    return in;
  }
  void append(const Instr& in) {
    fn_->blocks[static_cast<size_t>(current_)].push_back(in);
    ++fn_->instructions;
  }
  std::string emit(Instr in) {
    in.dst = fn_->registers++;
    append(in);
    return name(in.dst);
  }
  std::string emit(Code code, const std::string& a, const std::string& b = "") { return emit(make(code, a, b)); }
  std::string emitInt(Code code, const std::string& a, const std::string& b) {
    Instr in = make(code, a, b);
    in.real = false;
    return emit(in);
  }
  void nested(int block, const std::function<void()>& body) {
    const int outer = current_;
    current_ = block;
    body();
    current_ = outer;
  }
};

// One array a kernel may touch.
struct Region {
  uintptr_t begin = 0, end = 0;
  const char* name = "";
};

// Runs one recorded function.
class Machine {
 public:
  Machine(const RecordedFunction& fn, std::vector<Region> regions) : fn_(fn), regions_(std::move(regions)) {}

  void run(const int64_t* args) {
    args_ = args;
    regs_.assign(static_cast<size_t>(fn_.registers), Value{std::nan(""), kPoison});
    storage_.clear();
    for (const Variable& v : fn_.variables) {
      // 8-byte cells whatever the type, so that any type is aligned; reals start as NaN.
      std::vector<uint64_t> cells(static_cast<size_t>(v.count) * static_cast<size_t>(v.size + 7) / 8 + 1);
      auto* bytes = reinterpret_cast<unsigned char*>(cells.data());
      for (int e = 0; e < v.count; ++e) {
        unsigned char* p = bytes + static_cast<size_t>(e) * static_cast<size_t>(v.size);
        if (v.real && v.size == 4) {
          const float x = std::nanf("");
          std::memcpy(p, &x, 4);
        } else if (v.real) {
          const double x = std::nan("");
          std::memcpy(p, &x, 8);
        } else {
          std::memcpy(p, &kPoison, static_cast<size_t>(v.size));
        }
      }
      storage_.push_back(std::move(cells));
      const auto begin = reinterpret_cast<uintptr_t>(storage_.back().data());
      regions_.push_back({begin, begin + static_cast<uintptr_t>(v.count) * static_cast<uintptr_t>(v.size), "a variable"});
      regs_[static_cast<size_t>(v.reg)].i = static_cast<int64_t>(begin);
    }
    block(0);
  }

 private:
  struct Value {
    double f;
    int64_t i;
  };
  const RecordedFunction& fn_;
  std::vector<Region> regions_;
  std::vector<std::vector<uint64_t>> storage_;
  std::vector<Value> regs_;
  const int64_t* args_ = nullptr;
  uint64_t executed_ = 0;

  [[noreturn]] void fail(const std::string& what) const { throw KernelError(fn_.name + ": " + what); }

  double real(const Operand& o) const { return o.kind == Operand::Reg ? regs_[static_cast<size_t>(o.reg)].f : o.f; }
  int64_t integer(const Operand& o) const {
    if (o.kind == Operand::Real) fail("a real literal used as an integer");
    return o.kind == Operand::Reg ? regs_[static_cast<size_t>(o.reg)].i : o.i;
  }
  double round(double x) const { return fn_.f32 ? static_cast<double>(static_cast<float>(x)) : x; }
  void setReal(const Instr& in, double x) { regs_[static_cast<size_t>(in.dst)].f = round(x); }
  void setInt(const Instr& in, int64_t x) { regs_[static_cast<size_t>(in.dst)].i = x; }

  unsigned char* address(int64_t p, int size) const {
    const auto a = static_cast<uintptr_t>(p);
    for (const Region& r : regions_)
      if (a >= r.begin && a + static_cast<uintptr_t>(size) <= r.end) {
        if ((a - r.begin) % static_cast<uintptr_t>(size) != 0) fail(std::string("misaligned access to ") + r.name);
        return reinterpret_cast<unsigned char*>(a);
      }
    char text[64];
    std::snprintf(text, sizeof text, "%#" PRIxPTR, a);
    fail(std::string("access of ") + std::to_string(size) + " bytes at " + text + " outside every array");
  }

  static bool compare(Pred p, double a, double b) {
    switch (p) {
      case Pred::Oeq: return a == b;
      case Pred::Ogt: return a > b;
      case Pred::Oge: return a >= b;
      case Pred::Olt: return a < b;
      case Pred::Ole: return a <= b;
      case Pred::One: return a < b || a > b;
      case Pred::Une: return !(a == b);
      default: return false;
    }
  }
  static bool compare(Pred p, int64_t a, int64_t b) {
    switch (p) {
      case Pred::Slt: return a < b;
      case Pred::Sgt: return a > b;
      case Pred::Sle: return a <= b;
      case Pred::Sge: return a >= b;
      case Pred::Eq: return a == b;
      case Pred::Ne: return a != b;
      default: return false;
    }
  }
  int64_t checkedInt(const Instr& in, __int128 wide) const {
    if (wide > INT64_MAX || wide < INT64_MIN) fail("integer overflow of an nsw operation");
    return static_cast<int64_t>(wide);
  }

  void block(int b) {
    for (const Instr& in : fn_.blocks[static_cast<size_t>(b)]) {
      if (++executed_ > 400'000'000ull) fail("more than 4e8 instructions: a runaway loop");
      switch (in.code) {
        case Code::Arg: setInt(in, args_[in.imm]); break;
        case Code::Param: fail("a hook's parameter: hooks are recorded, not run");
        case Code::FAdd: setReal(in, real(in.a) + real(in.b)); break;
        case Code::FSub: setReal(in, real(in.a) - real(in.b)); break;
        case Code::FMul: setReal(in, real(in.a) * real(in.b)); break;
        case Code::FDiv: setReal(in, real(in.a) / real(in.b)); break;
        case Code::FNeg: setReal(in, -real(in.a)); break;
        case Code::FCmp: setInt(in, compare(in.pred, real(in.a), real(in.b))); break;
        case Code::Select: {
          const bool c = integer(in.a) != 0;
          if (in.real) setReal(in, c ? real(in.b) : real(in.c));
          else setInt(in, c ? integer(in.b) : integer(in.c));
          break;
        }
        case Code::Tanh: setReal(in, std::tanh(real(in.a))); break;
        case Code::Erf: setReal(in, std::erf(real(in.a))); break;
        case Code::Erfc: setReal(in, std::erfc(real(in.a))); break;
        case Code::Exp: setReal(in, std::exp(real(in.a))); break;
        case Code::Log: setReal(in, std::log(real(in.a))); break;
        case Code::Exp2: setReal(in, std::exp2(real(in.a))); break;
        case Code::Log2: setReal(in, std::log2(real(in.a))); break;
        case Code::Sqrt: setReal(in, std::sqrt(real(in.a))); break;
        case Code::Fabs: setReal(in, std::fabs(real(in.a))); break;
        case Code::Pow: setReal(in, std::pow(real(in.a), real(in.b))); break;
        case Code::Powi: setReal(in, std::pow(real(in.a), static_cast<double>(in.imm))); break;
        case Code::Bool2Real: setReal(in, integer(in.a) != 0 ? 1.0 : 0.0); break;
        case Code::Real2Bool: setInt(in, real(in.a) != 0); break;
        case Code::SiToFp: setReal(in, static_cast<double>(integer(in.a))); break;
        case Code::And: setInt(in, (integer(in.a) != 0) && (integer(in.b) != 0)); break;
        case Code::Or: setInt(in, (integer(in.a) != 0) || (integer(in.b) != 0)); break;
        case Code::IAdd: setInt(in, checkedInt(in, static_cast<__int128>(integer(in.a)) + integer(in.b))); break;
        case Code::ISub: setInt(in, checkedInt(in, static_cast<__int128>(integer(in.a)) - integer(in.b))); break;
        case Code::IMul: setInt(in, checkedInt(in, static_cast<__int128>(integer(in.a)) * integer(in.b))); break;
        case Code::IAnd: setInt(in, integer(in.a) & integer(in.b)); break;
        case Code::ICmp: setInt(in, compare(in.pred, integer(in.a), integer(in.b))); break;
        case Code::Gep: setInt(in, integer(in.a) + integer(in.b) * in.size); break;
        case Code::Load: {
          const unsigned char* p = address(integer(in.a), in.size);
          if (in.real && in.size == 4) {
            float x;
            std::memcpy(&x, p, 4);
            setReal(in, x);
          } else if (in.real) {
            double x;
            std::memcpy(&x, p, 8);
            setReal(in, x);
          } else {
            int64_t x = 0;
            std::memcpy(&x, p, static_cast<size_t>(in.size));
            setInt(in, x);
          }
          break;
        }
        case Code::Store: {
          unsigned char* p = address(integer(in.b), in.size);
          if (in.real && in.size == 4) {
            const auto x = static_cast<float>(real(in.a));
            std::memcpy(p, &x, 4);
          } else if (in.real) {
            const double x = real(in.a);
            std::memcpy(p, &x, 8);
          } else {
            const int64_t x = integer(in.a);
            std::memcpy(p, &x, static_cast<size_t>(in.size));
          }
          break;
        }
        case Code::Loop: {
          const int64_t lo = integer(in.a), hi = integer(in.b);
          for (int64_t iv = lo; iv < hi; iv += in.imm) {
            regs_[static_cast<size_t>(in.dst)].i = iv;
            block(in.block);
          }
          break;
        }
        case Code::If:
          if (integer(in.a) != 0) block(in.block);
          break;
      }
    }
  }
};

// Arrays of the kernels' element type for one call.
struct Buffer {
  bool f32 = false;
  std::vector<double> d;
  std::vector<float> f;
  const char* name = "";

  Buffer(bool f32, const std::vector<double>& x, const char* name) : f32(f32), name(name) {
    if (f32) f.assign(x.begin(), x.end());
    else d = x;
  }
  Buffer(bool f32, size_t size, const char* name) : Buffer(f32, std::vector<double>(size, 0.0), name) {}
  size_t element() const { return f32 ? 4 : 8; }
  uintptr_t at(int64_t e) const {
    return f32 ? reinterpret_cast<uintptr_t>(f.data() + e) : reinterpret_cast<uintptr_t>(d.data() + e);
  }
  size_t size() const { return f32 ? f.size() : d.size(); }
  // The slice [e0, e0 + count) as a region, cut to the elements that exist (so a caller's
  // shape larger than its data is caught, not trusted).
  Region region(int64_t e0, int64_t count) const {
    const auto n = static_cast<int64_t>(size());
    const int64_t begin = std::min(e0, n), end = std::min(e0 + count, n);
    return {at(begin), at(end), name};
  }
  std::vector<double> values() const { return f32 ? std::vector<double>(f.begin(), f.end()) : d; }
  double get(int64_t e) const { return f32 ? f[static_cast<size_t>(e)] : d[static_cast<size_t>(e)]; }
  void set(int64_t e, double x) {
    if (f32) f[static_cast<size_t>(e)] = static_cast<float>(x);
    else d[static_cast<size_t>(e)] = x;
  }
};

constexpr int64_t kRowBlock = 32;  // CpuBackend's

std::vector<double> inverseNorms(const Buffer& x, int64_t rows, int64_t d) {
  std::vector<double> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) s += x.get(r * d + c) * x.get(r * d + c);
    out[static_cast<size_t>(r)] = s == 0 ? 0 : 1 / std::sqrt(s);
  }
  return out;
}

}  // namespace

InterpretedKernels::InterpretedKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                       int64_t d, int64_t dv)
    : f32_(real == "float") {
  kernels::WriterFactory factory = [this](const std::string& name, const std::string& type) {
    auto fn = std::make_shared<RecordedFunction>();
    fn->name = name;
    if (functions_.count(name)) throw KernelError("two functions named " + name);
    return std::make_unique<Recorder>(fn, type, [this, fn] { functions_[fn->name] = fn; });
  };
  source_ = kernels::generateScalarKernels(plan, backward, real, {d, dv}, factory);
  if (!functions_.count(source_.forward)) throw KernelError("no forward function recorded");
}

InterpretedKernels::~InterpretedKernels() = default;

void InterpretedKernels::recordFloatAndHooks(const KernelPlan& plan, const BackwardPlan& backward) {
  auto factory = [](bool approximate) {
    return [approximate](const std::string& name, const std::string& type) -> std::unique_ptr<KernelWriter> {
      auto fn = std::make_shared<RecordedFunction>();
      fn->name = name;
      return std::make_unique<Recorder>(fn, type, nullptr, approximate);
    };
  };
  kernels::generateScalarKernels(plan, backward, "float", {}, factory(false));
  const kernels::KernelSizes sizes{64, 64};
  kernels::generateElementHooks(plan, backward, "float", sizes, factory(true));
  if (backward.unsupported.empty()) kernels::generateBackwardHooks(plan, backward, "float", sizes, factory(true));
}

size_t InterpretedKernels::instructions() const {
  size_t n = 0;
  for (const auto& [name, fn] : functions_) n += fn->instructions;
  return n;
}

const RecordedFunction& InterpretedKernels::function(const std::string& name) const {
  auto it = functions_.find(name);
  if (it == functions_.end()) throw KernelError("function " + name + " was not recorded");
  return *it->second;
}

namespace {

// The arrays of one head as the kernels see them (CpuBackend's HeadInputs::fill).
struct HeadArrays {
  const kernels::ScalarKernels& src;
  const kernels::Shape& s;
  std::vector<Buffer*> buffers;  // indexed by Arg; null where absent
  std::vector<int64_t> perHead;  // elements per head of each

  HeadArrays(const kernels::ScalarKernels& src, const kernels::Shape& s)
      : src(src), s(s), buffers(kernels::kArgCount, nullptr), perHead(kernels::kArgCount, 0) {}

  void set(int slot, Buffer* b, int64_t elementsPerHead) {
    buffers[static_cast<size_t>(slot)] = b;
    perHead[static_cast<size_t>(slot)] = elementsPerHead;
  }
  // The arguments and regions of head h.
  void fill(int64_t h, int64_t* a, std::vector<Region>& regions) const {
    for (int slot = 0; slot < kernels::kArgCount; ++slot) {
      const Buffer* b = buffers[static_cast<size_t>(slot)];
      if (!b) continue;
      const int64_t n = perHead[static_cast<size_t>(slot)];
      a[slot] = static_cast<int64_t>(b->at(h * n));
      regions.push_back(b->region(h * n, n));
    }
    a[kernels::kLq] = s.lq;
    a[kernels::kLk] = s.lk;
    a[kernels::kD] = s.d;
    a[kernels::kDvDim] = s.dv;
  }
};

void call(const RecordedFunction& fn, const HeadArrays& arrays, int64_t h, const std::function<void(int64_t*)>& set) {
  int64_t a[kernels::kArgCount] = {};
  std::vector<Region> regions;
  arrays.fill(h, a, regions);
  set(a);
  Machine(fn, std::move(regions)).run(a);
}

void checkSizes(const kernels::ScalarKernels& src, const kernels::Shape& s) {
  if (src.sizes.d != 0 && (src.sizes.d != s.d || src.sizes.dv != s.dv))
    throw KernelError("kernels specialised for other head dimensions");
}

}  // namespace

void InterpretedKernels::forward(const kernels::Shape& s, const std::vector<double>& q, const std::vector<double>& k,
                                 const std::vector<double>& v, std::vector<double>& o,
                                 std::vector<double>& stats) const {
  using namespace kernels;
  checkSizes(source_, s);
  Buffer bq(f32_, q, "q"), bk(f32_, k, "k"), bv(f32_, v, "v");
  Buffer bo(f32_, static_cast<size_t>(s.heads * s.lq * s.dv), "o");
  Buffer bs(f32_, static_cast<size_t>(s.heads * s.lq * source_.statSlots), "stats");
  Buffer brq(f32_, source_.needsQueryNorm ? inverseNorms(bq, s.heads * s.lq, s.d) : std::vector<double>(), "rq");
  Buffer brk(f32_, source_.needsKeyNorm ? inverseNorms(bk, s.heads * s.lk, s.d) : std::vector<double>(), "rk");
  HeadArrays arrays(source_, s);
  arrays.set(kQ, &bq, s.lq * s.d);
  arrays.set(kK, &bk, s.lk * s.d);
  arrays.set(kV, &bv, s.lk * s.dv);
  arrays.set(kO, &bo, s.lq * s.dv);
  arrays.set(kStats, &bs, s.lq * source_.statSlots);
  if (source_.needsQueryNorm) arrays.set(kRq, &brq, s.lq);
  if (source_.needsKeyNorm) arrays.set(kRk, &brk, s.lk);
  const RecordedFunction& fn = function(source_.forward);
  for (int64_t h = 0; h < s.heads; ++h)
    for (int64_t r0 = 0; r0 < s.lq; r0 += kRowBlock)
      call(fn, arrays, h, [&](int64_t* a) {
        a[kR0] = r0;
        a[kR1] = std::min(s.lq, r0 + kRowBlock);
      });
  o = bo.values();
  stats = bs.values();
}

void InterpretedKernels::backward(const kernels::Shape& s, const std::vector<double>& q, const std::vector<double>& k,
                                  const std::vector<double>& v, const std::vector<double>& o,
                                  const std::vector<double>& stats, const std::vector<double>& dout,
                                  std::vector<double>& dq, std::vector<double>& dk, std::vector<double>& dv,
                                  bool oneSweep, int64_t keyChunk) const {
  using namespace kernels;
  checkSizes(source_, s);
  if (!hasBackward()) throw KernelError("backward requested of kernels without one");
  Buffer bq(f32_, q, "q"), bk(f32_, k, "k"), bv(f32_, v, "v"), bo(f32_, o, "o"), bs(f32_, stats, "stats");
  Buffer bd(f32_, dout, "dout");
  const std::vector<double> rq = source_.needsQueryNorm ? inverseNorms(bq, s.heads * s.lq, s.d) : std::vector<double>();
  const std::vector<double> rk = source_.needsKeyNorm ? inverseNorms(bk, s.heads * s.lk, s.d) : std::vector<double>();
  Buffer brq(f32_, rq, "rq"), brk(f32_, rk, "rk");
  Buffer bqBar(f32_, rq.size(), "rqBar"), bkBar(f32_, rk.size(), "rkBar");
  const int64_t slots = source_.adjointSlots;
  Buffer badj(f32_, static_cast<size_t>(s.heads * s.lq * std::max<int64_t>(slots, 1)), "adj");
  for (int64_t row = 0; row < s.heads * s.lq; ++row) {
    double dot = 0;
    for (int64_t c = 0; c < s.dv; ++c) dot += bd.get(row * s.dv + c) * bo.get(row * s.dv + c);
    for (int slot : source_.identitySlots) badj.set(row * slots + slot, dot);
  }
  Buffer bdq(f32_, static_cast<size_t>(s.heads * s.lq * s.d), "dq"), bdk(f32_, static_cast<size_t>(s.heads * s.lk * s.d), "dk");
  Buffer bdv(f32_, static_cast<size_t>(s.heads * s.lk * s.dv), "dv");
  HeadArrays arrays(source_, s);
  arrays.set(kQ, &bq, s.lq * s.d);
  arrays.set(kK, &bk, s.lk * s.d);
  arrays.set(kV, &bv, s.lk * s.dv);
  arrays.set(kO, &bo, s.lq * s.dv);
  arrays.set(kStats, &bs, s.lq * source_.statSlots);
  if (source_.needsQueryNorm) {
    arrays.set(kRq, &brq, s.lq);
    arrays.set(kRqBar, &bqBar, s.lq);
  }
  if (source_.needsKeyNorm) {
    arrays.set(kRk, &brk, s.lk);
    arrays.set(kRkBar, &bkBar, s.lk);
  }
  arrays.set(kDout, &bd, s.lq * s.dv);
  arrays.set(kAdj, &badj, s.lq * std::max<int64_t>(slots, 1));
  arrays.set(kDq, &bdq, s.lq * s.d);
  arrays.set(kDk, &bdk, s.lk * s.d);
  arrays.set(kDv, &bdv, s.lk * s.dv);
  // Row blocks as CpuBackend runs them: a row pass sets only the rows; the dq sweep also
  // all keys and flags 1.
  auto rowBlocks = [&](const RecordedFunction& fn, bool gradient) {
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t r0 = 0; r0 < s.lq; r0 += kRowBlock)
        call(fn, arrays, h, [&](int64_t* a) {
          a[kR0] = r0;
          a[kR1] = std::min(s.lq, r0 + kRowBlock);
          if (!gradient) return;
          a[kJ0] = 0;
          a[kJ1] = s.lk;
          a[kFlags] = 1;
        });
  };
  for (const std::string& pass : source_.rowPasses) rowBlocks(function(pass), false);
  const RecordedFunction& gradient = function(source_.gradient);
  if (oneSweep) {
    for (int64_t h = 0; h < s.heads; ++h)
      call(gradient, arrays, h, [&](int64_t* a) {
        a[kR0] = 0;
        a[kR1] = s.lq;
        a[kJ0] = 0;
        a[kJ1] = s.lk;
        a[kFlags] = 3;
      });
  } else {
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t j0 = 0; j0 < s.lk; j0 += keyChunk)
        call(gradient, arrays, h, [&](int64_t* a) {
          a[kR0] = 0;
          a[kR1] = s.lq;
          a[kJ0] = j0;
          a[kJ1] = std::min(s.lk, j0 + keyChunk);
          a[kFlags] = 2;
        });
    rowBlocks(gradient, true);
  }
  // d(1/|x|)/dx = -(1/|x|)^3 x: the l2norm's share (CpuBackend's finishNorm).
  auto finishNorm = [](const std::vector<double>& r, const Buffer& bar, const Buffer& x, Buffer& dx, int64_t rows,
                       int64_t d) {
    for (int64_t row = 0; row < rows; ++row) {
      const double ri = r[static_cast<size_t>(row)];
      const double f = -bar.get(row) * ri * ri * ri;
      for (int64_t c = 0; c < d; ++c) dx.set(row * d + c, dx.get(row * d + c) + f * x.get(row * d + c));
    }
  };
  if (source_.needsQueryNorm) finishNorm(rq, bqBar, bq, bdq, s.heads * s.lq, s.d);
  if (source_.needsKeyNorm) finishNorm(rk, bkBar, bk, bdk, s.heads * s.lk, s.d);
  dq = bdq.values();
  dk = bdk.values();
  dv = bdv.values();
}

}  // namespace attn::fuzz
