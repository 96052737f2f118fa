// `attn fmt`: the canonical printer (see Formatter.h for what canonical means).
//
// The module is printed as a list of lines; blank lines go through one helper that never
// emits two in a row, none at the top and none at the end, so "at most one blank line" holds
// by construction. Expressions are printed by precedence climbing in reverse: each operand
// is printed with the lowest precedence its position accepts, and gets parentheses when its
// own precedence is lower (or when the user wrote them, which `parenthesized` records).
#include "compiler/Formatter.h"

#include "compiler/Diagnostics.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace attn {
namespace {

using ast::BinaryOp;
using ast::Expr;
using ast::UnaryOp;

// Binding strength, loosest first; the numbers only matter relative to each other.
// Mirrors grammar/Attn.g4: ?: (right) < || < && < == != < comparisons < + - < * / <
// prefix - + ! < ^ (right; its right operand may be a prefix expression: `2 ^ -1`) < primary.
enum Prec : int {
  kAny = 0,  // inside parentheses, call arguments, statement positions
  kConditional = 1,
  kOr = 2,
  kAnd = 3,
  kEquality = 4,
  kComparison = 5,
  kAdditive = 6,
  kMultiplicative = 7,
  kUnary = 8,
  kPower = 9,
  kPrimary = 10,
};

int precedence(BinaryOp op) {
  switch (op) {
    case BinaryOp::Pow: return kPower;
    case BinaryOp::Mul:
    case BinaryOp::Div: return kMultiplicative;
    case BinaryOp::Add:
    case BinaryOp::Sub: return kAdditive;
    case BinaryOp::Lt:
    case BinaryOp::Le:
    case BinaryOp::Gt:
    case BinaryOp::Ge: return kComparison;
    case BinaryOp::Eq:
    case BinaryOp::Ne: return kEquality;
    case BinaryOp::And: return kAnd;
    case BinaryOp::Or: return kOr;
  }
  return kPrimary;
}

int precedence(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::Number:
    case Expr::Kind::Bool:
    case Expr::Kind::Name:
    case Expr::Kind::Call: return kPrimary;
    case Expr::Kind::Unary: return kUnary;
    case Expr::Kind::Binary: return precedence(e.binaryOp);
    case Expr::Kind::Conditional: return kConditional;
  }
  return kPrimary;
}

/// The loosest precedence accepted as operand `side` (0 left, 1 right) of `op`.
/// Left-associative operators take an equal-precedence operand on the left only; `^` is
/// right-associative and its right operand is a prefix expression (`-x ^ -y ^ 2`).
int operandPrecedence(BinaryOp op, int side) {
  const int p = precedence(op);
  if (op == BinaryOp::Pow) return side == 0 ? kPrimary : kUnary;
  return side == 0 ? p : p + 1;
}

std::string numberText(const Expr& e) {
  if (!e.text.empty()) return e.text;
  // A hand-built number without its spelling: the shortest text that reads back exactly.
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, e.number);
    if (std::strtod(buf, nullptr) == e.number) break;
  }
  return buf;
}

void printExpr(std::string& out, const Expr& e, int minPrec);

void printOperand(std::string& out, const ast::ExprPtr& e, int minPrec) {
  ATTN_INTERNAL_ASSERT(e, "formatter: an expression of the AST is missing");
  printExpr(out, *e, minPrec);
}

void printExpr(std::string& out, const Expr& e, int minPrec) {
  const bool parens = e.parenthesized || precedence(e) < minPrec;
  if (parens) out += '(';
  switch (e.kind) {
    case Expr::Kind::Number: out += numberText(e); break;
    case Expr::Kind::Bool: out += e.boolean ? "true" : "false"; break;
    case Expr::Kind::Name: out += e.text; break;
    case Expr::Kind::Unary: {
      out += ast::spelling(e.unaryOp);
      const ast::ExprPtr operand = e.operands.empty() ? nullptr : e.operands[0];
      // `- -x`, not `--x`: two signs glued together read like a different operator.
      if (operand && !operand->parenthesized && operand->kind == Expr::Kind::Unary &&
          e.unaryOp != UnaryOp::Not && operand->unaryOp != UnaryOp::Not)
        out += ' ';
      printOperand(out, operand, kUnary);
      break;
    }
    case Expr::Kind::Binary:
      printOperand(out, e.operands.size() > 0 ? e.operands[0] : nullptr,
                   operandPrecedence(e.binaryOp, 0));
      out += ' ';
      out += ast::spelling(e.binaryOp);
      out += ' ';
      printOperand(out, e.operands.size() > 1 ? e.operands[1] : nullptr,
                   operandPrecedence(e.binaryOp, 1));
      break;
    case Expr::Kind::Call:
      out += e.text;
      out += '(';
      for (size_t i = 0; i < e.operands.size(); ++i) {
        if (i) out += ", ";
        printOperand(out, e.operands[i], kAny);
      }
      out += ')';
      break;
    case Expr::Kind::Conditional:
      // c ? a : b is right-associative: a conditional as the condition needs parentheses,
      // one in either branch does not.
      printOperand(out, e.operands.size() > 0 ? e.operands[0] : nullptr, kConditional + 1);
      out += " ? ";
      printOperand(out, e.operands.size() > 1 ? e.operands[1] : nullptr, kConditional);
      out += " : ";
      printOperand(out, e.operands.size() > 2 ? e.operands[2] : nullptr, kConditional);
      break;
  }
  if (parens) out += ')';
}

