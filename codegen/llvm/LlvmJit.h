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
#include <vector>

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

  /// Parses and optimises `ir` as compile() does, and returns the machine code as an
  /// object file (bytes), for the disk cache.
  std::string compileToObject(const std::string& ir, std::string* optimisedIr = nullptr);

  /// Loads an object file made by compileToObject (by this process or an earlier one) into
  /// a library of its own, so that its symbols need not be unique across objects, and
  /// returns the addresses of `symbols` in order. A damaged object is an InternalError.
  std::vector<void*> load(const std::string& object, const std::vector<std::string>& symbols);

  /// "x86_64-pc-linux-gnu, cpu znver3": what the code is compiled for.
  std::string host() const;

  /// What compiled code depends on besides its IR: LLVM's version, the target triple, the
  /// CPU and its features. Part of every disk-cache key.
  std::string fingerprint() const;

 private:
  struct State;
  explicit Jit(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace attn::llvmjit
