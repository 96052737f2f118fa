// The checked program: one attention definition after name resolution, kind checking,
// param binding and fn inlining. This is what later stages (the score IR) start from.
//
// Meaning (LANGUAGE.md): for a query row i and every key j the mask lets through, the
// `out` value is the weight w_ij; o_i = sum_j w_ij v_j over unmasked j.
//
// Every value has
// - a kind: Constant < Row (per query row i) < Score (per (i, j)), or a QueryVec / KeyVec
//   (a length-d vector of the query row / key row), and
// - a type: Number or Bool. A Bool used where a number is needed counts as 0/1; a Number
//   is never silently used as a condition.
// Params are bound to values (defaults or --set overrides) and appear as TExpr::Op::Param
// nodes that carry that value, so printing can still name them. `fn` calls are gone:
// their bodies are inlined with the arguments substituted (a DAG: an argument used twice
// is shared). `let` values are referred to by index (Op::Let), so sharing is explicit.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/AST.h"
#include "compiler/Builtins.h"

namespace attn {

enum class ValueKind { Constant, Row, Score, QueryVec, KeyVec };
enum class ValueType { Number, Bool };

const char* kindName(ValueKind k);  ///< "constant", "row scalar", "score", "query vector", "key vector"
inline bool isScalar(ValueKind k) { return k <= ValueKind::Score; }
inline bool isVector(ValueKind k) { return k == ValueKind::QueryVec || k == ValueKind::KeyVec; }

struct TExpr;
using TExprPtr = std::shared_ptr<const TExpr>;

/// A checked expression node.
/// - Literal:     `value` (bools as 0/1 with type Bool)
/// - Builtin:     `builtin` (q, k, i, j, n, L, d)
/// - Param:       `index` into CheckedAttention::params; `value` is the bound value
/// - Let:         `index` into CheckedAttention::lets
/// - Unary:       `unaryOp`, operands[0]
/// - Binary:      `binaryOp`, operands[0..1]
/// - Call:        `fn` (a built-in function), operands = arguments
/// - Conditional: operands = {cond, then, else}
/// `loc` is the place in the source the node came from (inside a fn body for inlined code).
struct TExpr {
  enum class Op { Literal, Builtin, Param, Let, Unary, Binary, Call, Conditional };

  Op op = Op::Literal;
  ValueKind kind = ValueKind::Constant;
  ValueType type = ValueType::Number;
  SourceLoc loc;
  double value = 0;
  BuiltinName builtin = BuiltinName::D;
  int index = -1;
  ast::UnaryOp unaryOp = ast::UnaryOp::Neg;
  ast::BinaryOp binaryOp = ast::BinaryOp::Add;
  BuiltinFn fn = BuiltinFn::Exp;
  std::vector<TExprPtr> operands;
};

enum class ParamType { Int, Float, Bool };
const char* paramTypeName(ParamType t);  ///< "int", "float", "bool"

struct CheckedParam {
  std::string name;
  ParamType type = ParamType::Float;
  double value = 0;         ///< bools as 0/1, ints integral
  bool overridden = false;  ///< set from --set rather than its default
  SourceLoc loc;
};

struct CheckedLet {
  std::string name;
  TExprPtr value;
  SourceLoc loc;
};

struct CheckedAttention {
  std::string name;
  std::shared_ptr<const SourceFile> file;
  SourceLoc loc;
  std::vector<CheckedParam> params;
  ast::MaskKind mask = ast::MaskKind::Full;
  /// Window: the width W (a Constant Number). Expr: the predicate (Bool, at most Score kind
  /// through j, never using n, scores or vectors). Null for Causal and Full.
  TExprPtr maskExpr;
  /// `per document`: row i sees key j only when both lie in the same document (document
  /// ids given at call time); i, j, L and n are then those of the document
  /// (docs/LANGUAGE-NOTES.md, "Documents").
  bool perDocument = false;
  std::vector<CheckedLet> lets;
  TExprPtr out;  ///< the weights w_ij: a Number of kind Score
};

/// One `--set NAME=VALUE` override, as given on the command line or through the API.
struct ParamOverride {
  std::string name;
  std::string value;
};

}  // namespace attn
