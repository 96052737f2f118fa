// CudaWriter: the KernelWriter (codegen/scalar/KernelWriter.h) that writes CUDA C++ — one
// `__device__` function `void NAME(long long* args)` per kernel, SSA-style `const auto`
// temporaries, function-wide arrays for the generator's variables, C++ loops and ifs. The
// scalar generator's kernels come out as plain, readable CUDA C++ that NVRTC compiles (and
// that a host C++ compiler compiles too, with codegen/cuda/skeleton/host_prelude.h: the tests
// run the generated CUDA on the CPU against the reference).
//
// Math is the CUDA math library's (expf, logf, powf ...). A writer made with Math::Approximate
// (the tensor-core modules' hooks: fp16/bf16 operands) writes exp and division as the
// special-function unit's approximations instead (attn_fast_exp, attn_fast_div in
// attn_math.cuh), and lets the generator use attn_fast_log where it bounds the error itself.
#pragma once

#include <string>

#include "codegen/scalar/KernelWriter.h"

namespace attn::cuda {

class CudaWriter final : public kernels::KernelWriter {
 public:
  enum class Math { Exact, Approximate };
  /// `real` is "float" or "double" (Approximate: float only).
  CudaWriter(std::string name, std::string real, Math math = Math::Exact);

  const std::string& real() const override { return real_; }
  bool approximateMath() const override { return math_ == Math::Approximate; }

  std::string constant(double value) const override;
  std::string arg(int slot, const std::string& type) override;
  std::string param(const std::string& type, const std::string& name) override;
  std::string fop(const std::string& op, const std::string& a, const std::string& b) override;
  std::string fneg(const std::string& a) override;
  std::string fcmp(const std::string& pred, const std::string& a, const std::string& b) override;
  std::string select(const std::string& cond, const std::string& a, const std::string& b,
                     const std::string& type = "") override;
  std::string call(const std::string& fn, const std::string& a) override;
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

  std::string finish() override;
  const std::set<std::string>& declarations() const override { return declarations_; }

 private:
  std::string name_, real_;
  Math math_;
  std::string entry_, body_;
  std::set<std::string> declarations_;
  int next_ = 0;
  int depth_ = 1;
  std::string params_;  ///< "float* stats, long long i, ..." when the function has named parameters
  std::string let(const std::string& expression);  ///< const auto tN = expression; -> tN
  void line(const std::string& text);
  std::string cType(const std::string& type) const;  ///< "i64" -> long long, "ptr" -> real*
  std::string mathName(const std::string& base) const;  ///< exp -> expf (float) or exp
};

}  // namespace attn::cuda
