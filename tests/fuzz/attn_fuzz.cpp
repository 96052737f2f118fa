// The long-running whole-compiler fuzzer, for local use (docs/TESTING.md):
//
//   cmake --preset asan && cmake --build build-asan --target attn_fuzz
//   build-asan/bin/attn_fuzz --inputs 1000000 --execute 0.05 --seed 1 stdlib/*.attn
//   build-asan/bin/attn_fuzz --replay attn-fuzz-failure.attn   (one input, 50 shapes)
//
// Inputs: mutations of the given seed programs, random programs (tests/RandomProgram.h,
// some mutated) and random bytes. Every input goes through the front end (FrontendFuzz.h's
// properties); every one that checks goes on through lowering, scheduling,
// differentiation and the scalar kernel generator, and a fraction (--execute, default 1)
// is run forward and backward on tiny shapes by the interpreting KernelWriter, its o
// checked against the plan interpreter and its gradients against float64 central finite
// differences (CompilerFuzz.h). --frontend-only keeps to the front end.
//
// Stops after --inputs N inputs or --seconds S (whichever comes first; default 60 s), prints
// a summary every 10 s and the throughput at the end, writes the first failing input to
// attn-fuzz-failure.attn, and exits 1 if any input failed (2 for a bad command line).
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/CompilerFuzz.h"
#include "fuzz/FrontendFuzz.h"

namespace {

int usage(const std::string& problem) {
  std::cerr << "attn_fuzz: " << problem
            << "\nusage: attn_fuzz [--seconds S] [--inputs N] [--seed N] [--execute FRACTION] [--frontend-only] "
               "SEED.attn...\n";
  return 2;
}

bool number(const char* text, double& out) {
  char* end = nullptr;
  out = std::strtod(text, &end);
  return *text && *end == '\0' && out >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 60, inputs = 0, execute = 1;
  uint64_t seed = 1;
  bool frontendOnly = false;
  std::string replay;
  std::vector<std::string> seeds;
  for (int a = 1; a < argc; ++a) {
    const std::string flag = argv[a];
    auto value = [&](double& out) {
      if (a + 1 >= argc || !number(argv[a + 1], out)) return false;
      ++a;
      return true;
    };
    double v = 0;
    if (flag == "--seconds") {
      if (!value(seconds)) return usage("--seconds takes a number of seconds");
    } else if (flag == "--inputs") {
      if (!value(inputs)) return usage("--inputs takes a count");
    } else if (flag == "--execute") {
      if (!value(execute) || execute > 1) return usage("--execute takes a fraction in [0, 1]");
    } else if (flag == "--seed") {
      if (!value(v)) return usage("--seed takes a number");
      seed = static_cast<uint64_t>(v);
    } else if (flag == "--replay") {
      if (a + 1 >= argc) return usage("--replay takes a file");
      replay = argv[++a];
      std::ifstream in(replay, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      if (in) seeds.push_back(text.str());
    } else if (flag == "--frontend-only") {
      frontendOnly = true;
    } else if (flag.rfind("--", 0) == 0) {
      return usage("unknown flag " + flag);
    } else {
      std::ifstream in(argv[a], std::ios::binary);
      if (!in) {
        std::cerr << "attn_fuzz: cannot read " << argv[a] << '\n';
        return 2;
      }
      std::ostringstream s;
      s << in.rdbuf();
      seeds.push_back(s.str());
    }
  }
  if (!replay.empty()) {
    // One input, on 50 shapes drawn from --seed: its outcome.
    if (seeds.empty()) return usage("--replay FILE: cannot read FILE");
    std::mt19937_64 rng(seed);
    attn::fuzz::CompilerOutcome c = attn::fuzz::runCompiler(seeds.back(), true, 50, rng);
    std::cout << "attn_fuzz: " << (c.compiled ? "compiled" : "not compiled") << ", " << c.shapes << " shapes, "
              << c.notFinite << " not finite, " << c.illConditioned << " ill-conditioned; max error: forward " << c.forwardError << ", gradient "
              << c.gradientError << "\n";
    if (!c.failure.empty()) std::cout << "FAILURE: " << c.failure << "\n";
    return c.failure.empty() ? 0 : 1;
  }
  if (inputs > 0 && seconds == 60) seconds = 1e18;  // --inputs alone: as long as it takes
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  attn::fuzz::CompilerStats total;
  double nextReport = 10;
  auto report = [&](const char* what) {
    std::cout << "attn_fuzz: " << what << elapsed() << " s, " << total.inputs << " inputs ("
              << total.inputs / std::max(elapsed(), 1e-9) << "/s), " << total.parsed << " parsed, " << total.checked
              << " checked";
    if (!frontendOnly)
      std::cout << ", " << total.compiled << " compiled, " << total.executed << " executed (" << total.shapes
                << " shapes, " << total.notFinite << " not finite, " << total.illConditioned << " ill-conditioned), " << total.gradients
                << " with gradients vs finite differences; max error: forward " << total.forwardError << ", gradient "
                << total.gradientError;
    std::cout << "; " << total.failures << " failures" << std::endl;
  };
  for (uint64_t round = 0; elapsed() < seconds && (inputs <= 0 || total.inputs < inputs); ++round) {
    const uint64_t batch = inputs > 0 ? std::min<uint64_t>(100, static_cast<uint64_t>(inputs) - total.inputs) : 100;
    const uint64_t roundSeed = seed * 1000003 + round;
    attn::fuzz::CompilerStats s;
    if (frontendOnly) {
      attn::fuzz::Stats f = attn::fuzz::fuzz(seeds, batch, roundSeed);
      s.inputs = f.inputs;
      s.parsed = f.parsed;
      s.checked = f.checked;
      s.failures = f.failures;
      s.firstFailure = f.firstFailure;
      s.firstFailingInput = f.firstFailingInput;
    } else {
      s = attn::fuzz::fuzzCompiler(seeds, batch, roundSeed, execute);
    }
    total.inputs += s.inputs;
    total.parsed += s.parsed;
    total.checked += s.checked;
    total.compiled += s.compiled;
    total.executed += s.executed;
    total.gradients += s.gradients;
    total.shapes += s.shapes;
    total.notFinite += s.notFinite;
    total.illConditioned += s.illConditioned;
    total.forwardError = std::max(total.forwardError, s.forwardError);
    total.gradientError = std::max(total.gradientError, s.gradientError);
    if (s.failures && !total.failures) {
      std::ofstream("attn-fuzz-failure.attn", std::ios::binary) << s.firstFailingInput;
      std::cerr << "attn_fuzz: FAILURE (round seed " << roundSeed << "): " << s.firstFailure
                << "\n(input written to attn-fuzz-failure.attn)\n";
    } else if (s.failures && total.failures < 20) {  // a few more, each round's first
      std::cerr << "attn_fuzz: FAILURE (round seed " << roundSeed << "): " << s.firstFailure << "\n--- input:\n"
                << s.firstFailingInput << "---\n";
    }
    total.failures += s.failures;
    if (elapsed() >= nextReport) {
      report("");
      nextReport += 10;
    }
  }
  report("done: ");
  return total.failures ? 1 : 0;
}
