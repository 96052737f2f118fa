#include "compiler/Diagnostics.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <sstream>

namespace attn {

SourceFile::SourceFile(std::string path, std::string text)
    : path_(std::move(path)), text_(std::move(text)) {
  lineStarts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i) {
    if (text_[i] == '\n') lineStarts_.push_back(i + 1);
  }
}

std::string_view SourceFile::lineText(uint32_t line) const {
  if (line == 0 || line > lineStarts_.size()) return {};
  size_t begin = lineStarts_[line - 1];
  size_t end = line < lineStarts_.size() ? lineStarts_[line] : text_.size();
  while (end > begin && (text_[end - 1] == '\n' || text_[end - 1] == '\r')) --end;
  return std::string_view(text_).substr(begin, end - begin);
}

std::string Diagnostic::brief() const {
  std::ostringstream os;
  if (loc.valid()) os << loc.line << ':' << loc.col << ": ";
  os << (severity == Severity::Error ? "error: " : "warning: ") << message;
  return os.str();
}

Diagnostic& DiagnosticEngine::error(std::shared_ptr<const SourceFile> file, SourceLoc loc,
                                    std::string message) {
  diagnostics_.push_back({Severity::Error, std::move(file), loc, std::move(message), {}, {}});
  return diagnostics_.back();
}

Diagnostic& DiagnosticEngine::warning(std::shared_ptr<const SourceFile> file, SourceLoc loc,
                                      std::string message) {
  diagnostics_.push_back({Severity::Warning, std::move(file), loc, std::move(message), {}, {}});
  return diagnostics_.back();
}

Diagnostic& DiagnosticEngine::error(std::string message) {
  return error(nullptr, SourceLoc{}, std::move(message));
}

size_t DiagnosticEngine::errorCount() const {
  return std::count_if(diagnostics_.begin(), diagnostics_.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

size_t DiagnosticEngine::warningCount() const { return diagnostics_.size() - errorCount(); }

std::vector<Diagnostic> DiagnosticEngine::sorted() const {
  // Files keep the order in which they were first reported; within a file, by position.
  std::map<const SourceFile*, size_t> fileOrder;
  for (const auto& d : diagnostics_) fileOrder.emplace(d.file.get(), fileOrder.size());
  std::vector<Diagnostic> out = diagnostics_;
  std::stable_sort(out.begin(), out.end(), [&](const Diagnostic& a, const Diagnostic& b) {
    size_t fa = fileOrder[a.file.get()], fb = fileOrder[b.file.get()];
    if (fa != fb) return fa < fb;
    return a.loc < b.loc;
  });
  return out;
}

namespace {

// Number of bytes of the UTF-8 sequence that starts with byte `c` (1 for invalid bytes).
size_t utf8Length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

void renderDiagnostic(std::ostream& os, const Diagnostic& d) {
  const char* severity = d.severity == Severity::Error ? "error" : "warning";
  if (!d.file) {
    os << "attn: " << severity << ": " << d.message << '\n';
  } else {
    os << d.file->path() << ':';
    if (d.loc.valid()) os << d.loc.line << ':' << d.loc.col << ':';
    os << ' ' << severity << ": " << d.message << '\n';
    if (d.loc.valid()) {
      std::string_view line = d.file->lineText(d.loc.line);
      // Very long lines (a 10 MB one-liner) are shown around the place only.
      size_t byte = 0;
      uint32_t col = 1;
      while (byte < line.size() && col < d.loc.col) {
        byte += utf8Length(static_cast<unsigned char>(line[byte]));
        ++col;
      }
      size_t from = 0;
      std::string prefix;
      if (byte > 120) {
        from = byte - 60;
        while (from < line.size() && (static_cast<unsigned char>(line[from]) & 0xC0) == 0x80) ++from;
        prefix = "...";
      }
      std::string_view shown = line.substr(from, std::min<size_t>(line.size() - from, 200));
      os << prefix << shown << (from + shown.size() < line.size() ? "..." : "") << '\n';
      // Keep tabs in the caret line so the caret lines up under tabbed source.
      std::string caret = prefix.empty() ? "" : "   ";
      for (size_t b = from; b < byte && b < line.size();) {
        caret += line[b] == '\t' ? '\t' : ' ';
        b += utf8Length(static_cast<unsigned char>(line[b]));
      }
      caret += '^';
      for (uint32_t k = 1; k < d.loc.length && k < 200; ++k) caret += '~';
      os << caret << '\n';
    }
  }
  for (const auto& n : d.notes) os << "  note: " << n << '\n';
  if (!d.hint.empty()) os << "  hint: " << d.hint << '\n';
}

void DiagnosticEngine::render(std::ostream& os, size_t limit) const {
  // At most `limit` errors and `limit` warnings: a 10 MB file must not print a million lines.
  size_t shown[2] = {0, 0}, hidden[2] = {0, 0};
  for (const auto& d : sorted()) {
    size_t s = d.severity == Severity::Error ? 0 : 1;
    if (shown[s] >= limit) {
      ++hidden[s];
      continue;
    }
    ++shown[s];
    renderDiagnostic(os, d);
  }
  if (hidden[0] > 0) os << "attn: " << hidden[0] << " more error(s) not shown\n";
  if (hidden[1] > 0) os << "attn: " << hidden[1] << " more warning(s) not shown\n";
}

std::string DiagnosticEngine::renderToString(size_t limit) const {
  std::ostringstream os;
  render(os, limit);
  return os.str();
}

namespace {
// "compiler/IR.cpp", whether the compiler was given the file as an absolute path (a build
// directory outside the tree) or relative to a build directory inside it ("../compiler/IR.cpp").
std::string projectRelative(const char* file) {
  std::string path = file;
#ifdef ATTN_SOURCE_DIR
  const std::string root = ATTN_SOURCE_DIR;
  if (path.compare(0, root.size(), root) == 0) return path.substr(root.size());
#endif
  while (path.compare(0, 3, "../") == 0) path = path.substr(3);
  return path;
}
}  // namespace

InternalError::InternalError(const char* file, int line, const std::string& message)
    : std::logic_error(message), where_(projectRelative(file) + ":" + std::to_string(line)) {}

}  // namespace attn
