// `attn fmt` (compiler/Formatter.cpp): exact canonical text for hand-written inputs and
// hand-built ASTs, and the two promises of Formatter.h on every stdlib program and on the
// tricky precedence cases: formatting is idempotent, and the output parses to the same AST.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/AST.h"
#include "compiler/Diagnostics.h"
#include "compiler/Formatter.h"
#include "compiler/Parser.h"

namespace {

using attn::DiagnosticEngine;
using attn::SourceFile;
using attn::SourceLoc;
using attn::ast::BinaryOp;
using attn::ast::Expr;
using attn::ast::ExprPtr;
using attn::ast::UnaryOp;

attn::ast::Module parseText(const std::string& text) {
  DiagnosticEngine diags;
  auto module = attn::parseModule(std::make_shared<SourceFile>("fmt_test.attn", text), diags);
  INFO("input:\n" << text);
  REQUIRE_MESSAGE(!diags.hasErrors(), diags.renderToString());
  return module;
}

std::string fmt(const std::string& text) { return attn::formatModule(parseText(text)); }

/// The promises of Formatter.h for one input: stable under a second pass, same AST.
void requireRoundTrip(const std::string& text) {
  const std::string once = fmt(text);
  INFO("input:\n" << text << "\nformatted:\n" << once);
  CHECK(fmt(once) == once);
  CHECK(attn::ast::dump(parseText(once), false) == attn::ast::dump(parseText(text), false));
}

// ---- hand-built expressions ----------------------------------------------------------

const SourceLoc kNoLoc{};

ExprPtr name(const std::string& n) { return Expr::makeName(kNoLoc, n); }
ExprPtr num(const std::string& text) { return Expr::makeNumber(kNoLoc, std::stod(text), text); }
ExprPtr un(UnaryOp op, ExprPtr e) { return Expr::makeUnary(kNoLoc, op, std::move(e)); }
ExprPtr bin(BinaryOp op, ExprPtr a, ExprPtr b) {
  return Expr::makeBinary(kNoLoc, op, std::move(a), std::move(b));
}
ExprPtr cond(ExprPtr c, ExprPtr a, ExprPtr b) {
  return Expr::makeConditional(kNoLoc, std::move(c), std::move(a), std::move(b));
}
ExprPtr call(const std::string& f, std::vector<ExprPtr> args) {
  return Expr::makeCall(kNoLoc, f, std::move(args));
}

/// The text `e` formats to, as the body of `fn f() = ...`.
std::string exprText(const ExprPtr& e) {
  attn::ast::FnDef fn;
  fn.name = "f";
  fn.body = e;
  attn::ast::Module module;
  module.defs.emplace_back(fn);
  const std::string text = attn::formatModule(module);
  const std::string prefix = "fn f() = ";
  REQUIRE(text.compare(0, prefix.size(), prefix) == 0);
  REQUIRE(text.back() == '\n');
  return text.substr(prefix.size(), text.size() - prefix.size() - 1);
}

/// `e`'s text, checked to read back as the same tree (up to the parentheses it added).
std::string exprTextReadsBack(const ExprPtr& e) {
  const std::string text = exprText(e);
  const auto module = parseText("fn f() = " + text + "\n");
  REQUIRE(module.defs.size() == 1);
  const auto& body = std::get<attn::ast::FnDef>(module.defs[0]).body;
  REQUIRE(body);
  // Printing the parsed tree again must give the same text: the parentheses the formatter
  // added are now `parenthesized`, and they are printed exactly once.
  CHECK(exprText(body) == text);
  return text;
}

std::vector<std::filesystem::path> stdlibFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(ATTN_STDLIB))
    if (entry.is_regular_file() && entry.path().extension() == ".attn")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_SUITE("formatter") {

TEST_CASE("spacing, one statement per line, two-space indent") {
  CHECK(fmt("attention  a{ param p:int=15;mask causal\nlet x=-q*2; out   softmax(dot(q,k)/sqrt(d)) }") ==
        "attention a {\n"
        "  param p: int = 15\n"
        "  mask causal\n"
        "  let x = -q * 2\n"
        "  out softmax(dot(q, k) / sqrt(d))\n"
        "}\n");
}

TEST_CASE("semicolon-separated statements are split one per line") {
  CHECK(fmt("attention a { mask full; let s = dot(q, k); let t = s*s; out t }\n") ==
        "attention a {\n"
        "  mask full\n"
        "  let s = dot(q, k)\n"
        "  let t = s * s\n"
        "  out t\n"
        "}\n");
}

TEST_CASE("fn definitions") {
  CHECK(fmt("fn mish(x)=x*tanh(softplus( x ))") == "fn mish(x) = x * tanh(softplus(x))\n");
  CHECK(fmt("fn  two( a ,b )=pow(a,b)+max(a , 1)") == "fn two(a, b) = pow(a, b) + max(a, 1)\n");
}

TEST_CASE("mask forms") {
  CHECK(fmt("attention a {\nmask window( W+1 )\nout dot(q,k)\n}") ==
        "attention a {\n  mask window(W + 1)\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask j<=i&&i-j<4\nout dot(q,k)\n}") ==
        "attention a {\n  mask j <= i && i - j < 4\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask full\nout dot(q,k)\n}") ==
        "attention a {\n  mask full\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask (j<=i)\nout dot(q,k)\n}") ==
        "attention a {\n  mask (j <= i)\n  out dot(q, k)\n}\n");
}

