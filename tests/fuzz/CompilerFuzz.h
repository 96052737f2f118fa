// Fuzzing of the whole compiler: every input that checks goes on through lowering, the IR
// passes, scheduling, differentiation and the scalar kernel generator (forward, backward
// row passes, gradient pass, and the tensor-core kernels' per-element hooks), and is then
// executed forward and backward on tiny random shapes by the interpreting KernelWriter
// (KernelInterpreter.h), the generator's code the CPU and CUDA backends compile.
//
// Properties, beyond the front end's (FrontendFuzz.h):
// - no stage throws (an InternalError, a KernelError of the interpreter, anything): a
//   program that checks is compiled;
// - the kernels' o equals the plan interpreter's (compiler/PlanInterpreter.h, double) to
//   1e-9 relative to max |o| on every shape where the latter is finite and well
//   conditioned (moving the inputs by 1e-13 relative moves o by at most 1e-7 of its
//   scale: a program like l1norm(x - rowmax(x)) with all x equal normalises rounding
//   noise, and no two correct implementations agree on it);
// - where the program has a backward, its dq, dk, dv equal float64 central finite
//   differences of <o, dout> (tests/FiniteDifferences.h) to 1e-6 relative to the
//   gradient's scale, on the elements the differences can measure (not on kinks);
//   the gradient pass runs in one of the CPU driver's two schedules, at random.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace attn::fuzz {

struct CompilerOutcome {
  bool selected = false;   ///< checked, with one attention to compile
  bool compiled = false;   ///< reached a KernelPlan and generated kernels
  bool executed = false;   ///< ran forward (and backward, where there is one) on a shape
  bool gradients = false;  ///< gradients compared with finite differences
  int shapes = 0;          ///< shapes run
  int notFinite = 0;       ///< shapes skipped: the plan interpreter's o was not finite
  int illConditioned = 0;  ///< shapes skipped: o moves by > 1e-7 when the inputs move by 1e-13
  double forwardError = 0, gradientError = 0;  ///< the largest over the shapes
  std::string failure;     ///< empty when every property held
};

/// Compiles `text` (when it checks) and, with `execute`, runs it on `shapes` tiny shapes
/// drawn from `rng`.
CompilerOutcome runCompiler(const std::string& text, bool execute, int shapes, std::mt19937_64& rng);

struct CompilerStats {
  uint64_t inputs = 0, parsed = 0, checked = 0, compiled = 0, executed = 0, gradients = 0, failures = 0;
  uint64_t shapes = 0, notFinite = 0, illConditioned = 0;
  double forwardError = 0, gradientError = 0;
  std::string firstFailure, firstFailingInput;
};

/// `iterations` inputs through the front end (FrontendFuzz.h's properties) and the
/// compiler: mutated `seeds`, random programs (tests/RandomProgram.h, both focuses, some
/// mutated) and random bytes. A fraction `executeFraction` of the inputs that compile is
/// executed (on 2 shapes each).
CompilerStats fuzzCompiler(const std::vector<std::string>& seeds, uint64_t iterations, uint64_t seed,
                           double executeFraction = 1.0);

}  // namespace attn::fuzz
