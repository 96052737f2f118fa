// Bounded fuzzing in CI: mutated stdlib programs and random bytes through the whole front
// end (tests/fuzz/FrontendFuzz.h says which properties are checked), and through the whole
// compiler with the kernels executed by the interpreting KernelWriter and their gradients
// checked against finite differences (tests/fuzz/CompilerFuzz.h). The long-running harness
// for local use is tests/fuzz/attn_fuzz.cpp (docs/TESTING.md).
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <optional>

#include "TestUtil.h"
#include "compiler/Differentiate.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"
#include "compiler/PlanInterpreter.h"
#include "fuzz/CompilerFuzz.h"
#include "fuzz/FrontendFuzz.h"
#include "fuzz/KernelInterpreter.h"

TEST_SUITE("fuzz") {
  TEST_CASE("mutated stdlib programs and random bytes: no failure") {
    std::vector<std::string> seeds;
    for (const auto& f : attn::test::attnFilesIn(ATTN_STDLIB)) seeds.push_back(attn::test::readFile(f));
    REQUIRE(seeds.size() >= 25);
    attn::fuzz::Stats stats = attn::fuzz::fuzz(seeds, 4000, 20261122);
    MESSAGE("fuzz: ", stats.inputs, " inputs, ", stats.parsed, " parsed, ", stats.checked,
            " checked clean, ", stats.failures, " failures");
    CHECK(stats.inputs == 4000);
    // The mutations must reach every stage, or the test proves nothing.
    CHECK(stats.parsed > 200);
    CHECK(stats.checked > 50);
    CHECK_MESSAGE(stats.failures == 0, stats.firstFailure, "\n--- input:\n", stats.firstFailingInput);
  }

  TEST_CASE("whole compiler: mutated and random programs compiled, executed, gradients vs finite differences") {
    std::vector<std::string> seeds;
    for (const auto& f : attn::test::attnFilesIn(ATTN_STDLIB)) seeds.push_back(attn::test::readFile(f));
    attn::fuzz::CompilerStats stats = attn::fuzz::fuzzCompiler(seeds, 400, 20261203);
    MESSAGE("compiler fuzz: ", stats.inputs, " inputs, ", stats.checked, " checked, ", stats.compiled, " compiled, ",
            stats.executed, " executed, ", stats.gradients, " with gradients vs finite differences; max error forward ",
            stats.forwardError, ", gradient ", stats.gradientError, "; ", stats.failures, " failures");
    CHECK(stats.inputs == 400);
    // Enough programs reach execution and the gradient check for the test to mean something.
    CHECK(stats.executed > 100);
    CHECK(stats.gradients > 100);
    CHECK(stats.gradientError > 0);  // the comparison ran on numbers, not on empty tensors
    CHECK_MESSAGE(stats.failures == 0, stats.firstFailure, "\n--- input:\n", stats.firstFailingInput);
  }

  TEST_CASE("the interpreting KernelWriter: equals the plan interpreter, and catches an access outside the arrays") {
    using namespace attn;
    std::vector<std::string> seeds{attn::test::readFile(std::string(ATTN_STDLIB) + "/lssar.attn")};
    DiagnosticEngine diags;
    ast::Module module = parseModule(std::make_shared<SourceFile>("lssar.attn", seeds[0]), diags);
    std::optional<CheckedAttention> checked = compileModule(module, {}, diags);
    REQUIRE(checked);
    KernelPlan plan = schedule(lowerAndOptimise(*checked));
    attn::fuzz::InterpretedKernels kernels(plan, differentiate(plan), "double");
    const int64_t lq = 37, lk = 37, d = 5, dv = 3;
    std::vector<double> q(lq * d), k(lk * d), v(lk * dv);
    for (size_t e = 0; e < q.size(); ++e) q[e] = std::sin(0.7 * static_cast<double>(e));
    for (size_t e = 0; e < k.size(); ++e) k[e] = std::cos(1.3 * static_cast<double>(e));
    for (size_t e = 0; e < v.size(); ++e) v[e] = std::sin(0.3 * static_cast<double>(e) + 1);
    std::vector<double> o, stats;
    kernels.forward({1, lq, lk, d, dv}, q, k, v, o, stats);
    std::vector<double> want = interpretPlan(plan, q.data(), k.data(), v.data(), lq, lk, d, dv);
    REQUIRE(o.size() == want.size());
    for (size_t e = 0; e < o.size(); ++e) CHECK(o[e] == doctest::Approx(want[e]).epsilon(1e-12));
    // A k one row short of what the shape says: the kernel's last key reads past it.
    k.resize(k.size() - d);
    CHECK_THROWS_WITH_AS(kernels.forward({1, lq, lk, d, dv}, q, k, v, o, stats),
                         doctest::Contains("outside every array"), attn::fuzz::KernelError);
  }
}