TEST_CASE("mask scope: per document after every mask, one space between the words") {
  CHECK(fmt("attention a {\nmask causal  per   document\nout dot(q,k)\n}") ==
        "attention a {\n  mask causal per document\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask window( 64 ) per document\nout dot(q,k)\n}") ==
        "attention a {\n  mask window(64) per document\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask j<=i per document\nout dot(q,k)\n}") ==
        "attention a {\n  mask j <= i per document\n  out dot(q, k)\n}\n");
  CHECK(fmt("attention a {\nmask full per document # packed\nout dot(q,k)\n}") ==
        "attention a {\n  mask full per document  # packed\n  out dot(q, k)\n}\n");
}

TEST_CASE("numbers and booleans are printed as written") {
  CHECK(fmt("fn f(x) = x*1e-3 + .5 - 2. + 0.50 + 1E+4") ==
        "fn f(x) = x * 1e-3 + .5 - 2. + 0.50 + 1E+4\n");
  CHECK(fmt("fn f(x) = x > 0 ? true : false") == "fn f(x) = x > 0 ? true : false\n");
}

TEST_CASE("operators: binary spaced, unary attached") {
  CHECK(fmt("fn f(a,b,c) = a^b+!c||a<=b&&a!=b||a==b||a>=-b") ==
        "fn f(a, b, c) = a ^ b + !c || a <= b && a != b || a == b || a >= -b\n");
  CHECK(fmt("fn f(x) = +x - - x") == "fn f(x) = +x - -x\n");
}

TEST_CASE("the user's parentheses are kept, redundant or not") {
  CHECK(fmt("fn f(a,b,c) = (a*b)+(c)") == "fn f(a, b, c) = (a * b) + (c)\n");
  // The AST records parentheses as a flag, so doubled ones are kept once.
  CHECK(fmt("fn f(a,b,c) = ( (a+b) )*c") == "fn f(a, b, c) = (a + b) * c\n");
  CHECK(fmt("fn f(a,b,c) = max( (a) , b )") == "fn f(a, b, c) = max((a), b)\n");
}

TEST_CASE("a multi-line parenthesised expression is joined") {
  CHECK(fmt("attention a {\n  out softmax(dot(q, k)\n      / sqrt(d))\n}\n") ==
        "attention a {\n  out softmax(dot(q, k) / sqrt(d))\n}\n");
}

TEST_CASE("blank lines: at most one between statements, none after '{'") {
  CHECK(fmt("attention a {\n\n\n  param p: int = 2\n  mask causal\n\n\n\n  let s = dot(q, k)\n"
            "  let t = s ^ p\n\n  out t\n\n\n}\n") ==
        "attention a {\n"
        "  param p: int = 2\n"
        "  mask causal\n"
        "\n"
        "  let s = dot(q, k)\n"
        "  let t = s ^ p\n"
        "\n"
        "  out t\n"
        "}\n");
}

TEST_CASE("blank lines: exactly one between definitions, none at the ends") {
  CHECK(fmt("\n\n\nfn f(x) = x\nfn g(x) = x\n\n\n\nattention a {\n  out dot(q, k)\n}\n\n\n") ==
        "fn f(x) = x\n"
        "\n"
        "fn g(x) = x\n"
        "\n"
        "attention a {\n"
        "  out dot(q, k)\n"
        "}\n");
  CHECK(fmt("fn f(x) = x; fn g(x) = x") == "fn f(x) = x\n\nfn g(x) = x\n");
}

