// The checker (compiler/Checker.cpp): kinds and types of every construct, fn inlining,
// params and --set overrides, masks, printing (toString, describe), the suggestion engine,
// and the guards against inputs that would make checking deep or large. The message of
// every diagnostic is pinned by tests/diagnostics/*.attn (test_diagnostics_corpus.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "compiler/Checker.h"
#include "compiler/Parser.h"
#include "compiler/Suggest.h"

using namespace attn;

namespace {

struct Checked {
  ast::Module module;
  DiagnosticEngine diags;
  std::vector<CheckedAttention> attentions;

  std::vector<std::string> briefs() const {
    std::vector<std::string> out;
    for (const auto& d : diags.sorted()) out.push_back(d.brief());
    return out;
  }
  std::vector<std::string> errors() const {
    std::vector<std::string> out;
    for (const auto& d : diags.sorted())
      if (d.severity == Severity::Error) out.push_back(d.brief());
    return out;
  }
};

std::unique_ptr<Checked> checkText(const std::string& text) {
  auto c = std::make_unique<Checked>();
  c->module = parseModule(std::make_shared<SourceFile>("test.attn", text), c->diags);
  REQUIRE_MESSAGE(!c->diags.hasErrors(), "syntax errors in a checker test:\n", c->diags.renderToString());
  c->attentions = checkModule(c->module, c->diags);
  return c;
}

/// The only attention of `text`, which must check without errors.
CheckedAttention checkClean(const std::string& text) {
  auto c = checkText(text);
  INFO("input:\n", text);
  REQUIRE_MESSAGE(!c->diags.hasErrors(), c->diags.renderToString());
  REQUIRE(c->attentions.size() == 1);
  return c->attentions[0];
}

/// The kind and type of `expr` as the value of a let (after the lets in `prelude`).
std::string kindOf(const std::string& expr, const std::string& prelude = "") {
  CheckedAttention a = checkClean("attention t {\n" + prelude + "  let x = " + expr + "\n  out j\n}\n");
  REQUIRE(!a.lets.empty());
  const TExprPtr& v = a.lets.back().value;
  REQUIRE(static_cast<bool>(v));
  std::string s = kindName(v->kind);
  if (!isVector(v->kind)) s += v->type == ValueType::Bool ? ", bool" : ", number";
  return s;
}

/// toString of the out value of `attention t { out EXPR }` (with an optional prelude).
std::string printedOut(const std::string& expr, const std::string& prelude = "") {
  CheckedAttention a = checkClean(prelude + "attention t {\n  out " + expr + "\n}\n");
  REQUIRE(static_cast<bool>(a.out));
  return toString(a, *a.out);
}

/// The errors (briefs) of the attention `name` checked with `overrides` by checkAttention.
std::vector<std::string> overrideErrors(const std::string& text, const std::vector<ParamOverride>& overrides,
                                        std::optional<CheckedAttention>* out = nullptr,
                                        const std::string& name = "t") {
  DiagnosticEngine diags;
  ast::Module module = parseModule(std::make_shared<SourceFile>("test.attn", text), diags);
  REQUIRE(!diags.hasErrors());
  auto checked = checkAttention(module, name, overrides, diags);
  CHECK(checked.has_value() == !diags.hasErrors());
  if (out) *out = checked;
  std::vector<std::string> briefs;
  for (const auto& d : diags.sorted()) briefs.push_back(d.brief());
  return briefs;
}

const char* kParams =
    "attention t {\n"
    "  param a: float = 2\n"
    "  param b: float = a * 3 + max(1, 2)\n"
    "  param c: bool = a > 1\n"
    "  param e: int = 4\n"
    "  param h: int = e / 2\n"
    "  out c ? dot(q, k) * b : j ^ h\n"
    "}\n";

}  // namespace

