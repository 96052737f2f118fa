// Programs of nested fns, each calling the one before twice: the inlined expression is a DAG
// of a few nodes per level whose tree has 2^levels leaves. Every stage that prints or walks
// it must stay linear in the DAG (issue 13, defect 7); nested row reductions are bounded by a
// located error. Sizes of the output are asserted, not timings.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "TestUtil.h"
#include "compiler/Checker.h"
#include "compiler/Diagnostics.h"
#include "compiler/IR.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"

using namespace attn;
using namespace attn::test;

namespace {

// fn f0(x) = tanh(x) + 1;  fn fK(x) = f(K-1)(x) * 0.5 + f(K-1)(x) / 3;  out of f(levels).
std::string nestedProgram(int levels, const std::string& out) {
  std::string text = "fn f0(x) = tanh(x) + 1\n";
  for (int k = 1; k <= levels; ++k) {
    std::string prev = "f" + std::to_string(k - 1);
    text += "fn f" + std::to_string(k) + "(x) = " + prev + "(x) * 0.5 + " + prev + "(x) / 3\n";
  }
  return text + "attention nested {\n  mask causal\n  " + out + "\n}\n";
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("nested fns that call each other twice: every emit target, explain and ATTN_DUMP stay small") {
    // 30 levels: the expression tree has 2^30 leaves, its DAG about 100 nodes.
    const std::string path = writeTempFile("nested30.attn", nestedProgram(30, "out l1norm(relu(f30(dot(q, k))))"));
    std::vector<std::string> targets = {"ast", "checked", "ir", "plan", "llvm", "cuda"};
#ifdef ATTN_HAVE_CUDA
    targets.push_back("ptx");
#endif
    for (const std::string& target : targets) {
      CAPTURE(target);
      CommandResult r = runAttn({"emit", path, "--target", target}, 60);
      INFO(r.err.substr(0, 2000));
      REQUIRE_FALSE(r.timedOut);
      REQUIRE(r.status == 0);
      CHECK(r.out.size() > 100);
      // The tree printed in full would be gigabytes; PTX is verbose, the rest is text.
      CHECK(r.out.size() < (target == "ptx" ? 2000000u : 200000u));
    }

    CommandResult checked = runAttn({"emit", path, "--target", "checked"}, 60);
    // Each level's shared subexpression printed once, as a numbered row used by the next.
    CHECK(count(checked.out, " = %") >= 29);
    CHECK(checked.out.find("  %1 = tanh(dot(q, k)) + 1") != std::string::npos);
    CHECK(checked.out.find("  %2 = %1 * 0.5 + %1 / 3") != std::string::npos);

    CommandResult explain = runAttn({"explain", path}, 60);
    REQUIRE(explain.status == 0);
    CHECK(explain.out.size() < 200000);
    CHECK(explain.out.find(" where %") != std::string::npos);

    setenv("ATTN_DUMP", "all", 1);
    CommandResult dumped = runAttn({"explain", path}, 60);
    unsetenv("ATTN_DUMP");
    REQUIRE(dumped.status == 0);
    CHECK(dumped.err.find("=== stabilised") != std::string::npos);
    CHECK(dumped.err.size() < 400000);
  }

  TEST_CASE("a small DAG prints as written: shared subexpressions are named only in long text") {
    // dot(q, k) / 8 is shared by the softmax's two uses; short, so it is printed inline.
    const std::string path =
        writeTempFile("shared_small.attn", "attention a {\n  mask causal\n  out softmax(dot(q, k) / 8)\n}\n");
    CommandResult checked = runAttn({"emit", path, "--target", "checked"});
    CHECK(checked.out.find("out: softmax(dot(q, k) / 8)") != std::string::npos);
    CHECK(checked.out.find('%') == std::string::npos);
    CommandResult explain = runAttn({"explain", path});
    CHECK(explain.out.find("where") == std::string::npos);
  }

  TEST_CASE("too many row reductions nested in one another: a located error, not minutes of code generation") {
    // Each level reduces the one before: 17 nested row reductions, one pass over the keys each.
    std::string text = "fn f0(x) = x + 1\n";
    for (int k = 1; k <= 40; ++k)
      text += "fn f" + std::to_string(k) + "(x) = rowmean(f" + std::to_string(k - 1) + "(x)) * f" +
              std::to_string(k - 1) + "(x)\n";
    text += "attention deep {\n  mask causal\n  out relu(f40(dot(q, k)))\n}\n";
    const std::string path = writeTempFile("deep_reductions.attn", text);
    for (const char* command : {"check", "explain"}) {
      CommandResult r = runAttn({command, path}, 60);
      INFO(r.err);
      CHECK(r.status == 1);
      // f17 holds the 17th rowmean.
      CHECK(r.err.find(path + ":18:13: error: more than 16 row reductions and normalisations nested in one "
                              "another once fns are inlined") != std::string::npos);
      CHECK(r.err.find("note: in fn 'f17', called at line 19") != std::string::npos);
    }
    CommandResult emitted = runAttn({"emit", path, "--target", "llvm"}, 60);
    CHECK(emitted.status == 1);
    CHECK(emitted.out.empty());

    // 16 is allowed, and its code stays a few MB at most.
    std::string ok = "fn f0(x) = x + 1\n";
    for (int k = 1; k <= 16; ++k)
      ok += "fn f" + std::to_string(k) + "(x) = rowmean(f" + std::to_string(k - 1) + "(x)) * f" +
            std::to_string(k - 1) + "(x)\n";
    ok += "attention deep {\n  mask causal\n  out relu(f16(dot(q, k)))\n}\n";
    const std::string okPath = writeTempFile("deep16.attn", ok);
    CommandResult plan = runAttn({"emit", okPath, "--target", "plan"}, 60);
    REQUIRE(plan.status == 0);
    CHECK(plan.out.find("17 passes over the keys") != std::string::npos);
    CommandResult llvm = runAttn({"emit", okPath, "--target", "llvm"}, 60);
    REQUIRE(llvm.status == 0);
    CHECK(llvm.out.size() < 8000000);
  }
}

TEST_SUITE("ir") {
  TEST_CASE("formula of a large DAG names each shared node once; a small one prints inline") {
    DiagnosticEngine diags;
    auto file = std::make_shared<SourceFile>("nested.attn", nestedProgram(40, "out f40(dot(q, k))"));
    ast::Module module = parseModule(file, diags);
    auto checked = compileModule(module, {}, diags);
    REQUIRE(checked);
    ir::Graph g = lowerAndOptimise(*checked);
    std::string text = ir::formula(g, g.out);
    CHECK(text.size() < 20000);
    CHECK(text.rfind("(", 0) == 0);
    CHECK(count(text, " where ") == 1);
    CHECK(count(text, "tanh(dot(q, k))") == 1);
    // isNonNegative walks the same DAG (it once recursed through every path).
    CHECK_FALSE(ir::isNonNegative(g, g.out));

    ir::Graph small;
    ir::NodeId s = small.make(ir::Op::Dot, {small.make(ir::Op::Query, {}), small.make(ir::Op::Key, {})});
    ir::NodeId e = small.make(ir::Op::Exp, {small.make(ir::Op::Sub, {s, small.make(ir::Op::RowMax, {s})})});
    CHECK(ir::formula(small, small.make(ir::Op::Add, {e, e})) ==
          "exp(dot(q, k) - rowmax(dot(q, k))) + exp(dot(q, k) - rowmax(dot(q, k)))");
  }
}