TEST_CASE("an empty module formats to nothing") {
  CHECK(fmt("") == "");
  CHECK(fmt("\n\n  \n;\n") == "");
  CHECK(attn::formatModule(attn::ast::Module{}) == "");
}

TEST_CASE("comments: leading, trailing, before '}' and at end of file") {
  const std::string src =
      "# header\n"
      "// second header line   \n"
      "attention a {   # opening\n"
      "    # the power\n"
      "  param p: int = 3   # why 3\n"
      "  mask causal\n"
      "\n"
      "\n"
      "  # scores\n"
      "  # (scaled)\n"
      "  let s = dot(q, k) / sqrt(d)  // trailing slashes\n"
      "  out relu(s) ^ p\n"
      "      # closing one\n"
      "  # closing two\n"
      "}  # after brace\n"  // no slot after '}': it becomes g's own-line comment
      "# about g\n"
      "fn g(x) = x  # identity\n"
      "\n"
      "\n"
      "# the end\n"
      "// really\n";
  const std::string formatted = fmt(src);
  CHECK(formatted ==
        "# header\n"
        "// second header line\n"
        "attention a {  # opening\n"
        "  # the power\n"
        "  param p: int = 3  # why 3\n"
        "  mask causal\n"
        "\n"
        "  # scores\n"
        "  # (scaled)\n"
        "  let s = dot(q, k) / sqrt(d)  // trailing slashes\n"
        "  out relu(s) ^ p\n"
        "  # closing one\n"
        "  # closing two\n"
        "}\n"
        "\n"
        "# after brace\n"
        "# about g\n"
        "fn g(x) = x  # identity\n"
        "\n"
        "# the end\n"
        "// really\n");
  requireRoundTrip(src);
}

TEST_CASE("comments: an empty line after a statement's comments is kept, one at most") {
  CHECK(fmt("attention a {\n  # about s\n\n\n  let s = dot(q, k)\n  # about out\n  out s\n}\n") ==
        "attention a {\n  # about s\n\n  let s = dot(q, k)\n  # about out\n  out s\n}\n");
  CHECK(fmt("attention a {\n  let s = dot(q, k)\n\n  # about out\n\n  out s\n}\n") ==
        "attention a {\n  let s = dot(q, k)\n\n  # about out\n\n  out s\n}\n");
}

TEST_CASE("comments: only comments") {
  // Without a definition there is no place for an empty line between comments.
  CHECK(fmt("# just a note   \n\n\n// and another\n") == "# just a note\n// and another\n");
  CHECK(fmt("fn f(x) = x\n# just a note   \n\n\n// and another\n") ==
        "fn f(x) = x\n# just a note\n// and another\n");
  CHECK(fmt("fn f(x) = x\n\n\n# just a note\n") == "fn f(x) = x\n\n# just a note\n");
}

TEST_CASE("comments: the header block stays at the top, apart from the definition") {
  CHECK(fmt("\n\n# Title\n#\n# Source: somewhere\n\nattention a {\n  out dot(q, k)\n}\n") ==
        "# Title\n#\n# Source: somewhere\n\nattention a {\n  out dot(q, k)\n}\n");
}

TEST_CASE("comments: built by hand, with trailing whitespace") {
  attn::ast::Stmt out;
  out.kind = attn::ast::Stmt::Kind::Out;
  out.expr = call("dot", {name("q"), name("k")});
  out.trivia.leading = {"# the weights  \t"};
  out.trivia.trailing = "# raw  ";
  out.trivia.blankLineBefore = true;  // first statement: no blank line
  attn::ast::Stmt let;
  let.kind = attn::ast::Stmt::Kind::Let;
  let.name = "x";
  let.expr = num("1");
  let.trivia.blankLineBefore = true;
  attn::ast::AttentionDef a;
  a.name = "raw";
  a.stmts = {out, let};
  a.closingComments = {"// bye", ""};
  a.trivia.leading = {"# top", "#"};
  a.trivia.blankLineAfterLeading = true;
  a.trivia.trailing = "# after the brace ";
  attn::ast::FnDef fn;
  fn.name = "id";
  fn.params = {"x", "y"};
  fn.body = name("x");
  fn.trivia.trailing = "# first";
  fn.trivia.blankLineBefore = false;  // definitions are always one blank line apart
  attn::ast::Module module;
  module.defs.emplace_back(fn);
  module.defs.emplace_back(a);
  module.trailingComments = {"# eof"};
  module.trailingBlankLine = true;
  CHECK(attn::formatModule(module) ==
        "fn id(x, y) = x  # first\n"
        "\n"
        "# top\n"
        "#\n"
        "\n"
        "attention raw {  # after the brace\n"
        "  # the weights\n"
        "  out dot(q, k)  # raw\n"
        "\n"
        "  let x = 1\n"
        "  // bye\n"
        "}\n"
        "\n"
        "# eof\n");
}

