// A small writer of textual LLVM IR for the CPU code generator: one function at a time,
// scalar variables as allocas (LLVM's mem2reg/SROA turns them into registers), counted
// loops and conditionals as callbacks, float arithmetic with the fast-math flags that let
// the vectoriser reassociate reductions (but not nnan/ninf: -inf is a value we use).
//
// It knows nothing about attention; CpuCodegen.cpp says what to compute.
#pragma once

#include <functional>
#include <set>
#include <string>

namespace attn::llvmjit {

class TextFunction {
 public:
  /// `real` is the element type: "float" or "double".
  TextFunction(std::string name, std::string real);

  const std::string& real() const { return real_; }
  /// "f32" or "f64": the suffix of intrinsics on the element type.
  const std::string& suffix() const { return suffix_; }

  std::string tmp();  ///< a fresh SSA name
  void emit(const std::string& line);  ///< one instruction in the current block

  // --- values
  std::string constant(double value) const;  ///< a literal of the element type
  static std::string i64(long long value) { return std::to_string(value); }
  std::string arg(int slot, const std::string& type);  ///< the slot-th 8-byte field of %args

  // --- arithmetic on the element type
  std::string fop(const std::string& op, const std::string& a, const std::string& b);  ///< fadd, fmul ...
  std::string fneg(const std::string& a);
  std::string fcmp(const std::string& pred, const std::string& a, const std::string& b);  ///< i1
  std::string select(const std::string& cond, const std::string& a, const std::string& b,
                     const std::string& type = "");
  std::string call(const std::string& fn, const std::string& a);  ///< fn(real) -> real
  std::string call2(const std::string& fn, const std::string& a, const std::string& b);
  std::string intrinsic(const std::string& base, const std::string& a);  ///< llvm.BASE.f32(a)
  std::string intrinsic2(const std::string& base, const std::string& a, const std::string& b);
  std::string powi(const std::string& a, int exponent);
  std::string bool2real(const std::string& i1);
  std::string real2bool(const std::string& x);  ///< x != 0
  std::string sitofp(const std::string& i64value);

  // --- integers (i64)
  std::string iop(const std::string& op, const std::string& a, const std::string& b);  ///< add, sub, mul ...
  std::string icmp(const std::string& pred, const std::string& a, const std::string& b);
  std::string imin(const std::string& a, const std::string& b);
  std::string imax(const std::string& a, const std::string& b);

  // --- memory
  std::string gep(const std::string& type, const std::string& base, const std::string& index);
  std::string load(const std::string& type, const std::string& ptr);
  void store(const std::string& type, const std::string& value, const std::string& ptr);
  /// A stack variable of `type` (an alloca in the entry block); `count` elements.
  std::string variable(const std::string& type, int count = 1);
  std::string loadReal(const std::string& ptr) { return load(real_, ptr); }
  void storeReal(const std::string& value, const std::string& ptr) { store(real_, value, ptr); }
  /// real[index] of a pointer to reals
  std::string realAt(const std::string& base, const std::string& index) { return gep(real_, base, index); }

  // --- control flow
  /// for (iv = lo; iv < hi; iv += step) body(iv); lo, hi i64.
  void loop(const std::string& lo, const std::string& hi, const std::function<void(const std::string&)>& body,
            long long step = 1);
  void ifThen(const std::string& cond, const std::function<void()>& then);

  /// The function's text and the declarations it needs.
  std::string finish();
  const std::set<std::string>& declarations() const { return declarations_; }

 private:
  std::string name_, real_, suffix_;
  std::string entry_, body_;
  std::set<std::string> declarations_;
  int next_ = 0;
  std::string label();
  void startBlock(const std::string& label);
};

}  // namespace attn::llvmjit
