// `attn fmt`: prints a module as canonical .attn text.
//
// Canonical means: definitions separated by one blank line; `attention NAME {` with its
// statements indented by two spaces, one per line; spaces around binary operators and
// after commas, none inside parentheses; parentheses kept where the user wrote them and
// added where precedence needs them; numbers as written; comments kept (own-line comments
// before the node they precede, end-of-line comments after it); at most one blank line
// kept between statements; a final newline. Formatting is idempotent, and parsing the
// output gives the same AST (ast::dump without locations) as parsing the input.
#pragma once

#include <string>

#include "compiler/AST.h"

namespace attn {

std::string formatModule(const ast::Module& module);

}  // namespace attn