TEST_SUITE("checker") {
  TEST_CASE("every stdlib program checks without a diagnostic") {
    auto files = test::attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 25);
    for (const auto& f : files) {
      DiagnosticEngine diags;
      auto file = readSourceFile(f, diags);
      REQUIRE(static_cast<bool>(file));
      ast::Module module = parseModule(file, diags);
      auto checked = checkModule(module, diags);
      INFO(f, "\n", diags.renderToString());
      CHECK(diags.all().empty());
      REQUIRE(checked.size() == 1);
      std::string base = f.substr(f.rfind('/') + 1);
      CHECK(checked[0].name == base.substr(0, base.size() - 5));
      CHECK(static_cast<bool>(checked[0].out));
      CHECK(checked[0].out->kind == ValueKind::Score);
      CHECK(checked[0].out->type == ValueType::Number);
    }
  }

  TEST_CASE("kinds of the built-in names") {
    CHECK(kindOf("1") == "constant, number");
    CHECK(kindOf("true") == "constant, bool");
    CHECK(kindOf("L") == "constant, number");
    CHECK(kindOf("d") == "constant, number");
    CHECK(kindOf("i") == "row scalar, number");
    CHECK(kindOf("n") == "row scalar, number");
    CHECK(kindOf("j") == "score, number");
    CHECK(kindOf("q") == "query vector");
    CHECK(kindOf("k") == "key vector");
  }

  TEST_CASE("scalars combine to the larger kind; comparisons and logic are bool") {
    CHECK(kindOf("i + 1") == "row scalar, number");
    CHECK(kindOf("i * j") == "score, number");
    CHECK(kindOf("-j") == "score, number");
    CHECK(kindOf("L / d") == "constant, number");
    CHECK(kindOf("exp(i)") == "row scalar, number");
    CHECK(kindOf("max(1, j)") == "score, number");
    CHECK(kindOf("clamp(i, 0, L)") == "row scalar, number");
    CHECK(kindOf("i < 3") == "row scalar, bool");
    CHECK(kindOf("i < 3 && j > 2") == "score, bool");
    CHECK(kindOf("!(i < 3)") == "row scalar, bool");
    CHECK(kindOf("(i < 3) == (j < 2)") == "score, bool");
    CHECK(kindOf("i < 3 ? 0 : 1") == "row scalar, number");
    CHECK(kindOf("true ? i : j") == "score, number");
    CHECK(kindOf("j > 0 ? true : false") == "score, bool");
    // A bool where a number is needed counts as 0/1.
    CHECK(kindOf("(i < 3) * 2") == "row scalar, number");
    CHECK(kindOf("-(j < 2)") == "score, number");
    CHECK(kindOf("exp(true)") == "constant, number");
  }

  TEST_CASE("vectors: l2norm, scaling and dot keep or change the side as LANGUAGE.md says") {
    CHECK(kindOf("l2norm(q)") == "query vector");
    CHECK(kindOf("l2norm(k)") == "key vector");
    CHECK(kindOf("q * 2") == "query vector");
    CHECK(kindOf("2 * k") == "key vector");
    CHECK(kindOf("k / sqrt(d)") == "key vector");
    CHECK(kindOf("q * n") == "query vector");  // a query vector may be scaled per row
    CHECK(kindOf("q / i") == "query vector");
    CHECK(kindOf("q * (i < 3)") == "query vector");
    CHECK(kindOf("dot(q, k)") == "score, number");
    CHECK(kindOf("dot(k, q)") == "score, number");
    CHECK(kindOf("dot(l2norm(q) * 2, k / sqrt(d))") == "score, number");
    CHECK(kindOf("dot(qn, kn)", "  let qn = l2norm(q)\n  let kn = l2norm(k)\n") == "score, number");
  }

  TEST_CASE("row reductions give a row scalar, normalisations at least one") {
    CHECK(kindOf("rowsum(j)") == "row scalar, number");
    CHECK(kindOf("rowmax(1)") == "row scalar, number");
    CHECK(kindOf("rowmin(j < 3)") == "row scalar, number");
    CHECK(kindOf("rowmean(dot(q, k))") == "row scalar, number");
    CHECK(kindOf("softmax(j)") == "score, number");
    CHECK(kindOf("l1norm(j)") == "score, number");
    CHECK(kindOf("softmax(i)") == "row scalar, number");
    CHECK(kindOf("l1norm(1)") == "row scalar, number");
  }

  TEST_CASE("the checked program: lets by index, params by value, mask and out") {
    CheckedAttention a = checkClean(
        "attention t {\n  param p: int = 3\n  mask window(p + 1)\n  let s = dot(q, k)\n"
        "  let w = softmax(s) ^ p\n  out w\n}\n");
    CHECK(a.name == "t");
    CHECK(a.file->path() == "test.attn");
    CHECK(a.loc.line == 1);
    REQUIRE(a.params.size() == 1);
    CHECK(a.params[0].name == "p");
    CHECK(a.params[0].type == ParamType::Int);
    CHECK(a.params[0].value == 3);
    CHECK_FALSE(a.params[0].overridden);
    CHECK(a.mask == ast::MaskKind::Window);
    REQUIRE(static_cast<bool>(a.maskExpr));
    CHECK(a.maskExpr->kind == ValueKind::Constant);
    CHECK(toString(a, *a.maskExpr) == "p + 1");
    REQUIRE(a.lets.size() == 2);
    CHECK(a.lets[1].name == "w");
    const TExpr& w = *a.lets[1].value;
    REQUIRE(w.op == TExpr::Op::Binary);
    CHECK(w.operands[0]->op == TExpr::Op::Call);
    CHECK(w.operands[0]->fn == BuiltinFn::Softmax);
    CHECK(w.operands[0]->operands[0]->op == TExpr::Op::Let);
    CHECK(w.operands[0]->operands[0]->index == 0);
    CHECK(w.operands[1]->op == TExpr::Op::Param);
    CHECK(w.operands[1]->index == 0);
    CHECK(w.operands[1]->value == 3);
    REQUIRE(static_cast<bool>(a.out));
    CHECK(a.out->op == TExpr::Op::Let);
    CHECK(a.out->index == 1);
    CHECK(a.out->kind == ValueKind::Score);

    CHECK(checkClean("attention t {\n  out j\n}\n").mask == ast::MaskKind::Full);
    CHECK(checkClean("attention t {\n  mask causal\n  out j\n}\n").mask == ast::MaskKind::Causal);
    CheckedAttention m = checkClean("attention t {\n  param W: int = 4\n  mask j <= i && i - j < W\n  out j\n}\n");
    CHECK(m.mask == ast::MaskKind::Expr);
    REQUIRE(static_cast<bool>(m.maskExpr));
    CHECK(m.maskExpr->type == ValueType::Bool);
    CHECK(m.maskExpr->kind == ValueKind::Score);
  }

  TEST_CASE("per document: kept on the checked program with every mask; the mask's own checks unchanged") {
    for (const char* mask : {"causal", "full", "window(4)", "j <= i"}) {
      const std::string text = std::string("attention t {\n  mask ") + mask + " per document\n  out j\n}\n";
      CHECK_MESSAGE(checkClean(text).perDocument, mask);
      CHECK_FALSE(checkClean(std::string("attention t {\n  mask ") + mask + "\n  out j\n}\n").perDocument);
      CHECK(describe(checkClean(text)).find(std::string("  mask: ") + mask + " per document\n") != std::string::npos);
    }
    CHECK_FALSE(checkClean("attention t {\n  out j\n}\n").perDocument);
    // The scope does not excuse a bad mask: its errors are the same, at the same place.
    auto c = checkText("attention t {\n  mask window(0) per document\n  out j\n}\n");
    REQUIRE(!c->errors().empty());
    CHECK(c->errors()[0] == "2:15: error: window width must be a whole number of at least 1, got 0");
    auto n = checkText("attention t {\n  mask j < n per document\n  out j\n}\n");
    REQUIRE(!n->errors().empty());
    CHECK(n->errors()[0].rfind("2:12: error:", 0) == 0);
    // A second mask is an error whatever its scope; the first one stands, with its scope.
    auto two = checkText("attention t {\n  mask causal per document\n  mask full\n  out j\n}\n");
    REQUIRE(!two->errors().empty());
    CHECK(two->errors()[0] == "3:3: error: more than one 'mask' statement");
  }

  TEST_CASE("fns are inlined with their arguments shared, in any order, with any kinds") {
    CHECK(printedOut("mish2(dot(q, k))", "fn mish2(x) = x * tanh(softplus(x))\n") ==
          "dot(q, k) * tanh(softplus(dot(q, k)))");
    CheckedAttention a = checkClean("attention t {\n  out sq(dot(q, k))\n}\nfn sq(x) = x * x\n");
    REQUIRE(a.out->op == TExpr::Op::Binary);
    CHECK((a.out->operands[0] == a.out->operands[1]));  // one argument, shared
    // The same fn with vectors, with scalars, and in a mask.
    CheckedAttention b = checkClean(
        "fn twice(x) = x * 2\nfn near(a, b) = a - b < 4\n"
        "attention t {\n  mask near(i, j)\n  out dot(twice(q), twice(k)) + twice(j)\n}\n");
    CHECK(b.mask == ast::MaskKind::Expr);
    CHECK(toString(b, *b.out) == "dot(q * 2, k * 2) + j * 2");
    CHECK(toString(b, *b.maskExpr) == "i - j < 4");
    // fns calling fns, and a fn that does not use a parameter.
    CHECK(printedOut("f(j, i)", "fn f(x, y) = g(x) + 1\nfn g(z) = exp(z)\n") == "exp(j) + 1");
  }

  TEST_CASE("a fn body error is reported once per distinct message, and fails every caller") {
    auto c = checkText(
        "fn act(x) = exp(x)\n"
        "attention a {\n  out dot(q, k) + act(q) + act(q)\n}\n"
        "attention b {\n  out dot(q, k) + act(k)\n}\n"
        "attention ok {\n  out act(j)\n}\n");
    CHECK(c->errors() == std::vector<std::string>{"1:13: error: exp needs a scalar, got query vector",
                                                  "1:13: error: exp needs a scalar, got key vector"});
    REQUIRE(c->attentions.size() == 1);
    CHECK(c->attentions[0].name == "ok");
    // The note says where the fn was called from.
    bool noted = false;
    for (const auto& d : c->diags.all())
      for (const auto& n : d.notes) noted = noted || n == "in fn 'act', called at line 3, column 19";
    CHECK(noted);
  }

  TEST_CASE("unused fns are still checked for names and recursion; broken fns fail callers silently") {
    auto c = checkText("fn f(x) = y + x\nfn g(x) = g(x)\nattention a {\n  out f(j)\n}\n");
    CHECK(c->errors() == std::vector<std::string>{"1:11: error: unknown name 'y'",
                                                  "2:11: error: fn 'g' calls itself: g -> g"});
    CHECK(c->attentions.empty());
    // A chain of fns each calling the next is not recursion.
    CHECK(static_cast<bool>(checkClean("fn a(x) = b(x) + c(x)\nfn b(x) = c(x)\nfn c(x) = x\nattention t {\n  out a(j)\n}\n").out));
  }

  TEST_CASE("params: defaults fold, later defaults see earlier params, overrides feed them") {
    CheckedAttention a = checkClean(kParams);
    REQUIRE(a.params.size() == 5);
    CHECK(a.params[0].value == 2);
    CHECK(a.params[1].value == 8);
    CHECK(a.params[2].value == 1);
    CHECK(a.params[2].type == ParamType::Bool);
    CHECK(a.params[4].value == 2);

    std::optional<CheckedAttention> b;
    CHECK(overrideErrors(kParams, {{"a", "5"}, {"c", "false"}, {"e", "-8"}}, &b).empty());
    REQUIRE(b.has_value());
    CHECK(b->params[0].value == 5);
    CHECK(b->params[0].overridden);
    CHECK(b->params[1].value == 17);
    CHECK_FALSE(b->params[1].overridden);
    CHECK(b->params[2].value == 0);
    CHECK(b->params[4].value == -4);
    // The value a Param node carries is the bound one.
    CHECK(b->out->operands[1]->operands[1]->op == TExpr::Op::Param);
    CHECK(b->out->operands[1]->operands[1]->value == 17);
    // The last --set of a name wins.
    CHECK(overrideErrors(kParams, {{"a", "1"}, {"a", "3"}}, &b).empty());
    CHECK(b->params[0].value == 3);
  }

  TEST_CASE("--set values are parsed by the param's type") {
    std::function<std::string(const std::string&, const std::string&)> errorFor = [](const std::string& name,
                                                                                      const std::string& value) {
      auto e = overrideErrors(kParams, {{name, value}});
      return e.empty() ? std::string() : e[0];
    };
    for (const char* ok : {"4", "+4", "-2", "008"}) CHECK_MESSAGE(errorFor("e", ok).empty(), std::string(ok));
    for (const char* bad : {"1.5", "abc", "", "3e2", "0x10", " 3", "3 "})
      CHECK_MESSAGE(errorFor("e", bad) == std::string("error: --set e=") + bad + ": expected an int", std::string(bad));
    for (const char* ok : {"1", "-2.5", "1e-3", ".5", "5.", "+1E+2"}) CHECK_MESSAGE(errorFor("a", ok).empty(), std::string(ok));
    for (const char* bad : {"inf", "-inf", "nan", "NaN", "infinity", "abc", "", "1.2.3", " 1", "1 ", "0x1p3", "0x10",
                            "1,5", "1e", "1e+", "+", "-", ".", "e5", ".e1", "--1", "1f", "1e5x"})
      CHECK_MESSAGE(errorFor("a", bad) == std::string("error: --set a=") + bad + ": expected a float", std::string(bad));
    for (const char* ok : {"true", "false", "1", "0"}) CHECK_MESSAGE(errorFor("c", ok).empty(), std::string(ok));
    for (const char* bad : {"yes", "2", "True", ""})
      CHECK_MESSAGE(errorFor("c", bad) == std::string("error: --set c=") + bad + ": expected a bool", std::string(bad));
    // Values of the right form but out of range: float32's range for floats (the
    // arithmetic), 32 bits for ints. (A program where no later default depends on them.)
    errorFor = [](const std::string& name, const std::string& value) {
      auto e = overrideErrors("attention t {\n  param a: float = 1\n  param e: int = 1\n  out dot(q, k) * a * e\n}\n",
                              {{name, value}});
      return e.empty() ? std::string() : e[0];
    };
    const std::string float32 = ", out of range: attn computes in float32, whose largest finite value is 3.4028235e38";
    for (const char* ok : {"3.4028235e38", "-3.4028235e38", "1e-50", "0"}) CHECK_MESSAGE(errorFor("a", ok).empty(), ok);
    CHECK(errorFor("a", "1e39") == "error: --set a=1e39: float param 'a' has value 1e+39" + float32);
    CHECK(errorFor("a", "-3.5e38") == "error: --set a=-3.5e38: float param 'a' has value -3.5e+38" + float32);
    CHECK(errorFor("a", "1e999") == "error: --set a=1e999: float param 'a' is out of range: attn computes in float32, "
                                    "whose largest finite value is 3.4028235e38");
    const std::string int32 = ", out of range: an int param is between -2147483648 and 2147483647";
    for (const char* ok : {"2147483647", "-2147483648"}) CHECK_MESSAGE(errorFor("e", ok).empty(), ok);
    CHECK(errorFor("e", "2147483648") == "error: --set e=2147483648: int param 'e' has value 2147483648" + int32);
    CHECK(errorFor("e", "-2147483649") == "error: --set e=-2147483649: int param 'e' has value -2147483649" + int32);
    CHECK(errorFor("e", "99999999999999999999") ==
          "error: --set e=99999999999999999999: int param 'e' has value 1e+20" + int32);
    // These errors belong to no file.
    DiagnosticEngine diags;
    ast::Module module = parseModule(std::make_shared<SourceFile>("test.attn", kParams), diags);
    CHECK_FALSE(checkAttention(module, "t", {{"e", "x"}}, diags));
    REQUIRE(diags.all().size() == 1);
    CHECK_FALSE(static_cast<bool>(diags.all()[0].file));
  }

  TEST_CASE("--set: unknown params, and values that break later rules") {
    CHECK(overrideErrors(kParams, {{"aa", "1"}}) ==
          std::vector<std::string>{"error: unknown param 'aa' of attention 't'; did you mean 'a'?"});
    CHECK(overrideErrors(kParams, {{"zzzzzz", "1"}}) ==
          std::vector<std::string>{"error: unknown param 'zzzzzz' of attention 't' (its params: a, b, c, e, h)"});
    CHECK(overrideErrors("attention t {\n  out j\n}\n", {{"p", "1"}}) ==
          std::vector<std::string>{"error: unknown param 'p' of attention 't' (it has no params)"});
    // A let is not a param.
    CHECK(overrideErrors("attention t {\n  let s = j\n  out s\n}\n", {{"s", "1"}}) ==
          std::vector<std::string>{"error: unknown param 's' of attention 't' (it has no params)"});
    // An override flows into a later default that must be an integer.
    CHECK(overrideErrors(kParams, {{"e", "3"}}) ==
          std::vector<std::string>{"6:20: error: int param 'h' has non-integer value 1.5"});
    const char* window = "attention t {\n  param W: int = 4\n  mask window(W)\n  out j\n}\n";
    CHECK(overrideErrors(window, {{"W", "0"}}) ==
          std::vector<std::string>{"3:15: error: window width must be a whole number of at least 1, got 0"});
    CHECK(overrideErrors(window, {{"W", "16"}}).empty());
  }

  TEST_CASE("checkAttention: unknown names, and no warnings (checkModule gives those)") {
    const char* text = "attention first {\n  let unused = 1\n  out j\n}\nattention second {\n  out j\n}\n";
    CHECK(overrideErrors(text, {}, nullptr, "secnd") ==
          std::vector<std::string>{"error: no attention 'secnd' in test.attn; did you mean 'second'?"});
    std::optional<CheckedAttention> first;
    CHECK(overrideErrors(text, {}, &first, "first").empty());
    REQUIRE(first.has_value());
    CHECK(first->name == "first");
    auto c = checkText(text);
    CHECK(c->briefs() == std::vector<std::string>{"2:7: warning: 'unused' is never used"});
    CHECK(c->attentions.size() == 2);
  }

  TEST_CASE("checkModule returns the clean attentions in source order") {
    auto c = checkText(
        "attention b {\n  out j\n}\nattention bad {\n  out i\n}\nattention a {\n  out j\n}\n"
        "attention b {\n  out j\n}\n");
    CHECK(c->errors() == std::vector<std::string>{"5:7: error: out needs a score (a value that varies with j), "
                                                  "got a row scalar",
                                                  "10:11: error: attention 'b' is already defined"});
    REQUIRE(c->attentions.size() == 2);
    CHECK(c->attentions[0].name == "b");
    CHECK(c->attentions[1].name == "a");
    CHECK(checkText("")->attentions.empty());
  }

  TEST_CASE("names that the grammar lets through only in a hand-built AST") {
    // Keywords are tokens, so only a hand-built module can try to name a let `mask`.
    ast::Module module;
    module.file = std::make_shared<SourceFile>("built.attn", "");
    ast::AttentionDef a;
    a.name = "t";
    a.nameLoc = {1, 11, 1};
    ast::Stmt let;
    let.kind = ast::Stmt::Kind::Let;
    let.name = "mask";
    let.nameLoc = {2, 7, 4};
    let.expr = ast::Expr::makeName({2, 14, 1}, "j");
    ast::Stmt out;
    out.kind = ast::Stmt::Kind::Out;
    out.loc = {3, 3, 3};
    out.expr = ast::Expr::makeName({3, 7, 1}, "j");
    a.stmts = {let, out};
    module.defs.emplace_back(a);
    ast::FnDef fn;
    fn.name = "let";
    fn.nameLoc = {5, 4, 3};
    fn.params = {"x"};
    fn.paramLocs = {{5, 8, 1}};
    fn.body = ast::Expr::makeName({5, 13, 1}, "x");
    module.defs.emplace_back(fn);
    DiagnosticEngine diags;
    CHECK(checkModule(module, diags).empty());
    std::vector<std::string> briefs;
    for (const auto& d : diags.sorted()) briefs.push_back(d.brief());
    CHECK(briefs == std::vector<std::string>{"2:7: error: 'mask' is a keyword and cannot be used as a name",
                                             "5:4: error: 'let' is a keyword and cannot be used as a name"});
  }

  TEST_CASE("toString: minimal parentheses by precedence and associativity") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"-j ^ 2", "-j ^ 2"},
        {"(-j) ^ 2", "(-j) ^ 2"},
        {"j ^ 2 ^ 3", "j ^ 2 ^ 3"},
        {"(j ^ 2) ^ 3", "(j ^ 2) ^ 3"},
        {"2 ^ -j", "2 ^ (-j)"},
        {"-(-j)", "-(-j)"},
        {"j - (i - 1)", "j - (i - 1)"},
        {"(j - i) - 1", "j - i - 1"},
        {"j * (i + 1)", "j * (i + 1)"},
        {"(j * i) / 2", "j * i / 2"},
        {"j / (i * 2)", "j / (i * 2)"},
        {"((j)) + ((i))", "j + i"},
        {"(i < 3 ? 0 : 1) + j", "(i < 3 ? 0 : 1) + j"},
        {"i < 3 ? j : i < 5 ? 1 : 2", "i < 3 ? j : i < 5 ? 1 : 2"},
        {"(i < 3 ? true : false) ? j : 1", "(i < 3 ? true : false) ? j : 1"},
        {"i < 3 ? (j > 1 ? j : 1) : 2", "i < 3 ? j > 1 ? j : 1 : 2"},
        {"!(i < 3) ? j : 0", "!(i < 3) ? j : 0"},
        {"(i < 3 || j < 2) && j > 1 ? j : 0", "(i < 3 || j < 2) && j > 1 ? j : 0"},
        {"(i < 3) == (j < 2) ? j : 0", "i < 3 == j < 2 ? j : 0"},
        {"(i == 3) < 2 ? j : 0", "(i == 3) < 2 ? j : 0"},
        {"1e-3 * j + .5 + 1e20 + 15", "0.001 * j + 0.5 + 1e+20 + 15"},
        {"max(j, -1) + clamp(j, 0, 1)", "max(j, -1) + clamp(j, 0, 1)"},
    };
    for (const auto& [source, printed] : cases) {
      INFO(source);
      std::string text = printedOut(source);
      CHECK(text == printed);
      // Printed text means the same: it checks to the same text again.
      CHECK(printedOut(text) == text);
    }
  }

  TEST_CASE("describe: params with their origin, mask, every value with its kind and type") {
    DiagnosticEngine diags;
    auto file = readSourceFile(std::string(ATTN_STDLIB) + "/lssar.attn", diags);
    REQUIRE(static_cast<bool>(file));
    ast::Module module = parseModule(file, diags);
    auto checked = checkAttention(module, "lssar", {}, diags);
    REQUIRE(checked.has_value());
    std::string text = describe(*checked);
    INFO(text);
    CHECK(text.find("attention lssar  (" + file->path() + ":") == 0);
    CHECK(text.find("\n  params:\n    p: int = 15   (default)\n") != std::string::npos);
    CHECK(text.find("\n  mask: causal\n") != std::string::npos);
    CHECK(text.find("\n  values:\n    qn = l2norm(q)  ") != std::string::npos);
    CHECK(text.find("    w  = l1norm(relu(n * a - (i < 3 ? 0 : 1)) ^ p)   score, number\n") != std::string::npos);
    CHECK(text.find("    kn = l2norm(k)") != std::string::npos);
    CHECK(text.find("key vector\n") != std::string::npos);
    CHECK(text.find("\n  out: w  ") != std::string::npos);

    auto three = checkAttention(module, "lssar", {{"p", "3"}}, diags);
    REQUIRE(three.has_value());
    CHECK(describe(*three).find("    p: int = 3   (--set)\n") != std::string::npos);

    CheckedAttention w = checkClean("attention t {\n  param W: int = 8\n  param on: bool = true\n"
                                    "  mask window(W * 2)\n  out j * on\n}\n");
    std::string wt = describe(w);
    INFO(wt);
    CHECK(wt.find("    on: bool = true   (default)\n") != std::string::npos);
    CHECK(wt.find("  mask: window(W * 2)  = window(16)\n") != std::string::npos);
    CHECK(wt.find("values:") == std::string::npos);  // no lets, no heading
    CHECK(wt.find("  out: j * on   score, number\n") != std::string::npos);
  }

  TEST_CASE("deep and large inputs: bounded, located errors, never a crash") {
    // A chain of 300 fns each calling the next is legal (the CLI test does the same).
    std::string chain;
    for (int k = 0; k < 300; ++k) chain += "fn f" + std::to_string(k) + "(x) = f" + std::to_string(k + 1) + "(x) + 1\n";
    chain += "fn f300(x) = x\nattention a {\n  out f0(dot(q, k))\n}\n";
    CheckedAttention a = checkClean(chain);
    CHECK(describe(a).find("dot(q, k) + 1 + 1") != std::string::npos);

    // 3000 fns nest the checker deeper than it allows.
    std::string deep;
    for (int k = 0; k < 3000; ++k) deep += "fn f" + std::to_string(k) + "(x) = f" + std::to_string(k + 1) + "(x)\n";
    deep += "fn f3000(x) = x\nattention a {\n  out f0(j)\n}\n";
    auto c = checkText(deep);
    REQUIRE(c->errors().size() == 1);
    CHECK(c->errors()[0].find("error: expression nested too deeply (more than 2000 levels once fns are inlined)") !=
          std::string::npos);
    CHECK(c->attentions.empty());

    // A long sum is a deep tree too.
    std::string sum = "attention a {\n  out j";
    for (int k = 0; k < 2500; ++k) sum += " + j";
    sum += "\n}\n";
    auto s = checkText(sum);
    CHECK(s->errors().size() == 1);
    CHECK(s->attentions.empty());

    // A call graph with cycles among thousands of fns: each cycle found, no deep recursion.
    std::string ring;
    for (int k = 0; k < 20000; ++k)
      ring += "fn r" + std::to_string(k) + "(x) = r" + std::to_string((k + 1) % 20000) + "(x)\n";
    auto r = checkText(ring);
    REQUIRE(r->errors().size() == 1);
    CHECK(r->errors()[0] == "20000:16: error: fn 'r0' calls itself: r0 -> r1 -> r2 -> r3 -> ... -> r19998 -> "
                            "r19999 -> r0 (20000 fns)");
    // Every call that closes a cycle is reported; fns that only call into a cycle are not.
    auto two = checkText("fn a(x) = b(x) + a(x)\nfn b(x) = a(x)\nfn c(x) = a(x)\n");
    CHECK(two->errors() == std::vector<std::string>{"1:18: error: fn 'a' calls itself: a -> a",
                                                    "2:11: error: fn 'a' calls itself: a -> b -> a"});
  }

  TEST_CASE("suggestions: edit distance, plausible typos only") {
    CHECK(editDistance("kitten", "sitting") == 3);
    CHECK(editDistance("", "abc") == 3);
    CHECK(editDistance("abc", "") == 3);
    CHECK(editDistance("softmax", "softmax") == 0);
    CHECK(editDistance("sofmax", "softmax") == 1);
    std::vector<std::string> fns;
    for (const auto& f : builtinFunctions()) fns.push_back(f.name);
    CHECK(nearestName("sofmax", fns) == std::optional<std::string>("softmax"));
    CHECK(nearestName("rowsun", fns) == std::optional<std::string>("rowsum"));
    CHECK(nearestName("frobnicate", fns) == std::nullopt);
    CHECK(nearestName("qn2", {"q", "k", "qn"}) == std::optional<std::string>("qn"));
    // One letter for another is no typo; a difference in case always is.
    CHECK(nearestName("x", {"q", "k", "i"}) == std::nullopt);
    CHECK(nearestName("l", {"q", "L"}) == std::optional<std::string>("L"));
    // Ties go to the earliest candidate; the bound is max(1, len / 3).
    CHECK(nearestName("abcd", {"abce", "abcf"}) == std::optional<std::string>("abce"));
    CHECK(nearestName("abcdef", {"abcxyz"}) == std::nullopt);
    CHECK(nearestName("abcdef", {"abcdxy"}) == std::optional<std::string>("abcdxy"));
    CHECK(nearestName("anything", {}) == std::nullopt);
  }
}
