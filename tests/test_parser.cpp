// The parser: precedence, statement separation, locations, trivia, and the guards that
// run before ANTLR (encoding, nesting).
#include <doctest/doctest.h>

#include "compiler/Parser.h"

using namespace attn;

namespace {

struct Parsed {
  ast::Module module;
  DiagnosticEngine diags;
  std::vector<std::string> errors() const {
    std::vector<std::string> out;
    for (const auto& d : diags.sorted()) out.push_back(d.brief());
    return out;
  }
};

Parsed parse(const std::string& text) {
  Parsed p;
  p.module = parseModule(std::make_shared<SourceFile>("test.attn", text), p.diags);
  return p;
}

// The S-expression of `out EXPR` in a one-statement attention.
std::string outExpr(const std::string& expr) {
  Parsed p = parse("attention a {\n  out " + expr + "\n}\n");
  REQUIRE_MESSAGE(!p.diags.hasErrors(), p.diags.renderToString());
  REQUIRE(p.module.defs.size() == 1);
  const auto& a = std::get<ast::AttentionDef>(p.module.defs[0]);
  REQUIRE(a.stmts.size() == 1);
  return ast::dump(*a.stmts[0].expr);
}

const ast::AttentionDef& onlyAttention(const Parsed& p) {
  REQUIRE(p.module.defs.size() == 1);
  return std::get<ast::AttentionDef>(p.module.defs[0]);
}

}  // namespace