TEST_CASE("precedence: hand-built trees get the parentheses they need") {
  const auto x = name("x"), a = name("a"), b = name("b"), c = name("c"), d = name("d"),
             e = name("e");
  // ^ binds tighter than unary minus, and is right-associative.
  CHECK(exprTextReadsBack(un(UnaryOp::Neg, bin(BinaryOp::Pow, x, num("2")))) == "-x ^ 2");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, un(UnaryOp::Neg, x), num("2"))) == "(-x) ^ 2");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, a, bin(BinaryOp::Pow, b, c))) == "a ^ b ^ c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, bin(BinaryOp::Pow, a, b), c)) == "(a ^ b) ^ c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, num("2"), un(UnaryOp::Neg, num("1")))) ==
        "2 ^ -1");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, a, un(UnaryOp::Neg, bin(BinaryOp::Mul, b, c)))) ==
        "a ^ -(b * c)");
  CHECK(exprTextReadsBack(
            bin(BinaryOp::Pow, a, un(UnaryOp::Neg, bin(BinaryOp::Pow, b, c)))) == "a ^ -b ^ c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Pow, call("f", {a}), b)) == "f(a) ^ b");
  // Left-associative operators: parentheses on an equal-precedence right operand only.
  CHECK(exprTextReadsBack(bin(BinaryOp::Sub, a, bin(BinaryOp::Sub, b, c))) == "a - (b - c)");
  CHECK(exprTextReadsBack(bin(BinaryOp::Sub, bin(BinaryOp::Sub, a, b), c)) == "a - b - c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Div, a, bin(BinaryOp::Mul, b, c))) == "a / (b * c)");
  CHECK(exprTextReadsBack(bin(BinaryOp::Add, a, bin(BinaryOp::Sub, b, c))) == "a + (b - c)");
  CHECK(exprTextReadsBack(bin(BinaryOp::Add, a, bin(BinaryOp::Mul, b, c))) == "a + b * c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Mul, bin(BinaryOp::Add, a, b), c)) == "(a + b) * c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Lt, bin(BinaryOp::Lt, a, b), c)) == "a < b < c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Lt, bin(BinaryOp::Eq, a, b), c)) == "(a == b) < c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Eq, bin(BinaryOp::Lt, a, b), c)) == "a < b == c");
  CHECK(exprTextReadsBack(bin(BinaryOp::Or, bin(BinaryOp::And, a, b), c)) == "a && b || c");
  CHECK(exprTextReadsBack(bin(BinaryOp::And, bin(BinaryOp::Or, a, b), c)) == "(a || b) && c");
  CHECK(exprTextReadsBack(bin(BinaryOp::And, a, bin(BinaryOp::And, b, c))) == "a && (b && c)");
  // Prefix operators.
  CHECK(exprTextReadsBack(un(UnaryOp::Not, bin(BinaryOp::Lt, a, b))) == "!(a < b)");
  CHECK(exprTextReadsBack(un(UnaryOp::Neg, bin(BinaryOp::Mul, a, b))) == "-(a * b)");
  CHECK(exprTextReadsBack(bin(BinaryOp::Mul, un(UnaryOp::Neg, a), b)) == "-a * b");
  CHECK(exprTextReadsBack(bin(BinaryOp::Mul, a, un(UnaryOp::Neg, b))) == "a * -b");
  CHECK(exprTextReadsBack(un(UnaryOp::Neg, un(UnaryOp::Neg, x))) == "- -x");
  CHECK(exprTextReadsBack(un(UnaryOp::Not, un(UnaryOp::Not, x))) == "!!x");
  CHECK(exprTextReadsBack(un(UnaryOp::Neg, cond(a, b, c))) == "-(a ? b : c)");
  // Conditionals: right-associative.
  CHECK(exprTextReadsBack(cond(a, b, cond(c, d, e))) == "a ? b : c ? d : e");
  CHECK(exprTextReadsBack(cond(cond(a, b, c), d, e)) == "(a ? b : c) ? d : e");
  CHECK(exprTextReadsBack(cond(a, cond(b, c, d), e)) == "a ? b ? c : d : e");
  CHECK(exprTextReadsBack(bin(BinaryOp::Add, a, cond(b, c, d))) == "a + (b ? c : d)");
  CHECK(exprTextReadsBack(cond(bin(BinaryOp::Or, a, b), bin(BinaryOp::Add, c, d), e)) ==
        "a || b ? c + d : e");
  // Call arguments and explicit parentheses.
  CHECK(exprTextReadsBack(call("clamp", {cond(a, b, c), bin(BinaryOp::Sub, d, e), num(".5")})) ==
        "clamp(a ? b : c, d - e, .5)");
  CHECK(exprTextReadsBack(bin(BinaryOp::Add, a, Expr::withParens(bin(BinaryOp::Mul, b, c)))) ==
        "a + (b * c)");
  CHECK(exprTextReadsBack(Expr::withParens(bin(BinaryOp::Sub, a, Expr::withParens(b)))) ==
        "(a - (b))");
  CHECK(exprTextReadsBack(call("g", {})) == "g()");
  CHECK(exprText(Expr::makeBool(kNoLoc, true)) == "true");
}

