// The parser: .attn text -> ast::Module. The only file that sees ANTLR types
// (Parser.cpp); everything after it works on our own AST.
//
// Before ANTLR runs, the text is checked for what would crash or exhaust it: invalid
// UTF-8 (a located error), NUL bytes, and nesting deeper than kMaxNesting (a located
// error instead of a stack overflow). Syntax errors are all reported (ANTLR recovers and
// goes on); a definition that contains a syntax error is left out of the module, so later
// stages only ever see well-formed definitions.
#pragma once

#include <memory>
#include <string>

#include "compiler/AST.h"
#include "compiler/Diagnostics.h"

namespace attn {

/// Deepest nesting of parentheses and prefix/right-associative operators accepted.
constexpr int kMaxNesting = 256;
/// Largest source file accepted, in bytes.
constexpr size_t kMaxSourceBytes = 64u << 20;

/// Reads `path` from disk. A missing, unreadable or oversized file, or a directory, is an
/// error in `diags` and gives null.
std::shared_ptr<const SourceFile> readSourceFile(const std::string& path, DiagnosticEngine& diags);

/// Parses `file`. Errors go to `diags`; the module holds the well-formed definitions.
ast::Module parseModule(std::shared_ptr<const SourceFile> file, DiagnosticEngine& diags);

}  // namespace attn
