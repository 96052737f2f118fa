// The score IR and its passes: lowering, simplification, stabilisation, found by algebra.
#include <doctest/doctest.h>

#include "GoldenFile.h"
#include "compiler/IR.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"

using namespace attn;

namespace {

ir::Graph compile(const std::string& source, std::vector<ParamOverride> overrides = {}) {
  DiagnosticEngine diags;
  ast::Module module = parseModule(std::make_shared<SourceFile>("t.attn", source), diags);
  CompileOptions options;
  options.overrides = std::move(overrides);
  auto checked = compileModule(module, options, diags);
  REQUIRE_MESSAGE(checked.has_value(), diags.renderToString());
  return lowerAndOptimise(*checked);
}

std::string outExpression(const std::string& outExpr, const std::string& prelude = "") {
  ir::Graph g = compile("attention a {\n  mask causal\n" + prelude + "  out " + outExpr + "\n}\n");
  return ir::expression(g, g.out);
}

ir::Graph compileFile(const std::string& name, std::vector<ParamOverride> overrides = {}) {
  DiagnosticEngine diags;
  CompileOptions options;
  options.overrides = std::move(overrides);
  auto g = compileToIR(std::string(ATTN_STDLIB) + "/" + name + ".attn", options, diags);
  REQUIRE_MESSAGE(g.has_value(), diags.renderToString());
  return *g;
}

}  // namespace