TEST_CASE("precedence: random hand-built trees read back as the same tree") {
  // A small deterministic generator (no <random>: the same trees on every platform).
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state](uint32_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33) % bound;
  };
  const BinaryOp binaryOps[] = {BinaryOp::Pow, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Add,
                                BinaryOp::Sub, BinaryOp::Lt,  BinaryOp::Le,  BinaryOp::Gt,
                                BinaryOp::Ge,  BinaryOp::Eq,  BinaryOp::Ne,  BinaryOp::And,
                                BinaryOp::Or};
  const UnaryOp unaryOps[] = {UnaryOp::Neg, UnaryOp::Plus, UnaryOp::Not};
  std::function<ExprPtr(int)> gen = [&](int depth) -> ExprPtr {
    const uint32_t pick = depth == 0 ? next(2) : next(7);
    switch (pick) {
      case 0: return name(std::string(1, static_cast<char>('a' + next(5))));
      case 1: return num(std::to_string(next(10)));
      case 2: return call("f", {gen(depth - 1), gen(depth - 1)});
      case 3: return un(unaryOps[next(3)], gen(depth - 1));
      case 4: return cond(gen(depth - 1), gen(depth - 1), gen(depth - 1));
      default: return bin(binaryOps[next(13)], gen(depth - 1), gen(depth - 1));
    }
  };
  // Same tree, ignoring where parentheses were recorded.
  std::function<bool(const Expr&, const Expr&)> same = [&](const Expr& x, const Expr& y) {
    if (x.kind != y.kind || x.text != y.text || x.operands.size() != y.operands.size())
      return false;
    if (x.kind == Expr::Kind::Unary && x.unaryOp != y.unaryOp) return false;
    if (x.kind == Expr::Kind::Binary && x.binaryOp != y.binaryOp) return false;
    for (size_t k = 0; k < x.operands.size(); ++k)
      if (!same(*x.operands[k], *y.operands[k])) return false;
    return true;
  };
  for (int round = 0; round < 2000; ++round) {
    const ExprPtr tree = gen(1 + round % 5);
    const std::string text = exprText(tree);
    INFO(attn::ast::dump(*tree) << "  printed as  " << text);
    const auto module = parseText("fn g() = " + text + "\n");
    REQUIRE(module.defs.size() == 1);
    const ExprPtr& back = std::get<attn::ast::FnDef>(module.defs[0]).body;
    REQUIRE(back);
    CHECK(same(*tree, *back));
    CHECK(exprText(back) == text);
  }
}

TEST_CASE("a tree with a missing expression is our error, not text") {
  attn::ast::Stmt let;
  let.kind = attn::ast::Stmt::Kind::Let;
  let.name = "x";
  attn::ast::AttentionDef a;
  a.name = "broken";
  a.stmts = {let};
  attn::ast::Module module;
  module.defs.emplace_back(a);
  CHECK_THROWS_AS(attn::formatModule(module), attn::InternalError);
  CHECK_THROWS_AS(exprText(bin(BinaryOp::Add, name("a"), nullptr)), attn::InternalError);
}

