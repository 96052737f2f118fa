// The schedule: how many passes over the keys each program needs, which row statistics
// each pass produces, how the output is accumulated. A change in scheduling is a visible
// diff in tests/golden/plan.
#include <doctest/doctest.h>

#include <map>

#include "GoldenFile.h"
#include "TestUtil.h"
#include "compiler/Differentiate.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"

using namespace attn;

namespace {

KernelPlan planOfSource(const std::string& source) {
  DiagnosticEngine diags;
  ast::Module module = parseModule(std::make_shared<SourceFile>("t.attn", source), diags);
  auto checked = compileModule(module, {}, diags);
  REQUIRE_MESSAGE(checked.has_value(), diags.renderToString());
  return schedule(lowerAndOptimise(*checked));
}

KernelPlan planOfFile(const std::string& path, std::vector<ParamOverride> overrides = {}) {
  DiagnosticEngine diags;
  CompileOptions options;
  options.overrides = std::move(overrides);
  auto plan = compileToPlan(path, options, diags);
  REQUIRE_MESSAGE(plan.has_value(), diags.renderToString());
  return *plan;
}

std::string baseName(const std::string& path) {
  std::string b = path.substr(path.rfind('/') + 1);
  return b.substr(0, b.size() - 5);
}

using Form = OutputAccumulation::Form;
using Kind = RowStatistic::Kind;

}  // namespace

