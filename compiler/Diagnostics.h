// Diagnostics: the two kinds of error attn reports.
//
// 1. The user's errors (a broken .attn file, a bad --set value, a missing file). They are
//    collected, never thrown, so that every error of a file is reported, and printed as
//        FILE:LINE:COL: error: MESSAGE
//        <the source line>
//        <spaces>^~~~
//    followed by optional `note:` / `hint:` lines. The CLI exits with status 1 when any
//    error was reported.
// 2. Our errors (a broken invariant inside the compiler). They are thrown as InternalError
//    by ATTN_INTERNAL_ASSERT, carry the compiler's own file and line, and are printed as
//    "internal error" by the CLI, which exits with status 3.
//
// Lines and columns are 1-based; columns count Unicode code points, so a caret lines up
// under the place in a UTF-8 editor.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace attn {

/// A place in a source file: 1-based line and column (code points), and the number of
/// code points on that line to underline (at least 1). Line 0 means "no place in a file".
struct SourceLoc {
  uint32_t line = 0;
  uint32_t col = 0;
  uint32_t length = 1;

  bool valid() const { return line > 0; }
  bool operator<(const SourceLoc& o) const {
    return line != o.line ? line < o.line : col < o.col;
  }
  bool operator==(const SourceLoc& o) const { return line == o.line && col == o.col; }
};

/// The text of one input file, with the start of every line for rendering diagnostics.
class SourceFile {
 public:
  SourceFile(std::string path, std::string text);

  const std::string& path() const { return path_; }
  const std::string& text() const { return text_; }
  /// The text of line `line` (1-based) without its line terminator; empty if out of range.
  std::string_view lineText(uint32_t line) const;
  uint32_t lineCount() const { return static_cast<uint32_t>(lineStarts_.size()); }

 private:
  std::string path_;
  std::string text_;
  std::vector<size_t> lineStarts_;
};

enum class Severity { Error, Warning };

/// One message about the user's input. `file` may be null for errors that belong to no
/// file (a bad --set flag); they print as "attn: error: MESSAGE".
struct Diagnostic {
  Severity severity = Severity::Error;
  std::shared_ptr<const SourceFile> file;
  SourceLoc loc;
  std::string message;
  std::vector<std::string> notes;  ///< printed as "  note: ..." lines after the caret
  std::string hint;                ///< printed as "  hint: ..." after the notes

  /// "LINE:COL: error: MESSAGE" (no file name): handy in tests.
  std::string brief() const;
};

/// Collects diagnostics; renders them sorted by file position (stable), at most `limit`
/// errors and `limit` warnings, then a line saying how many more there were.
class DiagnosticEngine {
 public:
  Diagnostic& error(std::shared_ptr<const SourceFile> file, SourceLoc loc, std::string message);
  Diagnostic& warning(std::shared_ptr<const SourceFile> file, SourceLoc loc, std::string message);
  /// An error that belongs to no file.
  Diagnostic& error(std::string message);

  size_t errorCount() const;
  size_t warningCount() const;
  bool hasErrors() const { return errorCount() > 0; }
  const std::vector<Diagnostic>& all() const { return diagnostics_; }
  /// The diagnostics, sorted by (file order of first report, line, column).
  std::vector<Diagnostic> sorted() const;

  void render(std::ostream& os, size_t limit = 50) const;
  std::string renderToString(size_t limit = 50) const;
  void clear() { diagnostics_.clear(); }

 private:
  std::vector<Diagnostic> diagnostics_;
};

/// Render one diagnostic (with its source line and caret) to `os`.
void renderDiagnostic(std::ostream& os, const Diagnostic& d);

/// A broken invariant inside attn itself. Never thrown for bad user input.
class InternalError : public std::logic_error {
 public:
  InternalError(const char* file, int line, const std::string& message);
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

}  // namespace attn

#define ATTN_INTERNAL_ASSERT(cond, message)                                   \
  do {                                                                        \
    if (!(cond)) throw ::attn::InternalError(__FILE__, __LINE__, (message)); \
  } while (0)

#define ATTN_INTERNAL_ERROR(message) throw ::attn::InternalError(__FILE__, __LINE__, (message))
