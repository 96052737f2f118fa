// Random programs (tests/RandomProgram.h) over the whole language: every one checks without
// errors, the plan interpreter (the schedule run pass by pass) gives the reference
// backend's output in float64, and formatting round-trips to the same AST.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#undef CHECK
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "RandomProgram.h"
#include "compiler/AST.h"
#include "compiler/Checker.h"
#include "compiler/Diagnostics.h"
#include "compiler/Formatter.h"
#include "compiler/Parser.h"
#include "compiler/PlanInterpreter.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

constexpr uint64_t kSeed = 20261122;

std::vector<std::string> programs(size_t count) {
  std::mt19937_64 rng(kSeed);
  std::vector<std::string> r;
  for (size_t p = 0; p < count; ++p) r.push_back(test::randomProgram(rng));
  return r;
}

ast::Module parseText(const std::string& text, DiagnosticEngine& diags) {
  return parseModule(std::make_shared<SourceFile>("random.attn", text), diags);
}

}  // namespace

TEST_SUITE("random") {
  TEST_CASE("300 random programs check without errors") {
    auto ps = programs(300);
    for (const auto& text : ps) {
      DiagnosticEngine diags;
      ast::Module module = parseText(text, diags);
      auto checked = checkModule(module, diags);
      REQUIRE_MESSAGE(!diags.hasErrors(), "program:\n", text, "\n", diags.renderToString());
      REQUIRE_MESSAGE(checked.size() == 1, text);
    }
  }

  TEST_CASE("the plan interpreter gives the reference's output on 150 random programs") {
    auto ps = programs(150);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
    size_t comparisons = 0, skipped = 0, passes1 = 0, passes2 = 0, passes3 = 0;
    for (const auto& text : ps) {
      Program program = Program::fromSource(text);
      KernelPlan plan = schedule(program.graph());
      size_t np = plan.passes.size();
      (np <= 1 ? passes1 : np == 2 ? passes2 : passes3)++;
      struct Shape {
        int64_t lq, lk;
      };
      for (Shape s : {Shape{13, 13}, Shape{4, 13}}) {
        const int64_t D = 8, Dv = 5;
        at::Tensor q = at::randn({s.lq, D}, gen, at::kDouble), k = at::randn({s.lk, D}, gen, at::kDouble),
                   v = at::randn({s.lk, Dv}, gen, at::kDouble);
        at::Tensor want = program(q, k, v).contiguous();
        ++comparisons;
        if (!at::isfinite(want).all().item<bool>()) {
          ++skipped;
          MESSAGE("reference not finite (skipped), Lq=", s.lq, " Lk=", s.lk, ":\n", text);
          continue;
        }
        std::vector<double> got = interpretPlan(plan, q.data_ptr<double>(), k.data_ptr<double>(),
                                                v.data_ptr<double>(), s.lq, s.lk, D, Dv);
        REQUIRE(got.size() == static_cast<size_t>(want.numel()));
        const double* w = want.data_ptr<double>();
        double maxAbs = 0, maxErr = 0;
        bool finite = true;
        for (size_t e = 0; e < got.size(); ++e) {
          maxAbs = std::max(maxAbs, std::fabs(w[e]));
          maxErr = std::max(maxErr, std::fabs(got[e] - w[e]));
          finite = finite && std::isfinite(got[e]);
        }
        double rel = maxErr / std::max(maxAbs, 1e-300);
        INFO("program:\n", text, "Lq=", s.lq, " Lk=", s.lk, " passes=", np, " relative error ", rel);
        CHECK(finite);
        CHECK(rel < 1e-9);
      }
    }
    MESSAGE("programs: ", ps.size(), ", comparisons: ", comparisons, ", passes 1/2/3+: ", passes1, "/", passes2,
            "/", passes3, ", skipped (reference not finite): ", skipped);
    CHECK(skipped * 20 < comparisons);
  }

  TEST_CASE("formatting a random program re-parses to the same AST") {
    auto ps = programs(300);
    for (const auto& text : ps) {
      DiagnosticEngine d1;
      ast::Module module = parseText(text, d1);
      REQUIRE_MESSAGE(!d1.hasErrors(), text, "\n", d1.renderToString());
      std::string formatted = formatModule(module);
      DiagnosticEngine d2;
      ast::Module again = parseText(formatted, d2);
      INFO("program:\n", text, "\nformatted:\n", formatted);
      REQUIRE_MESSAGE(!d2.hasErrors(), d2.renderToString());
      CHECK(ast::dump(again, false) == ast::dump(module, false));
      CHECK(formatModule(again) == formatted);
    }
  }
}
