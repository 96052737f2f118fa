// KernelWriter: the small, target-neutral vocabulary the scalar kernel generator
// (ScalarKernels.cpp) writes its kernels in — scalar variables, counted loops,
// conditionals, float and integer arithmetic, loads and stores. Two targets implement it:
//   - codegen/llvm/TextIR.h    textual LLVM IR (the CPU backend), and
//   - codegen/cuda/CudaWriter.h CUDA C++ (the CUDA backend's float32 kernels and the
//                               per-element hooks of its tensor-core kernels).
// Values are strings naming something in the target's text (an SSA temporary, a literal);
// every method that computes returns a fresh one. It knows nothing about attention.
//
// Types are named the LLVM way whatever the target: the element type "float" or "double"
// (real()), "i64" for integers, "ptr" for pointers; conditions ("i1") come from fcmp, icmp,
// real2bool and the logic methods.
#pragma once

#include <functional>
#include <set>
#include <stdexcept>
#include <string>

namespace attn::kernels {

class KernelWriter {
 public:
  virtual ~KernelWriter() = default;

  /// "float" or "double": the element type of every real value.
  virtual const std::string& real() const = 0;
  /// True where the target tolerates approximate exp, log and division (the CUDA tensor-core
  /// hooks: fp16/bf16 operands). The generator then may ask for intrinsic("log_approx", x),
  /// a log with an absolute error near 2^-21, and keeps the relative error of what it builds
  /// from it bounded itself (softplus). False: every operation as exact as libm's.
  virtual bool approximateMath() const { return false; }

  // --- values
  virtual std::string constant(double value) const = 0;  ///< a literal of the element type
  static std::string i64(long long value) { return std::to_string(value); }
  /// The slot-th 8-byte field of the kernel's argument array, as "ptr" or "i64".
  virtual std::string arg(int slot, const std::string& type) = 0;
  /// A named parameter of the function ("ptr", "i64" or the element type), for functions
  /// that are not kernels (the tensor-core kernels' hooks); a function with parameters has
  /// no argument array. Targets without such functions need not implement it.
  virtual std::string param(const std::string& type, const std::string& name);

  // --- arithmetic on the element type
  /// op: fadd, fsub, fmul, fdiv.
  virtual std::string fop(const std::string& op, const std::string& a, const std::string& b) = 0;
  virtual std::string fneg(const std::string& a) = 0;
  /// pred: LLVM's ordered predicates oeq, ogt, oge, olt, ole, and une (true on NaN). -> i1
  virtual std::string fcmp(const std::string& pred, const std::string& a, const std::string& b) = 0;
  /// cond ? a : b; `type` is the element type when empty, else "i64".
  virtual std::string select(const std::string& cond, const std::string& a, const std::string& b,
                             const std::string& type = "") = 0;
  /// fn(a) for a C math library function of the element type ("tanhf", "erf" ...).
  virtual std::string call(const std::string& fn, const std::string& a) = 0;
  /// base: exp, log, exp2, log2, sqrt, fabs.
  virtual std::string intrinsic(const std::string& base, const std::string& a) = 0;
  /// base: pow.
  virtual std::string intrinsic2(const std::string& base, const std::string& a, const std::string& b) = 0;
  virtual std::string powi(const std::string& a, int exponent) = 0;
  virtual std::string bool2real(const std::string& i1) = 0;
  virtual std::string real2bool(const std::string& x) = 0;  ///< x != 0
  virtual std::string sitofp(const std::string& i64value) = 0;

  // --- conditions (i1)
  virtual std::string andBool(const std::string& a, const std::string& b) = 0;
  virtual std::string orBool(const std::string& a, const std::string& b) = 0;

  // --- integers (i64)
  /// op: "add nsw", "sub nsw", "mul nsw", "and".
  virtual std::string iop(const std::string& op, const std::string& a, const std::string& b) = 0;
  /// pred: slt, sgt, ne.
  virtual std::string icmp(const std::string& pred, const std::string& a, const std::string& b) = 0;
  std::string imin(const std::string& a, const std::string& b) { return select(icmp("slt", a, b), a, b, "i64"); }
  std::string imax(const std::string& a, const std::string& b) { return select(icmp("sgt", a, b), a, b, "i64"); }

  // --- memory
  /// &base[index] for a pointer to `type`.
  virtual std::string gep(const std::string& type, const std::string& base, const std::string& index) = 0;
  virtual std::string load(const std::string& type, const std::string& ptr) = 0;
  virtual void store(const std::string& type, const std::string& value, const std::string& ptr) = 0;
  /// A function-wide variable of `type` with `count` elements; the result is its address.
  virtual std::string variable(const std::string& type, int count = 1) = 0;
  std::string loadReal(const std::string& ptr) { return load(real(), ptr); }
  void storeReal(const std::string& value, const std::string& ptr) { store(real(), value, ptr); }
  std::string realAt(const std::string& base, const std::string& index) { return gep(real(), base, index); }

  // --- control flow
  /// for (iv = lo; iv < hi; iv += step) body(iv); lo, hi i64.
  virtual void loop(const std::string& lo, const std::string& hi,
                    const std::function<void(const std::string&)>& body, long long step = 1) = 0;
  virtual void ifThen(const std::string& cond, const std::function<void()>& then) = 0;

  /// The whole function's text.
  virtual std::string finish() = 0;
  /// What the function needs declared at module level (LLVM: the intrinsics it calls).
  virtual const std::set<std::string>& declarations() const = 0;
};

inline std::string KernelWriter::param(const std::string&, const std::string& name) {
  throw std::logic_error("attn internal error: this code generation target has no function parameters (" + name + ")");
}

}  // namespace attn::kernels
