// The LLVM half of the CPU backend's machinery: textual LLVM IR in, a callable function
// out, compiled by ORC LLJIT for the host CPU (its own vector width and features) after
// LLVM's O3 pipeline. The code generator that turns a KernelPlan into that IR is the next
// step (issue 4); this file is deliberately only the JIT.
//
// LLVM headers stay inside LlvmJit.cpp: they are slow to compile and pull in their own
// build flags.
#pragma once

#include <memory>
#include <string>

namespace attn::llvmjit {

class Jit {
 public:
  /// A JIT for the host CPU. Throws InternalError if LLVM cannot target this machine.
  static std::unique_ptr<Jit> create();
  ~Jit();

  /// Parses `ir` (LLVM assembly), optimises it at O3 for the host, adds it to the JIT and
  /// returns the address of `symbol`. Symbols must be unique across calls. Malformed IR is
  /// our bug, not the user's: an InternalError naming the line. With `optimisedIr`, the
  /// module after optimisation is returned as text (for tests and `attn emit`).
  void* compile(const std::string& ir, const std::string& symbol, std::string* optimisedIr = nullptr);

  /// "x86_64-pc-linux-gnu, cpu znver3": what the code is compiled for.
  std::string host() const;

 private:
  struct State;
  explicit Jit(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace attn::llvmjit