TEST_SUITE("schedule") {
  TEST_CASE("golden plans of the paper's three programs") {
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      std::string text = describePlan(plan) + describeBackward(plan, differentiate(plan));
      std::string diff = test::compareWithGolden(std::string("plan/") + name + ".plan", text);
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }

  TEST_CASE("pass counts and output forms of every stdlib program") {
    // Passes over the keys: 1 wherever online statistics and deferred division suffice;
    // one more for every normalised value used non-linearly.
    const std::map<std::string, std::pair<int, Form>> expected = {
        {"alibi", {1, Form::OnlineExp}},         {"exp_nonorm", {1, Form::Direct}},
        {"inverse", {1, Form::OnlineExp}},       {"l1norm_score", {1, Form::DeferredDivision}},
        {"lssa", {1, Form::DeferredDivision}},   {"lssar", {2, Form::OnlinePower}},
        {"phi_exp", {1, Form::OnlineExp}},       {"phi_gelu", {1, Form::DeferredDivision}},
        {"phi_mish", {1, Form::DeferredDivision}}, {"phi_relu", {1, Form::DeferredDivision}},
        {"phi_relu2", {1, Form::OnlinePower}}, {"phi_relu6", {1, Form::DeferredDivision}},
        {"phi_sigmoid", {1, Form::DeferredDivision}}, {"phi_softplus", {1, Form::DeferredDivision}},
        {"raw_score", {1, Form::Direct}},        {"recentred", {3, Form::Direct}},
        {"recentred_l1", {3, Form::DeferredDivision}}, {"relu_li", {1, Form::DeferredDivision}},
        {"relu_shen", {1, Form::Direct}},        {"relu_wortsman", {1, Form::Direct}},
        {"sigmoid_l1", {1, Form::DeferredDivision}}, {"sigmoid_l1_rw", {2, Form::OnlinePower}},
        {"sigmoid_ramapuram", {1, Form::Direct}}, {"sigmoid_ramapuram_b", {1, Form::Direct}},
        {"sigmoid_ramapuram_l1", {1, Form::DeferredDivision}}, {"sigmoid_ramapuram_l1_rw", {2, Form::OnlinePower}},
        {"sliding_window", {1, Form::OnlineExp}}, {"softcap", {1, Form::OnlineExp}},
        {"softmax", {1, Form::OnlineExp}},       {"softmax_rw", {2, Form::OnlinePower}},
        {"ssmax", {1, Form::OnlineExp}},
    };
    auto files = test::attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() == expected.size());
    for (const auto& f : files) {
      auto it = expected.find(baseName(f));
      REQUIRE_MESSAGE(it != expected.end(), "no expectation for ", f);
      KernelPlan plan = planOfFile(f);
      INFO(f);
      CHECK(static_cast<int>(plan.passes.size()) == it->second.first);
      CHECK(plan.output.form == it->second.second);
      CHECK(plan.passes.back().accumulatesOutput);
      // Every statistic an earlier pass produces is read by a later pass or saved.
      for (size_t p = 0; p + 1 < plan.passes.size(); ++p) CHECK_FALSE(plan.passes[p].produces.empty());
    }
  }

  TEST_CASE("derived backward: dO·o replaces a pass for online outputs; a plain l1norm output costs one") {
    for (const auto& f : test::attnFilesIn(ATTN_STDLIB)) {
      KernelPlan plan = planOfFile(f);
      BackwardPlan b = differentiate(plan);
      INFO(f);
      CHECK(b.unsupported.empty());
      const bool online = plan.output.form == Form::OnlineExp || plan.output.form == Form::OnlinePower;
      const bool plain = plan.output.form == Form::DeferredDivision;
      CHECK(b.rowPasses + 1 == static_cast<int>(plan.passes.size()) + (plain ? 1 : 0));
      int identities = 0, shifts = 0;
      for (const RowAdjoint& a : b.adjoints) {
        if (a.kind == RowAdjoint::Kind::Shift) ++shifts;
        else identities += a.identity;
      }
      CHECK(identities == (online ? 1 : 0));
      // A plain l1norm output of a non-negative value sums T relative to dO·o (a Shift), at
      // no cost in passes; with weights of both signs it cannot (sum_j w_j is not 1).
      const bool nonNegative = plain && ir::isNonNegative(plan.graph, plan.output.value);
      CHECK(shifts == (nonNegative ? 1 : 0));
    }
    KernelPlan lssa = planOfFile(std::string(ATTN_STDLIB) + "/lssa.attn");
    BackwardPlan bl = differentiate(lssa);
    REQUIRE(bl.adjoints.size() == 2);
    CHECK(bl.adjoints[0].level == 1);
    CHECK_FALSE(bl.adjoints[0].identity);
    CHECK(bl.adjoints[0].shifted);
    CHECK(bl.adjoints[1].kind == RowAdjoint::Kind::Shift);
    CHECK(bl.adjoints[1].identity);
    CHECK(bl.shiftOf.at(bl.adjoints[0].node) == 1);
    // LSSAR: the inner l1norm's T needs the one row pass; the output's is dO·o.
    KernelPlan lssar = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    BackwardPlan b = differentiate(lssar);
    REQUIRE(b.adjoints.size() == 2);
    CHECK(b.adjoints[0].kind == RowAdjoint::Kind::Normalisation);
    CHECK(b.adjoints[0].level == 1);
    CHECK_FALSE(b.adjoints[0].identity);
    CHECK(b.adjoints[1].identity);
    CHECK(b.adjoints[1].level == 0);
    // Powers above kIdentityMaxPower: the output's T is summed relative to dO·o (one pass);
    // an inner one's relative to its plain sum of the pass before (one more pass).
    for (int p : {15, 100}) {
      KernelPlan out = planOfSource("attention a {\n  out l1norm(relu(dot(q, k)) ^ " + std::to_string(p) + ")\n}\n");
      BackwardPlan bo = differentiate(out);
      INFO("p = ", p);
      CHECK(bo.rowPasses == (p > kIdentityMaxPower ? 1 : 0));
      CHECK(bo.shiftOf.size() == (p > kIdentityMaxPower ? 1u : 0u));
      KernelPlan inner =
          planOfSource("attention a {\n  let w = l1norm(relu(dot(q, k)) ^ " + std::to_string(p) + ")\n  out w * n\n}\n");
      BackwardPlan bi = differentiate(inner);
      CHECK(bi.rowPasses == (p > kIdentityMaxPower ? 2 : 1));
      if (p > kIdentityMaxPower) {
        const RowAdjoint& shift = bi.adjoints.at(static_cast<size_t>(bi.shiftOf.begin()->second));
        CHECK_FALSE(shift.identity);
        CHECK(shift.level == 1);
        CHECK(bi.adjoints.at(static_cast<size_t>(bi.adjointOf.at(bi.shiftOf.begin()->first))).level == 2);
      }
    }
    // A normalisation used twice is not the output alone: no identity, one more pass.
    KernelPlan twice = planOfSource("attention a {\n  let w = softmax(dot(q, k))\n  out w + w * w\n}\n");
    BackwardPlan bt = differentiate(twice);
    CHECK(bt.rowPasses == 1);
    for (const RowAdjoint& a : bt.adjoints) CHECK_FALSE(a.identity);
  }

  TEST_CASE("LSSAR: pass 1 finishes LSSA's normaliser, pass 2 re-weights online") {
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    REQUIRE(plan.passes.size() == 2);
    REQUIRE(plan.passes[0].produces.size() == 1);
    CHECK(plan.passes[0].produces[0].kind == Kind::Sum);
    CHECK(plan.passes[0].cost.dotProducts == 1);
    CHECK_FALSE(plan.passes[0].cost.outputProduct);
    CHECK(plan.passes[1].reads == std::vector<int>{0});
    CHECK(plan.passes[1].cost.dotProducts == 1);  // scores recomputed, not stored
    CHECK(plan.passes[1].cost.outputProduct);
    CHECK(plan.output.form == Form::OnlinePower);
    CHECK(plan.graph.node(plan.output.power).value == 15);
    CHECK(plan.savedForBackward.size() == 2);  // LSSA's normaliser and the output's (m, l)
    // p = 3 changes the power, not the schedule.
    KernelPlan p3 = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn", {{"p", "3"}});
    CHECK(p3.passes.size() == 2);
    CHECK(p3.graph.node(p3.output.power).value == 3);
  }

  TEST_CASE("found by algebra: a user-written softmax is one online pass") {
    KernelPlan plan = planOfSource("attention a {\n  let s = dot(q, k) / sqrt(d)\n  out exp(s) / rowsum(exp(s))\n}\n");
    CHECK(plan.passes.size() == 1);
    CHECK(plan.output.form == Form::OnlineExp);
    KernelPlan negated = planOfSource("attention a {\n  out -2 * softmax(dot(q, k))\n}\n");
    CHECK(negated.output.form == Form::OnlineExp);
    CHECK(negated.output.scale == -2);
  }

  TEST_CASE("each non-linear use of a normalised value costs one more pass") {
    // Three nested re-weightings: softmax, then two non-linear uses of normalised values.
    KernelPlan plan = planOfSource(
        "attention a {\n  mask causal\n  let a = softmax(dot(q, k))\n"
        "  let b = l1norm(relu(n * a - 1) ^ 2)\n  let c = l1norm(relu(n * b - 1) ^ 3)\n  out c\n}\n");
    CHECK(plan.passes.size() == 3);
    CHECK(plan.passes[0].produces[0].kind == Kind::OnlineExp);
    CHECK(plan.passes[1].produces[0].kind == Kind::OnlinePower);
    CHECK(plan.output.form == Form::OnlinePower);
    // A row maximum used non-linearly (not as a rescaling) is a statistic of its own.
    KernelPlan maxPlan = planOfSource("attention a {\n  let s = dot(q, k)\n  out relu(s - rowmax(s) + 1)\n}\n");
    CHECK(maxPlan.passes.size() == 2);
    CHECK(maxPlan.passes[0].produces[0].kind == Kind::Max);
    CHECK(maxPlan.output.form == Form::Direct);
  }

  TEST_CASE("an expression mask that uses n needs a counting pass") {
    KernelPlan plan = planOfSource("attention a {\n  mask j <= i && i - j < 8\n  out dot(q, k) * log(n)\n}\n");
    CHECK(plan.passes.size() == 2);
    CHECK(plan.passes[0].produces[0].kind == Kind::Count);
    KernelPlan causal = planOfSource("attention a {\n  mask causal\n  out dot(q, k) * log(n)\n}\n");
    CHECK(causal.passes.size() == 1);  // n is known in closed form: i + 1
  }
}
