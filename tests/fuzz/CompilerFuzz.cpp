#include "fuzz/CompilerFuzz.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>

#include "FiniteDifferences.h"
#include "RandomProgram.h"
#include "compiler/Diagnostics.h"
#include "compiler/Differentiate.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"
#include "compiler/PlanInterpreter.h"
#include "compiler/Schedule.h"
#include "fuzz/FrontendFuzz.h"
#include "fuzz/KernelInterpreter.h"

namespace attn::fuzz {

namespace {

std::string number(double x) {
  std::ostringstream os;
  os.precision(6);
  os << x;
  return os.str();
}

// The inputs of a failing shape, exactly (17 digits), to replay it outside the fuzzer.
std::string inputsOf(const test::HeadInputs& x) {
  std::ostringstream os;
  os.precision(17);
  const std::pair<const char*, const std::vector<double>*> tensors[] = {{"q", &x.q}, {"k", &x.k}, {"v", &x.v},
                                                                        {"dout", &x.dout}};
  for (const auto& [name, values] : tensors) {
    os << "\n  " << name << " = [";
    for (size_t e = 0; e < values->size(); ++e) os << (e ? ", " : "") << (*values)[e];
    os << "]";
  }
  return os.str();
}

// One tiny shape: heads = 1, Lq <= Lk.
struct TinyShape {
  int64_t lq, lk, d, dv;
};

TinyShape drawShape(std::mt19937_64& rng, int64_t d, int64_t dv) {
  std::uniform_int_distribution<int64_t> lq(1, 4), extra(0, 3);
  const int64_t q = lq(rng);
  return {q, q + extra(rng), d, dv};
}

}  // namespace

CompilerOutcome runCompiler(const std::string& text, bool execute, int shapes, std::mt19937_64& rng) {
  CompilerOutcome out;
  std::string stage = "the front end";
  try {
    DiagnosticEngine diags;
    ast::Module module = parseModule(std::make_shared<SourceFile>("fuzz.attn", text), diags);
    if (diags.hasErrors()) return out;
    std::optional<CheckedAttention> checked = compileModule(module, {}, diags);
    if (!checked || diags.hasErrors()) return out;  // no attention, or several
    out.selected = true;
    stage = "lowering and the IR passes";
    ir::Graph graph = lowerAndOptimise(*checked);
    stage = "the schedule";
    KernelPlan plan = schedule(graph);
    stage = "differentiation";
    BackwardPlan backward = differentiate(plan);
    // Head dimensions (kernels specialised for them, or generic, at random): d >= 2, since
    // with d = 1 l2norm(q) = ±1 and every score of a row ties with every other in the
    // maths, which rounding then decides differently in every implementation.
    std::uniform_int_distribution<int64_t> dim(1, 3);
    const int64_t d = 1 + dim(rng), dv = dim(rng);
    const bool specialise = rng() % 2 == 0;
    stage = "the scalar kernel generator";
    InterpretedKernels kernels(plan, backward, "double", specialise ? d : 0, specialise ? dv : 0);
    InterpretedKernels::recordFloatAndHooks(plan, backward);
    out.compiled = true;
    if (!execute) return out;

    std::normal_distribution<double> normal;
    for (int s = 0; s < shapes; ++s) {
      const TinyShape t = drawShape(rng, d, dv);
      auto randn = [&](int64_t n) {
        std::vector<double> x(static_cast<size_t>(n));
        for (double& e : x) e = normal(rng);
        return x;
      };
      test::HeadInputs x{t.lq, t.lk, t.d, t.dv, randn(t.lq * t.d), randn(t.lk * t.d), randn(t.lk * t.dv),
                         randn(t.lq * t.dv)};
      const std::string where = " (Lq " + std::to_string(t.lq) + ", Lk " + std::to_string(t.lk) + ", d " +
                                std::to_string(t.d) + ", dv " + std::to_string(t.dv) + ")";
      stage = "the plan interpreter";
      const std::vector<double> want = interpretPlan(plan, x.q.data(), x.k.data(), x.v.data(), t.lq, t.lk, t.d, t.dv);
      double scale = 0;
      bool finite = true;
      for (double e : want) {
        finite = finite && std::isfinite(e);
        scale = std::max(scale, std::fabs(e));
      }
      if (!finite || scale > 1e150) {
        ++out.notFinite;
        continue;
      }
      // Ill-conditioned at this point (test::illConditioned: double rounding or a tie the
      // inputs' last bits decide): no two correct programs need agree there; skip the shape.
      const bool illConditioned = !test::illConditioned(plan, x).empty();
      if (illConditioned) {
        ++out.illConditioned;
        continue;
      }
      stage = "the interpreted forward kernel";
      kernels::Shape shape{1, t.lq, t.lk, t.d, t.dv};
      std::vector<double> o, stats;
      kernels.forward(shape, x.q, x.k, x.v, o, stats);
      ++out.shapes;
      out.executed = true;
      double err = 0;
      size_t worst = 0;
      for (size_t e = 0; e < o.size(); ++e) {
        const double ee = std::isfinite(o[e]) ? std::fabs(o[e] - want[e]) : INFINITY;
        if (ee > err || e == 0) worst = e;
        err = std::max(err, ee);
      }
      err /= std::max(scale, 1e-3);  // o = 0 in the maths: rounding noise near 1e-15
      out.forwardError = std::max(out.forwardError, err);
      if (!(err <= 1e-9)) {
        out.failure = "forward kernel differs from the plan interpreter by " + number(err) + ": o[" +
                      std::to_string(worst) + "] = " + number(o[worst]) + ", plan interpreter " + number(want[worst]) +
                      where + inputsOf(x);
        return out;
      }
      if (!kernels.hasBackward()) continue;
      stage = "the interpreted backward kernels";
      std::vector<double> dq, dk, dvv;
      const bool oneSweep = rng() % 2 == 0;
      const int64_t keyChunk = 1 + static_cast<int64_t>(rng() % 3);
      kernels.backward(shape, x.q, x.k, x.v, o, stats, x.dout, dq, dk, dvv, oneSweep, keyChunk);
      stage = "the finite differences";
      test::FdGradients fd = test::finiteDifferences(plan, x);
      if (!fd.finite || fd.untrusted * 2 > fd.elements) continue;  // too close to overflow or kinks
      test::refineWhereDifferent(plan, x, fd, dq, dk, dvv, 1e-6);  // beside a kink of relu(x)^3
      test::GradientError ge = test::compareWithFd(fd, dq, dk, dvv);
      out.gradients = true;
      out.gradientError = std::max(out.gradientError, ge.max());
      if (!(ge.max() <= 1e-6)) {
        out.failure = std::string("gradient (") + (oneSweep ? "one sweep" : "split") + ") differs from finite differences by " +
                      number(ge.max()) + " at " + ge.worst + where + inputsOf(x);
        return out;
      }
    }
  } catch (const std::exception& e) {
    out.failure = "in " + stage + ": " + e.what();
  }
  return out;
}

CompilerStats fuzzCompiler(const std::vector<std::string>& seeds, uint64_t iterations, uint64_t seed,
                           double executeFraction) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  CompilerStats stats;
  for (uint64_t it = 0; it < iterations; ++it) {
    std::string input;
    const uint64_t kind = rng() % 20;
    if (kind < 2 || (seeds.empty() && kind < 8)) {
      input = randomBytes(rng() % 600, rng() % 2 == 0, rng);
    } else if (kind < 12) {
      test::RandomProgramOptions options;
      if (rng() % 2) options.focus = test::RandomProgramOptions::Focus::Reductions;
      input = test::randomProgram(rng, options);
      if (rng() % 3 == 0) input = mutate(input, rng);
    } else {
      input = seeds[rng() % seeds.size()];
      const int rounds = 1 + static_cast<int>(rng() % 3);
      for (int r = 0; r < rounds; ++r) input = mutate(input, rng);
    }
    ++stats.inputs;
    Outcome front = runFrontend(input);
    stats.parsed += front.parsed;
    stats.checked += front.checked;
    std::string failure = front.failure;
    if (failure.empty() && front.checked) {
      CompilerOutcome c = runCompiler(input, unit(rng) < executeFraction, 2, rng);
      stats.compiled += c.compiled;
      stats.executed += c.executed;
      stats.gradients += c.gradients;
      stats.shapes += static_cast<uint64_t>(c.shapes);
      stats.notFinite += static_cast<uint64_t>(c.notFinite);
      stats.illConditioned += static_cast<uint64_t>(c.illConditioned);
      stats.forwardError = std::max(stats.forwardError, c.forwardError);
      stats.gradientError = std::max(stats.gradientError, c.gradientError);
      if (c.failure.empty() && c.selected && !c.compiled) c.failure = "a program that checks did not compile";
      failure = c.failure;
    }
    if (!failure.empty()) {
      if (stats.failures == 0) {
        stats.firstFailure = failure;
        stats.firstFailingInput = input;
      }
      ++stats.failures;
    }
  }
  return stats;
}

}  // namespace attn::fuzz