std::string exprText(const ast::ExprPtr& e) {
  std::string out;
  printOperand(out, e, kAny);
  return out;
}

std::string rstrip(std::string s) {
  size_t end = s.size();
  while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t' || s[end - 1] == '\r' ||
                     s[end - 1] == '\n' || s[end - 1] == '\f' || s[end - 1] == '\v'))
    --end;
  s.resize(end);
  return s;
}

class Printer {
 public:
  std::string finish() {
    while (!lines_.empty() && lines_.back().empty()) lines_.pop_back();
    std::string text;
    for (const auto& l : lines_) {
      text += l;
      text += '\n';
    }
    return text;
  }

  void blank() {
    if (!lines_.empty() && !lines_.back().empty()) lines_.emplace_back();
  }

  void line(const std::string& indent, const std::string& body, const std::string& trailing) {
    std::string l = indent + body;
    std::string comment = rstrip(trailing);
    if (!comment.empty()) l += "  " + comment;
    lines_.push_back(rstrip(std::move(l)));
  }

  /// Own-line comments, one per line (an empty text is no comment and prints nothing).
  void comments(const std::string& indent, const std::vector<std::string>& texts) {
    for (const auto& t : texts) {
      std::string c = rstrip(t);
      if (!c.empty()) lines_.push_back(indent + c);
    }
  }

  /// A node's own-line comments, and the empty line the user left between them and it.
  void leading(const std::string& indent, const ast::Trivia& trivia) {
    comments(indent, trivia.leading);
    if (trivia.blankLineAfterLeading && !trivia.leading.empty()) blank();
  }

  void stmt(const ast::Stmt& s, bool first) {
    const std::string indent = "  ";
    if (s.trivia.blankLineBefore && !first) blank();
    leading(indent, s.trivia);
    line(indent, stmtText(s), s.trivia.trailing);
  }

  void fn(const ast::FnDef& f) {
    leading("", f.trivia);
    std::string head = "fn " + f.name + "(";
    for (size_t i = 0; i < f.params.size(); ++i) {
      if (i) head += ", ";
      head += f.params[i];
    }
    head += ") = " + exprText(f.body);
    line("", head, f.trivia.trailing);
  }

  void attention(const ast::AttentionDef& a) {
    leading("", a.trivia);
    // An attention's trailing comment is the one after its opening '{' (see AST.h).
    line("", "attention " + a.name + " {", a.trivia.trailing);
    for (size_t i = 0; i < a.stmts.size(); ++i) stmt(a.stmts[i], i == 0);
    comments("  ", a.closingComments);
    line("", "}", "");
  }

 private:
  static std::string stmtText(const ast::Stmt& s) {
    switch (s.kind) {
      case ast::Stmt::Kind::Param:
        return "param " + s.name + ": " + s.typeName + " = " + exprText(s.expr);
      case ast::Stmt::Kind::Mask: {
        const std::string scope = s.perDocument ? " per document" : "";
        switch (s.maskKind) {
          case ast::MaskKind::Causal: return "mask causal" + scope;
          case ast::MaskKind::Full: return "mask full" + scope;
          case ast::MaskKind::Window: return "mask window(" + exprText(s.expr) + ")" + scope;
          case ast::MaskKind::Expr: return "mask " + exprText(s.expr) + scope;
        }
        return "mask";
      }
      case ast::Stmt::Kind::Let: return "let " + s.name + " = " + exprText(s.expr);
      case ast::Stmt::Kind::Out: return "out " + exprText(s.expr);
    }
    return "";
  }

  std::vector<std::string> lines_;
};

}  // namespace

std::string formatModule(const ast::Module& module) {
  Printer p;
  for (const auto& def : module.defs) {
    p.blank();  // exactly one empty line between definitions, none before the first
    if (const auto* f = std::get_if<ast::FnDef>(&def))
      p.fn(*f);
    else
      p.attention(std::get<ast::AttentionDef>(def));
  }
  if (module.trailingBlankLine) p.blank();
  p.comments("", module.trailingComments);
  return p.finish();
}

}  // namespace attn