TEST_SUITE("parser") {
  TEST_CASE("precedence and associativity") {
    CHECK(outExpr("-x^2") == "(- (^ x 2))");
    CHECK(outExpr("(-x)^2") == "(^ (paren (- x)) 2)");
    CHECK(outExpr("a ^ b ^ c") == "(^ a (^ b c))");
    CHECK(outExpr("2 ^ -1") == "(^ 2 (- 1))");
    CHECK(outExpr("a - b - c") == "(- (- a b) c)");
    CHECK(outExpr("a - b * c / e") == "(- a (/ (* b c) e))");
    CHECK(outExpr("a + b < c * d") == "(< (+ a b) (* c d))");
    CHECK(outExpr("a < b == c >= d") == "(== (< a b) (>= c d))");
    CHECK(outExpr("a && b || c && d") == "(|| (&& a b) (&& c d))");
    CHECK(outExpr("c ? a : e ? x : y") == "(? c a (? e x y))");
    CHECK(outExpr("!a && b") == "(&& (! a) b)");
    CHECK(outExpr("n * a - (i < 3 ? 0 : 1)") == "(- (* n a) (paren (? (< i 3) 0 1)))");
    CHECK(outExpr("relu(x) ^ p") == "(^ (call relu x) p)");
    CHECK(outExpr("clamp(x, -1, 1)") == "(call clamp x (- 1) 1)");
    CHECK(outExpr("f()") == "(call f)");
  }

  TEST_CASE("numbers keep their spelling and value") {
    for (const char* text : {"15", "0.5", "1e-3", ".5", "2.", "3E+2"}) {
      Parsed p = parse(std::string("attention a {\n  out ") + text + "\n}\n");
      REQUIRE_MESSAGE(!p.diags.hasErrors(), text);
      const auto& e = *onlyAttention(p).stmts[0].expr;
      CHECK(e.kind == ast::Expr::Kind::Number);
      CHECK(e.text == text);
      CHECK(e.number == doctest::Approx(std::strtod(text, nullptr)));
    }
  }

  TEST_CASE("statements end at a newline or ';', newlines inside parentheses do not") {
    Parsed p = parse("attention a { let x = 1; let y = max(x,\n    2)\n\n  out y }");
    REQUIRE_MESSAGE(!p.diags.hasErrors(), p.diags.renderToString());
    const auto& a = onlyAttention(p);
    REQUIRE(a.stmts.size() == 3);
    CHECK(a.stmts[0].kind == ast::Stmt::Kind::Let);
    CHECK(ast::dump(*a.stmts[1].expr) == "(call max x 2)");
    CHECK(a.stmts[2].kind == ast::Stmt::Kind::Out);

    Parsed twoOnALine = parse("attention a {\n  let x = 1 let y = 2\n  out y\n}\n");
    REQUIRE(twoOnALine.errors().size() == 1);
    CHECK(twoOnALine.errors()[0] == "2:13: error: unexpected 'let'; expected end of line or ';' before it");
  }

  TEST_CASE("every statement form, with locations") {
    Parsed p = parse(
        "fn sq(x) = x * x\n"
        "attention lssar {\n"
        "  param p: int = 15\n"
        "  mask window(128)\n"
        "  let s = sq(dot(q, k))\n"
        "  out s\n"
        "}\n");
    REQUIRE_MESSAGE(!p.diags.hasErrors(), p.diags.renderToString());
    REQUIRE(p.module.defs.size() == 2);
    const auto& fn = std::get<ast::FnDef>(p.module.defs[0]);
    CHECK(fn.name == "sq");
    CHECK(fn.params == std::vector<std::string>{"x"});
    CHECK(fn.nameLoc.line == 1);
    CHECK(fn.nameLoc.col == 4);
    const auto& a = std::get<ast::AttentionDef>(p.module.defs[1]);
    CHECK(a.name == "lssar");
    CHECK(a.nameLoc.line == 2);
    CHECK(a.nameLoc.col == 11);
    CHECK(a.nameLoc.length == 5);
    REQUIRE(a.stmts.size() == 4);
    CHECK(a.stmts[0].kind == ast::Stmt::Kind::Param);
    CHECK(a.stmts[0].name == "p");
    CHECK(a.stmts[0].typeName == "int");
    CHECK(a.stmts[0].typeLoc.col == 12);
    CHECK(a.stmts[1].maskKind == ast::MaskKind::Window);
    CHECK(ast::dump(*a.stmts[1].expr) == "128");
    CHECK(a.stmts[2].loc.line == 5);
    CHECK(a.stmts[2].loc.col == 3);
    CHECK(a.stmts[2].expr->loc.col == 11);  // the callee `sq`
    CHECK(a.closeLoc.line == 7);

    for (auto [text, kind] : {std::pair{"causal", ast::MaskKind::Causal},
                              std::pair{"full", ast::MaskKind::Full},
                              std::pair{"j <= i && i - j < 4", ast::MaskKind::Expr}}) {
      Parsed m = parse(std::string("attention a {\n  mask ") + text + "\n  out j\n}\n");
      REQUIRE_MESSAGE(!m.diags.hasErrors(), text);
      CHECK(onlyAttention(m).stmts[0].maskKind == kind);
    }
  }

  TEST_CASE("per document: a scope after every kind of mask; the words are not keywords") {
    for (auto [text, kind] : {std::pair{"causal", ast::MaskKind::Causal}, std::pair{"full", ast::MaskKind::Full},
                              std::pair{"window(64)", ast::MaskKind::Window},
                              std::pair{"j <= i && i - j < 4", ast::MaskKind::Expr}}) {
      Parsed m = parse(std::string("attention a {\n  mask ") + text + " per document\n  out j\n}\n");
      REQUIRE_MESSAGE(!m.diags.hasErrors(), text);
      const auto& stmt = onlyAttention(m).stmts[0];
      CHECK(stmt.maskKind == kind);
      CHECK(stmt.perDocument);
      CHECK(stmt.scopeLoc.line == 2);
      CHECK(stmt.scopeLoc.col == 9 + static_cast<int>(std::string(text).size()));
      Parsed plain = parse(std::string("attention a {\n  mask ") + text + "\n  out j\n}\n");
      CHECK_FALSE(onlyAttention(plain).stmts[0].perDocument);
    }
    // The expression mask ends before `per`: its tree is the same as without the scope.
    Parsed scoped = parse("attention a {\n  mask j <= i per document\n  out j\n}\n");
    Parsed unscoped = parse("attention a {\n  mask j <= i\n  out j\n}\n");
    CHECK(ast::dump(*onlyAttention(scoped).stmts[0].expr) == ast::dump(*onlyAttention(unscoped).stmts[0].expr));
    // `document` and `per` remain names.
    Parsed names = parse("attention a {\n  let document = 1\n  let per = document\n  out j * per\n}\n");
    CHECK_FALSE(names.diags.hasErrors());
  }

  TEST_CASE("per document: misspellings are located errors") {
    CHECK(parse("attention a {\n  mask causal per doc\n  out j\n}\n").errors().at(0) ==
          "2:19: error: expected 'document' after 'per', found 'doc'");
    CHECK(parse("attention a {\n  mask causal by document\n  out j\n}\n").errors().at(0) ==
          "2:15: error: unexpected 'by' after the mask");
    CHECK(parse("attention a {\n  mask full per\n  out j\n}\n").errors().at(0) ==
          "2:13: error: expected 'document' after 'per'");
  }

  TEST_CASE("columns count code points") {
    Parsed p = parse("# héllo wörld\nattention a {\n  let é = 1\n}\n");
    // 'é' is not an identifier character: the error is at column 7, after "  let ".
    REQUIRE(!p.errors().empty());
    CHECK(p.errors()[0].rfind("3:7: error: unexpected character", 0) == 0);
  }

  TEST_CASE("syntax errors are all reported, located, and only bad definitions are dropped") {
    Parsed p = parse(
        "attention a {\n"
        "  let = 3\n"
        "  out q\n"
        "}\n"
        "attention b {\n"
        "  out dot(q, k)\n"
        "}\n"
        "fn f(x) = x +\n"
        "attention c {\n"
        "  out $\n"
        "}\n");
    auto errors = p.errors();
    REQUIRE(errors.size() >= 3);
    CHECK(errors[0] == "2:7: error: unexpected '='; expected a name");
    bool sawFnError = false, sawDollar = false;
    for (const auto& e : errors) {
      if (e.rfind("8:", 0) == 0 || e.rfind("9:", 0) == 0) sawFnError = true;
      if (e == "10:7: error: unexpected character '$'") sawDollar = true;
    }
    CHECK(sawFnError);
    CHECK(sawDollar);
    // Only `b` was well formed.
    REQUIRE(p.module.defs.size() == 1);
    CHECK(std::get<ast::AttentionDef>(p.module.defs[0]).name == "b");
  }

  TEST_CASE("missing closing brace is reported at end of file") {
    Parsed p = parse("attention a {\n  out j\n");
    REQUIRE(p.errors().size() == 1);
    CHECK(p.errors()[0].rfind("3:1: error: unexpected end of file", 0) == 0);
  }

  TEST_CASE("empty and comment-only files are valid and empty") {
    for (const char* text : {"", "\n\n", "# nothing here\n// nor here", ";;\n"}) {
      Parsed p = parse(text);
      CHECK_MESSAGE(!p.diags.hasErrors(), text);
      CHECK(p.module.defs.empty());
    }
  }

  TEST_CASE("invalid UTF-8 and NUL bytes are located errors, before ANTLR") {
    Parsed bad = parse("attention a {\n  out j \xff\n}\n");
    REQUIRE(bad.errors().size() == 1);
    CHECK(bad.errors()[0] == "2:9: error: invalid UTF-8 (byte 0xFF)");

    Parsed overlong = parse("attention a {\n\xC0\xAF}\n");
    REQUIRE(overlong.errors().size() == 1);
    CHECK(overlong.errors()[0] == "2:1: error: invalid UTF-8 (byte 0xC0)");

    Parsed truncated = parse("out \xE2\x82");
    REQUIRE(truncated.errors().size() == 1);
    CHECK(truncated.errors()[0] == "1:5: error: invalid UTF-8 (byte 0xE2)");

    Parsed nul = parse(std::string("attention a {\n  out j\0\n}\n", 22));
    REQUIRE(nul.errors().size() == 1);
    CHECK(nul.errors()[0] == "2:8: error: NUL byte in source");
  }

  TEST_CASE("nesting: deep but sane parses, absurdly deep is an error, never a stack overflow") {
    auto nested = [](int depth) {
      return "attention a {\n  out " + std::string(depth, '(') + "j" + std::string(depth, ')') + "\n}\n";
    };
    Parsed ok = parse(nested(200));
    CHECK_MESSAGE(!ok.diags.hasErrors(), ok.diags.renderToString());

    Parsed deep = parse(nested(100000));
    REQUIRE(deep.errors().size() == 1);
    CHECK(deep.errors()[0] == "2:263: error: expression nested too deeply (more than 256 levels)");

    std::string minuses = "attention a {\n  out " + std::string(100000, '-') + "j\n}\n";
    Parsed unary = parse(minuses);
    REQUIRE(unary.errors().size() == 1);
    CHECK(unary.errors()[0].find("nested too deeply") != std::string::npos);

    std::string powers = "attention a {\n  out j";
    for (int k = 0; k < 5000; ++k) powers += " ^ j";
    Parsed pow = parse(powers + "\n}\n");
    REQUIRE(pow.errors().size() == 1);
    CHECK(pow.errors()[0].find("nested too deeply") != std::string::npos);

    // A long left-associative chain is a loop in the parser, not recursion: accepted.
    std::string sum = "attention a {\n  out j";
    for (int k = 0; k < 5000; ++k) sum += " + j";
    Parsed chain = parse(sum + "\n}\n");
    CHECK_MESSAGE(!chain.diags.hasErrors(), chain.diags.renderToString());
  }

  TEST_CASE("comments are kept as trivia") {
    Parsed p = parse(
        "# header\n"
        "\n"
        "attention a {  # after brace\n"
        "  # before let\n"
        "  let x = j  # after let\n"
        "\n"
        "  out x\n"
        "  # before close\n"
        "}\n"
        "// the end\n");
    REQUIRE_MESSAGE(!p.diags.hasErrors(), p.diags.renderToString());
    const auto& a = onlyAttention(p);
    CHECK(a.trivia.leading == std::vector<std::string>{"# header"});
    CHECK(a.trivia.blankLineAfterLeading);
    CHECK(a.trivia.trailing == "# after brace");
    CHECK(a.stmts[0].trivia.leading == std::vector<std::string>{"# before let"});
    CHECK(a.stmts[0].trivia.trailing == "# after let");
    CHECK_FALSE(a.stmts[0].trivia.blankLineBefore);
    CHECK(a.stmts[1].trivia.blankLineBefore);
    CHECK(a.stmts[1].trivia.leading.empty());
    CHECK(a.closingComments == std::vector<std::string>{"# before close"});
    CHECK(p.module.trailingComments == std::vector<std::string>{"// the end"});
  }
}

TEST_SUITE("diagnostics") {
  TEST_CASE("internal errors name the compiler's file relative to the project") {
    try {
      ATTN_INTERNAL_ASSERT(1 + 1 == 3, "arithmetic is broken");
      FAIL("no exception");
    } catch (const attn::InternalError& e) {
      CHECK(std::string(e.what()) == "arithmetic is broken");
      CHECK(e.where().rfind("tests/test_parser.cpp:", 0) == 0);
    }
  }

  TEST_CASE("rendering: file, line, column, source line, caret under the place") {
    DiagnosticEngine diags;
    auto file = std::make_shared<SourceFile>("x.attn", "attention a {\n\tout qq\n}\n");
    auto& d = diags.error(file, SourceLoc{2, 6, 2}, "unknown name 'qq'; did you mean 'q'?");
    d.notes.push_back("a note");
    d.hint = "a hint";
    diags.error("a problem with no file");
    CHECK(diags.renderToString() ==
          "x.attn:2:6: error: unknown name 'qq'; did you mean 'q'?\n"
          "\tout qq\n"
          "\t    ^~\n"
          "  note: a note\n"
          "  hint: a hint\n"
          "attn: error: a problem with no file\n");
  }
}
