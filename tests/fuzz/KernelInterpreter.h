// Runs the scalar kernel generator's output without LLVM or a GPU: an interpreting
// KernelWriter (codegen/scalar/KernelWriter.h) records every call the generator makes as a
// small instruction tree (straight-line instructions, counted loops, conditionals), and
// the recorded functions then run on the host, in the element type they were written for
// (double or float: every float result rounded to float). The generator is the one the CPU
// backend (LLVM IR) and the CUDA backend (CUDA C++) share, so this executes the same
// kernels they compile, in a few microseconds per program instead of ~50 ms of LLVM.
//
// What it checks on its own while running (each a KernelError naming the function):
// every load and store falls inside one of the arrays the driver passed (not only in some
// mapped memory, as ASan would see), integers in the types the generator claimed, no
// unknown operation; and variables start as NaN (reals) or a poison integer, so a kernel
// that reads a variable before writing it gives NaN, not yesterday's value.
//
// The driver below replicates the CPU backend's (codegen/llvm/CpuBackend.cpp): row blocks
// of 32 queries, the identity adjoint slots filled with dO_i·o_i, the gradient pass either
// in one sweep or split into key blocks (dk, dv) and row blocks (dq), and the l2norm
// finish. Which of the two gradient schedules runs is the caller's choice, so a fuzzer
// can exercise both.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "codegen/scalar/ScalarKernels.h"
#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::fuzz {

/// A fault found while recording or running an interpreted kernel.
class KernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RecordedFunction;  // KernelInterpreter.cpp

/// The kernels of one plan, recorded.
class InterpretedKernels {
 public:
  /// Generates the plan's scalar kernels through the interpreting writer. `real` is
  /// "double" or "float"; d, dv > 0 specialise the head dimensions as the CPU backend does.
  InterpretedKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real, int64_t d = 0,
                     int64_t dv = 0);
  ~InterpretedKernels();

  /// Records, without keeping, what the CUDA backend generates besides: the float32 scalar
  /// kernels, and the tensor-core kernels' per-element hooks (approximate math, d = dv = 64)
  /// forward and backward. Each recording is checked as it is made (KernelError).
  static void recordFloatAndHooks(const KernelPlan& plan, const BackwardPlan& backward);

  const kernels::ScalarKernels& source() const { return source_; }
  bool hasBackward() const { return source_.backwardUnsupported.empty(); }
  /// Instructions recorded over all functions (a size measure for reports).
  size_t instructions() const;

  /// One head (heads = 1 in `shape` is not required: heads are flattened as in CpuBackend).
  /// o [heads, Lq, Dv] and stats [heads, Lq, statSlots]; arrays in the kernels' real type,
  /// passed as double and rounded to float inside when real is "float".
  void forward(const kernels::Shape& shape, const std::vector<double>& q, const std::vector<double>& k,
               const std::vector<double>& v, std::vector<double>& o, std::vector<double>& stats) const;
  /// dq, dk, dv of <o, dout>. oneSweep: the gradient pass over all rows and keys of a head
  /// at once (flags 3), else split as CpuBackend does with few heads (dk, dv over key blocks
  /// of keyChunk keys, then dq over row blocks).
  void backward(const kernels::Shape& shape, const std::vector<double>& q, const std::vector<double>& k,
                const std::vector<double>& v, const std::vector<double>& o, const std::vector<double>& stats,
                const std::vector<double>& dout, std::vector<double>& dq, std::vector<double>& dk,
                std::vector<double>& dv, bool oneSweep, int64_t keyChunk = 4 * kernels::kKeyBlock) const;

 private:
  kernels::ScalarKernels source_;
  bool f32_ = false;
  std::map<std::string, std::shared_ptr<RecordedFunction>> functions_;
  const RecordedFunction& function(const std::string& name) const;
};

}  // namespace attn::fuzz