TEST_SUITE("ir") {
  TEST_CASE("golden IR of the paper's three programs") {
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      std::string diff = test::compareWithGolden(std::string("ir/") + name + ".ir", ir::print(compileFile(name)));
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }

  TEST_CASE("softmax is normalize(exp(s - rowmax(s))), exactly LANGUAGE.md's identity") {
    CHECK(outExpression("softmax(dot(q, k))") == "(normalize (exp (sub (dot q k) (rowmax (dot q k)))))");
    CHECK(outExpression("l1norm(dot(q, k))") == "(normalize (dot q k))");
  }

  TEST_CASE("stabilisation is found by algebra, not by name") {
    const std::string softmax = outExpression("softmax(dot(q, k) / sqrt(d))");
    // A user-written softmax: exp(s) / rowsum(exp(s)) is canonicalised to normalize(exp(s)),
    // then shifted by the row maximum: the same program as softmax(s).
    CHECK(outExpression("exp(s) / rowsum(exp(s))", "  let s = dot(q, k) / sqrt(d)\n") == softmax);
    CHECK(outExpression("l1norm(exp(s))", "  let s = dot(q, k) / sqrt(d)\n") == softmax);
    CHECK(outExpression("exp(s) / rowsum(abs(exp(s)))", "  let s = dot(q, k) / sqrt(d)\n") == softmax);
    // exp2 too.
    CHECK(outExpression("l1norm(exp2(dot(q, k)))") == "(normalize (exp2 (sub (dot q k) (rowmax (dot q k)))))");
    // Homogeneous powers of a non-negative base are rescaled by the base's row maximum.
    CHECK(outExpression("l1norm(relu(dot(q, k)) ^ 15)") ==
          "(normalize (pow (safediv (relu (dot q k)) (rowmax (relu (dot q k)))) 15))");
    // ... and of any base for an integer power, by the maximum of its absolute value.
    CHECK(outExpression("l1norm(dot(q, k) ^ 3)") ==
          "(normalize (pow (safediv (dot q k) (rowmax (abs (dot q k)))) 3))");
    // A non-integer power of a possibly negative base cannot be rescaled: left alone.
    CHECK(outExpression("l1norm(dot(q, k) ^ 1.5)") == "(normalize (pow (dot q k) 1.5))");
    // Not a normalisation: nothing to rescale (exp(s) unnormalised is what it says).
    CHECK(outExpression("exp(dot(q, k))") == "(exp (dot q k))");
    // A sum that is not of the same value is not a normalisation.
    CHECK(outExpression("exp(dot(q, k)) / rowsum(exp(j))") == "(div (exp (dot q k)) (rowsum (exp j)))");
    // x / rowsum(x) is a normalisation only when x >= 0 is proved.
    CHECK(outExpression("dot(q, k) / rowsum(dot(q, k))") == "(div (dot q k) (rowsum (dot q k)))");
  }

  TEST_CASE("LSSAR: the re-weighting power is rescaled; p comes from --set") {
    ir::Graph g = compileFile("lssar");
    const std::string w = ir::expression(g, g.out);
    CHECK(w.rfind("(normalize (pow (safediv (relu ", 0) == 0);
    CHECK(w.find("(rowmax (relu ") != std::string::npos);
    CHECK(w.substr(w.size() - 5) == " 15))");
    ir::Graph g3 = compileFile("lssar", {{"p", "3"}});
    const std::string w3 = ir::expression(g3, g3.out);
    CHECK(w3.substr(w3.size() - 4) == " 3))");
  }

  TEST_CASE("constant folding and identities") {
    CHECK(outExpression("dot(q, k) * (2 * 3 - 5)") == "(dot q k)");
    CHECK(outExpression("dot(q, k) + 0 - 0") == "(dot q k)");
    CHECK(outExpression("dot(q, k) ^ 1 / 1") == "(dot q k)");
    CHECK(outExpression("--dot(q, k)") == "(dot q k)");
    CHECK(outExpression("dot(q, k) * exp(0) * log(2)") == "(mul (dot q k) 0.693147181)");
    CHECK(outExpression("true ? dot(q, k) : j") == "(dot q k)");
    // L and d are only known at run time: not folded.
    CHECK(outExpression("dot(q, k) / sqrt(d)") == "(div (dot q k) (sqrt d))");
    // Params are constants: folded with their bound value.
    ir::Graph g = compile("attention a {\n  param c: float = 2\n  out dot(q, k) * (c * c)\n}\n", {{"c", "3"}});
    CHECK(ir::expression(g, g.out) == "(mul (dot q k) 9)");
  }

  TEST_CASE("common subexpressions are shared") {
    ir::Graph g = compile("attention a {\n  let s = dot(q, k)\n  let t = dot(k, q)\n  out s + t\n}\n");
    const ir::Node& add = g.node(g.out);
    REQUIRE(add.op == ir::Op::Add);
    CHECK(add.operands[0] == add.operands[1]);  // dot(k, q) is dot(q, k)
  }

  TEST_CASE("vector operations and kinds") {
    ir::Graph g = compile("attention a {\n  let qs = l2norm(q) * i\n  let ks = k / 2\n  out dot(qs, ks)\n}\n");
    CHECK(ir::expression(g, g.out) == "(dot (vecscale (l2norm q) i) (vecscale k 0.5))");
    CHECK(g.node(g.out).kind == ValueKind::Score);
  }

  TEST_CASE("masks lower to a kind and a predicate") {
    ir::Graph w = compile("attention a {\n  param W: int = 4\n  mask window(W * 2)\n  out dot(q, k)\n}\n");
    CHECK(w.mask == ir::MaskKind::Window);
    CHECK(ir::expression(w, w.maskExpr) == "8");
    ir::Graph e = compile("attention a {\n  mask j <= i && i - j < L / 2\n  out dot(q, k)\n}\n");
    CHECK(e.mask == ir::MaskKind::Expr);
    CHECK(ir::expression(e, e.maskExpr) == "(and (le j i) (lt (sub i j) (div L 2)))");
  }

  TEST_CASE("non-negativity analysis") {
    ir::Graph g;
    auto s = g.make(ir::Op::Dot, {g.make(ir::Op::Query, {}), g.make(ir::Op::Key, {})});
    CHECK_FALSE(ir::isNonNegative(g, s));
    CHECK(ir::isNonNegative(g, g.make(ir::Op::Exp, {s})));
    CHECK(ir::isNonNegative(g, g.make(ir::Op::Softplus, {s})));
    CHECK(ir::isNonNegative(g, g.make(ir::Op::Pow, {s, g.constant(2)})));
    CHECK_FALSE(ir::isNonNegative(g, g.make(ir::Op::Pow, {s, g.constant(3)})));
    CHECK(ir::isNonNegative(g, g.make(ir::Op::Mul, {g.make(ir::Op::Relu, {s}), g.make(ir::Op::RowCount, {})})));
    CHECK_FALSE(ir::isNonNegative(g, g.make(ir::Op::Sub, {g.make(ir::Op::Relu, {s}), g.constant(1)})));
    CHECK(ir::isNonNegative(g, g.make(ir::Op::Lt, {s, g.constant(1)})));  // a bool is 0/1
  }
}
