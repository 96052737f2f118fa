#include "compiler/AST.h"

#include <sstream>

namespace attn::ast {

const char* spelling(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "-";
    case UnaryOp::Plus: return "+";
    case UnaryOp::Not: return "!";
  }
  return "?";
}

const char* spelling(BinaryOp op) {
  switch (op) {
    case BinaryOp::Pow: return "^";
    case BinaryOp::Mul: return "*";
    case BinaryOp::Div: return "/";
    case BinaryOp::Add: return "+";
    case BinaryOp::Sub: return "-";
    case BinaryOp::Lt: return "<";
    case BinaryOp::Le: return "<=";
    case BinaryOp::Gt: return ">";
    case BinaryOp::Ge: return ">=";
    case BinaryOp::Eq: return "==";
    case BinaryOp::Ne: return "!=";
    case BinaryOp::And: return "&&";
    case BinaryOp::Or: return "||";
  }
  return "?";
}

namespace {
std::shared_ptr<Expr> node(Expr::Kind kind, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->loc = loc;
  return e;
}
}  // namespace

ExprPtr Expr::makeNumber(SourceLoc loc, double value, std::string text) {
  auto e = node(Kind::Number, loc);
  e->number = value;
  e->text = std::move(text);
  return e;
}

ExprPtr Expr::makeBool(SourceLoc loc, bool value) {
  auto e = node(Kind::Bool, loc);
  e->boolean = value;
  return e;
}

ExprPtr Expr::makeName(SourceLoc loc, std::string name) {
  auto e = node(Kind::Name, loc);
  e->text = std::move(name);
  return e;
}

ExprPtr Expr::makeUnary(SourceLoc loc, UnaryOp op, ExprPtr operand) {
  auto e = node(Kind::Unary, loc);
  e->unaryOp = op;
  e->operands = {std::move(operand)};
  return e;
}

ExprPtr Expr::makeBinary(SourceLoc loc, BinaryOp op, ExprPtr lhs, ExprPtr rhs) {
  auto e = node(Kind::Binary, loc);
  e->binaryOp = op;
  e->operands = {std::move(lhs), std::move(rhs)};
  return e;
}

ExprPtr Expr::makeCall(SourceLoc loc, std::string callee, std::vector<ExprPtr> args) {
  auto e = node(Kind::Call, loc);
  e->text = std::move(callee);
  e->operands = std::move(args);
  return e;
}

ExprPtr Expr::makeConditional(SourceLoc loc, ExprPtr cond, ExprPtr then, ExprPtr otherwise) {
  auto e = node(Kind::Conditional, loc);
  e->operands = {std::move(cond), std::move(then), std::move(otherwise)};
  return e;
}

ExprPtr Expr::withParens(const ExprPtr& e) {
  auto copy = std::make_shared<Expr>(*e);
  copy->parenthesized = true;
  return copy;
}

namespace {

void dumpExpr(std::ostream& os, const Expr& e) {
  if (e.parenthesized) os << "(paren ";
  switch (e.kind) {
    case Expr::Kind::Number: os << e.text; break;
    case Expr::Kind::Bool: os << (e.boolean ? "true" : "false"); break;
    case Expr::Kind::Name: os << e.text; break;
    case Expr::Kind::Unary:
      os << '(' << spelling(e.unaryOp) << ' ';
      dumpExpr(os, *e.operands[0]);
      os << ')';
      break;
    case Expr::Kind::Binary:
      os << '(' << spelling(e.binaryOp) << ' ';
      dumpExpr(os, *e.operands[0]);
      os << ' ';
      dumpExpr(os, *e.operands[1]);
      os << ')';
      break;
    case Expr::Kind::Call:
      os << "(call " << e.text;
      for (const auto& a : e.operands) {
        os << ' ';
        dumpExpr(os, *a);
      }
      os << ')';
      break;
    case Expr::Kind::Conditional:
      os << "(? ";
      dumpExpr(os, *e.operands[0]);
      os << ' ';
      dumpExpr(os, *e.operands[1]);
      os << ' ';
      dumpExpr(os, *e.operands[2]);
      os << ')';
      break;
  }
  if (e.parenthesized) os << ')';
}

const char* maskName(MaskKind k) {
  switch (k) {
    case MaskKind::Causal: return "causal";
    case MaskKind::Full: return "full";
    case MaskKind::Window: return "window";
    case MaskKind::Expr: return "expr";
  }
  return "?";
}

struct Dumper {
  std::ostringstream os;
  bool withLocations;

  void at(SourceLoc loc) {
    if (withLocations) os << " @" << loc.line << ':' << loc.col;
    os << '\n';
  }
  void expr(const char* label, const ExprPtr& e) {
    if (!e) return;
    os << "      " << label << ' ';
    dumpExpr(os, *e);
    at(e->loc);
  }
  void stmt(const Stmt& s) {
    os << "    ";
    switch (s.kind) {
      case Stmt::Kind::Param: os << "param " << s.name << ": " << s.typeName; break;
      case Stmt::Kind::Mask: os << "mask " << maskName(s.maskKind) << (s.perDocument ? " per document" : ""); break;
      case Stmt::Kind::Let: os << "let " << s.name; break;
      case Stmt::Kind::Out: os << "out"; break;
    }
    at(s.loc);
    expr("=", s.expr);
  }
};

}  // namespace

std::string dump(const Expr& expr) {
  std::ostringstream os;
  dumpExpr(os, expr);
  return os.str();
}

std::string dump(const Module& module, bool withLocations) {
  Dumper d;
  d.withLocations = withLocations;
  d.os << "module " << (module.file ? module.file->path() : std::string("<none>")) << '\n';
  for (const auto& def : module.defs) {
    if (const auto* fn = std::get_if<FnDef>(&def)) {
      d.os << "  fn " << fn->name << '(';
      for (size_t i = 0; i < fn->params.size(); ++i) d.os << (i ? ", " : "") << fn->params[i];
      d.os << ')';
      d.at(fn->loc);
      d.expr("=", fn->body);
    } else {
      const auto& a = std::get<AttentionDef>(def);
      d.os << "  attention " << a.name;
      d.at(a.loc);
      for (const auto& s : a.stmts) d.stmt(s);
    }
  }
  return d.os.str();
}

}  // namespace attn::ast
