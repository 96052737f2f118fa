// A small writer of textual LLVM IR for the CPU code generator: one function at a time,
// scalar variables as allocas (LLVM's mem2reg/SROA turns them into registers), counted
// loops and conditionals as callbacks, float arithmetic in exact IEEE semantics (no fast-math
// flags: a value recomputed in another kernel must equal the one computed first; TextIR.cpp).
//
// It implements codegen/scalar/KernelWriter.h and knows nothing about attention;
// codegen/scalar/ScalarKernels.cpp says what to compute.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "codegen/scalar/KernelWriter.h"

namespace attn::llvmjit {

class TextFunction final : public kernels::KernelWriter {
 public:
  /// `real` is the element type: "float" or "double".
  TextFunction(std::string name, std::string real);

  const std::string& real() const override { return real_; }
  /// "f32" or "f64": the suffix of intrinsics on the element type.
  const std::string& suffix() const { return suffix_; }

  std::string tmp();  ///< a fresh SSA name
  void emit(const std::string& line);  ///< one instruction in the current block

  std::string constant(double value) const override;
  std::string arg(int slot, const std::string& type) override;
  std::string fop(const std::string& op, const std::string& a, const std::string& b) override;
  std::string fneg(const std::string& a) override;
  std::string fcmp(const std::string& pred, const std::string& a, const std::string& b) override;
  std::string select(const std::string& cond, const std::string& a, const std::string& b,
                     const std::string& type = "") override;
  std::string call(const std::string& fn, const std::string& a) override;
  std::string call2(const std::string& fn, const std::string& a, const std::string& b);
  std::string intrinsic(const std::string& base, const std::string& a) override;
  std::string intrinsic2(const std::string& base, const std::string& a, const std::string& b) override;
  std::string powi(const std::string& a, int exponent) override;
  std::string bool2real(const std::string& i1) override;
  std::string real2bool(const std::string& x) override;
  std::string sitofp(const std::string& i64value) override;
  std::string andBool(const std::string& a, const std::string& b) override;
  std::string orBool(const std::string& a, const std::string& b) override;
  std::string iop(const std::string& op, const std::string& a, const std::string& b) override;
  std::string icmp(const std::string& pred, const std::string& a, const std::string& b) override;
  std::string gep(const std::string& type, const std::string& base, const std::string& index) override;
  std::string load(const std::string& type, const std::string& ptr) override;
  void store(const std::string& type, const std::string& value, const std::string& ptr) override;
  std::string variable(const std::string& type, int count = 1) override;
  void loop(const std::string& lo, const std::string& hi, const std::function<void(const std::string&)>& body,
            long long step = 1) override;
  void ifThen(const std::string& cond, const std::function<void()>& then) override;

  /// The function's text and the declarations it needs.
  std::string finish() override;
  const std::set<std::string>& declarations() const override { return declarations_; }

 private:
  std::string name_, real_, suffix_;
  std::string entry_, body_;
  std::set<std::string> declarations_;
  int next_ = 0;
  std::string label();
  void startBlock(const std::string& label);
};

}  // namespace attn::llvmjit