TEST_CASE("numbers built without their text print their value") {
  CHECK(exprText(Expr::makeNumber(kNoLoc, 0.5, "")) == "0.5");
  CHECK(exprText(Expr::makeNumber(kNoLoc, 15, "")) == "15");
  CHECK(exprText(Expr::makeNumber(kNoLoc, 0.1, "")) == "0.1");
}

TEST_CASE("tricky cases from source: exact text and round trip") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"-x^2", "-x ^ 2"},
      {"(-x)^2", "(-x) ^ 2"},
      {"a-(b-c)", "a - (b - c)"},
      {"a-b-c", "a - b - c"},
      {"a^b^c", "a ^ b ^ c"},
      {"(a^b)^c", "(a ^ b) ^ c"},
      {"a?b:c?d:e", "a ? b : c ? d : e"},
      {"(a?b:c)?d:e", "(a ? b : c) ? d : e"},
      {"a?b?c:d:e", "a ? b ? c : d : e"},
      {"!(a<b)", "!(a < b)"},
      {"2^-1", "2 ^ -1"},
      {"2^-x^2", "2 ^ -x ^ 2"},
      {"-2^-1*x", "-2 ^ -1 * x"},
      {"a<b==c<d", "a < b == c < d"},
      {"!a&&!b||c", "!a && !b || c"},
      {"relu(n*a-(i<3?0:1))^p", "relu(n * a - (i < 3 ? 0 : 1)) ^ p"},
  };
  for (const auto& [src, want] : cases) {
    const std::string text = "fn f(a, b, c, d, e, x, n, i, p) = " + src + "\n";
    INFO(src);
    CHECK(fmt(text) == "fn f(a, b, c, d, e, x, n, i, p) = " + want + "\n");
    requireRoundTrip(text);
  }
}

TEST_CASE("round trip: the normative example of LANGUAGE.md") {
  const std::string src =
      "# Length Scaled Softplus Attention with Re-weighting (LSSAR)\n"
      "attention lssar {\n"
      "  param p: int = 15\n"
      "  mask causal\n"
      "\n"
      "  let qn = l2norm(q)\n"
      "  let kn = l2norm(k)\n"
      "  let s  = log(d) * log(n) * dot(qn, kn)\n"
      "  let a  = l1norm(softplus(s))\n"
      "  let w  = l1norm(relu(n * a - (i < 3 ? 0 : 1)) ^ p)\n"
      "  out w\n"
      "}\n"
      "\n"
      "attention softmax {\n"
      "  mask causal\n"
      "  out softmax(dot(q, k) / sqrt(d))\n"
      "}\n";
  CHECK(fmt(src) ==
        "# Length Scaled Softplus Attention with Re-weighting (LSSAR)\n"
        "attention lssar {\n"
        "  param p: int = 15\n"
        "  mask causal\n"
        "\n"
        "  let qn = l2norm(q)\n"
        "  let kn = l2norm(k)\n"
        "  let s = log(d) * log(n) * dot(qn, kn)\n"
        "  let a = l1norm(softplus(s))\n"
        "  let w = l1norm(relu(n * a - (i < 3 ? 0 : 1)) ^ p)\n"
        "  out w\n"
        "}\n"
        "\n"
        "attention softmax {\n"
        "  mask causal\n"
        "  out softmax(dot(q, k) / sqrt(d))\n"
        "}\n");
  requireRoundTrip(src);
}

TEST_CASE("round trip: every stdlib program") {
  const auto files = stdlibFiles();
  REQUIRE(files.size() >= 3);
  for (const auto& path : files) {
    INFO(path.string());
    const std::string text = readFile(path);
    REQUIRE(!text.empty());
    requireRoundTrip(text);
    // Nothing is lost: every comment of the file is in the output.
    const std::string formatted = fmt(text);
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const auto hash = line.find('#');
      if (hash == std::string::npos) continue;
      std::string comment = line.substr(hash);
      comment.erase(comment.find_last_not_of(" \t\r") + 1);
      CHECK_MESSAGE(formatted.find(comment) != std::string::npos, comment);
    }
  }
}

}  // TEST_SUITE
