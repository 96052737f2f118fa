// The checker: ast::Module -> CheckedAttention, or located errors.
//
// It enforces every rule of LANGUAGE.md that the grammar cannot: names defined before
// use and defined once, unknown names (with the nearest known name suggested), kinds
// (constant / row scalar / score / query vector / key vector) and types (number / bool),
// params (types, defaults from earlier params, --set overrides), fn inlining (no
// recursion, right arity), mask rules (no scores other than j, no n, no vectors, no lets),
// exactly one `out`, last, at most one mask. Every error of the module is reported.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/AST.h"
#include "compiler/CheckedProgram.h"
#include "compiler/Diagnostics.h"

namespace attn {

/// Checks every fn and every attention of `module` with default params. Returns the
/// attentions that checked without errors, in source order; errors go to `diags`.
std::vector<CheckedAttention> checkModule(const ast::Module& module, DiagnosticEngine& diags);

/// Checks the attention called `name` with `overrides` applied (each must name a param of
/// that attention and parse as its type). Errors (including an unknown name, an unknown
/// param, or a bad value) go to `diags`; returns nullopt when there was any.
std::optional<CheckedAttention> checkAttention(const ast::Module& module, const std::string& name,
                                               const std::vector<ParamOverride>& overrides,
                                               DiagnosticEngine& diags);

/// A readable listing of a checked attention: params with values and where they came
/// from, the mask, every let with its kind and type, and out. Used by `attn explain`.
std::string describe(const CheckedAttention& attention);

/// One checked expression as source-like text (lets by name, params by name).
std::string toString(const CheckedAttention& attention, const TExpr& expr);

}  // namespace attn
