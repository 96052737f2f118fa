// The abstract syntax tree of a .attn file: exactly what the user wrote, nothing checked.
//
// The parser (Parser.cpp, the only file that sees ANTLR) builds it; the checker
// (Checker.cpp) turns it into a CheckedAttention; the formatter (Formatter.cpp) prints it
// back as canonical text. Every node carries the SourceLoc of the place a diagnostic about
// it should point at. Nodes are immutable once built and shared by pointer.
//
// Comments are kept as trivia on definitions and statements so that `attn fmt` never loses
// them: own-line comments before a node are `leading`, a comment after it on its last line
// is `trailing`.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "compiler/Diagnostics.h"

namespace attn::ast {

enum class UnaryOp { Neg, Plus, Not };
enum class BinaryOp { Pow, Mul, Div, Add, Sub, Lt, Le, Gt, Ge, Eq, Ne, And, Or };

/// Spelling of an operator in source: "-", "^", "<=", "&&", ...
const char* spelling(UnaryOp op);
const char* spelling(BinaryOp op);

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

/// An expression. Which fields are meaningful depends on `kind`:
/// - Number:      `number` (its value) and `text` (as written: "1e-3", ".5")
/// - Bool:        `boolean` (true/false)
/// - Name:        `text` (the identifier)
/// - Unary:       `unaryOp`, operands[0]
/// - Binary:      `binaryOp`, operands[0] (left) and operands[1] (right)
/// - Call:        `text` (the callee's name), operands = the arguments
/// - Conditional: operands = {condition, then, else}  (`c ? a : b`)
/// `loc` points at the literal or identifier, at the operator for Unary/Binary, and at the
/// '?' for Conditional. `parenthesized` records that the user wrote it in parentheses
/// (the formatter keeps them).
struct Expr {
  enum class Kind { Number, Bool, Name, Unary, Binary, Call, Conditional };

  Kind kind = Kind::Number;
  SourceLoc loc;
  double number = 0;
  bool boolean = false;
  std::string text;
  UnaryOp unaryOp = UnaryOp::Neg;
  BinaryOp binaryOp = BinaryOp::Add;
  std::vector<ExprPtr> operands;
  bool parenthesized = false;

  static ExprPtr makeNumber(SourceLoc loc, double value, std::string text);
  static ExprPtr makeBool(SourceLoc loc, bool value);
  static ExprPtr makeName(SourceLoc loc, std::string name);
  static ExprPtr makeUnary(SourceLoc loc, UnaryOp op, ExprPtr operand);
  static ExprPtr makeBinary(SourceLoc loc, BinaryOp op, ExprPtr lhs, ExprPtr rhs);
  static ExprPtr makeCall(SourceLoc loc, std::string callee, std::vector<ExprPtr> args);
  static ExprPtr makeConditional(SourceLoc loc, ExprPtr cond, ExprPtr then, ExprPtr otherwise);
  /// A copy of `e` with parenthesized = true.
  static ExprPtr withParens(const ExprPtr& e);
};

/// Comments attached to a definition or statement (texts include the leading '#' or '//').
struct Trivia {
  std::vector<std::string> leading;
  std::string trailing;
  bool blankLineBefore = false;  ///< the user left an empty line before it (kept by fmt, at most one)
  bool blankLineAfterLeading = false;  ///< an empty line between the leading comments and the node
                                       ///< (a file's header comment; kept by fmt, at most one)
};

enum class MaskKind { Causal, Full, Window, Expr };

/// One statement inside `attention NAME { ... }`.
/// - Param: `param name: typeName = expr`. typeName is as written (the checker accepts
///          int, float, bool); nameLoc/typeLoc point at them.
/// - Mask:  `mask causal|full|window(expr)|expr [per document]`; expr is null for causal and
///          full; perDocument for the `per document` scope (scopeLoc points at `per`).
/// - Let:   `let name = expr`.
/// - Out:   `out expr`.
/// `loc` points at the keyword.
struct Stmt {
  enum class Kind { Param, Mask, Let, Out };

  Kind kind = Kind::Let;
  SourceLoc loc;
  std::string name;
  SourceLoc nameLoc;
  std::string typeName;
  SourceLoc typeLoc;
  MaskKind maskKind = MaskKind::Full;
  bool perDocument = false;
  SourceLoc scopeLoc;
  ExprPtr expr;
  Trivia trivia;
};

/// `fn name(p1, p2, ...) = body`: an elementwise helper, inlined at every use.
struct FnDef {
  std::string name;
  SourceLoc loc;      ///< the `fn` keyword
  SourceLoc nameLoc;
  std::vector<std::string> params;
  std::vector<SourceLoc> paramLocs;
  ExprPtr body;
  Trivia trivia;
};

/// `attention name { statements }`.
struct AttentionDef {
  std::string name;
  SourceLoc loc;      ///< the `attention` keyword
  SourceLoc nameLoc;
  SourceLoc closeLoc; ///< the closing '}'
  std::vector<Stmt> stmts;
  Trivia trivia;
  std::vector<std::string> closingComments;  ///< own-line comments before the closing '}'
  // trivia.trailing of an attention is the comment after its opening '{' on that line.
};

using Definition = std::variant<FnDef, AttentionDef>;

/// A whole file: its definitions in source order.
struct Module {
  std::shared_ptr<const SourceFile> file;
  std::vector<Definition> defs;
  std::vector<std::string> trailingComments;  ///< own-line comments after the last definition
  bool trailingBlankLine = false;             ///< an empty line before trailingComments
};

/// An indented tree, one node per line. With `withLocations`, every node ends with
/// "@LINE:COL". Without, two modules print the same exactly when they have the same
/// structure (used to test that `attn fmt` preserves meaning).
std::string dump(const Module& module, bool withLocations = true);
std::string dump(const Expr& expr);  ///< a one-line S-expression, no locations

}  // namespace attn::ast
