// .attn text -> ast::Module, through the ANTLR-generated lexer and parser.
//
// This is the only file that includes ANTLR. It is deliberately not a general visitor: it
// walks the parse tree by hand, building our AST with a location on every node, and
// collects comments from the hidden channel as trivia. What it refuses before ANTLR ever
// sees the text: invalid UTF-8 (ANTLR's input stream would throw), NUL bytes (a binary
// file), and nesting deep enough to exhaust the stack of ANTLR's recursive descent.
#include "compiler/Parser.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "AttnLexer.h"
#include "AttnParser.h"
#include "antlr4-runtime.h"

namespace attn {

using attn_grammar::AttnLexer;
using attn_grammar::AttnParser;

// ---- reading files ---------------------------------------------------------------------

// Opens non-blocking so that a FIFO cannot stall us before we can look at it, then reads
// only a regular file (a symbolic link to one is fine), never more than kMaxSourceBytes: a
// device such as /dev/zero or a pipe is refused at once instead of read without end.
std::shared_ptr<const SourceFile> readSourceFile(const std::string& path, DiagnosticEngine& diags) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    diags.error("cannot open '" + path + "': " + std::strerror(errno));
    return nullptr;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    diags.error("cannot read '" + path + "': " + std::strerror(errno));
    return nullptr;
  }
  if (S_ISDIR(st.st_mode)) {
    diags.error("'" + path + "' is a directory, not a .attn file");
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISFIFO(st.st_mode)   ? "a pipe"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    diags.error("'" + path + "' is " + what + ", not a .attn file (only regular files are read)");
    return nullptr;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxSourceBytes) {
    diags.error("'" + path + "' is too large (" + std::to_string(st.st_size) +
                " bytes; the limit is " + std::to_string(kMaxSourceBytes) + ")");
    return nullptr;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  // The size can change while we read (a file being written): read to the end, but stop one
  // byte past the limit.
  std::string text;
  char chunk[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      diags.error("error while reading '" + path + "': " + std::strerror(errno));
      return nullptr;
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > kMaxSourceBytes) {
      diags.error("'" + path + "' is too large (more than " + std::to_string(kMaxSourceBytes) +
                  " bytes, the limit)");
      return nullptr;
    }
  }
  return std::make_shared<SourceFile>(path, std::move(text));
}

namespace {

// ---- checks before ANTLR -----------------------------------------------------------------

// Finds the first byte that is not part of a well-formed UTF-8 sequence (overlongs,
// surrogates and code points above U+10FFFF included). Returns its byte offset, or npos.
size_t firstInvalidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t minimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minimum[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

// 1-based line and column (in code points) of byte `offset`.
SourceLoc locOfByte(const std::string& s, size_t offset) {
  SourceLoc loc{1, 1, 1};
  for (size_t i = 0; i < offset && i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c == '\n') {
      ++loc.line;
      loc.col = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++loc.col;
    }
  }
  return loc;
}

bool checkEncoding(const std::shared_ptr<const SourceFile>& file, DiagnosticEngine& diags) {
  const std::string& text = file->text();
  size_t bad = firstInvalidUtf8(text);
  if (bad != std::string::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[bad]));
    auto& d = diags.error(file, locOfByte(text, bad),
                          std::string("invalid UTF-8 (byte ") + hex + ")");
    d.hint = ".attn files are UTF-8 text; is this a binary file?";
    return false;
  }
  size_t nul = text.find('\0');
  if (nul != std::string::npos) {
    auto& d = diags.error(file, locOfByte(text, nul), "NUL byte in source");
    d.hint = ".attn files are UTF-8 text; is this a binary file?";
    return false;
  }
  return true;
}

// ---- locations ---------------------------------------------------------------------------

SourceLoc locOf(const antlr4::Token* t) {
  SourceLoc loc;
  if (!t) return loc;
  loc.line = static_cast<uint32_t>(t->getLine());
  loc.col = static_cast<uint32_t>(t->getCharPositionInLine()) + 1;
  if (t->getType() != antlr4::Token::EOF && t->getStopIndex() >= t->getStartIndex())
    loc.length = static_cast<uint32_t>(t->getStopIndex() - t->getStartIndex() + 1);
  return loc;
}

// ---- nesting guard -------------------------------------------------------------------------

// ANTLR's parser recurses once per parenthesis, prefix operator, '^' and '?:'. Estimate
// that depth from the tokens (over-estimating, never under) and refuse anything deeper
// than kMaxNesting, at the token where the limit is crossed.
bool checkNesting(const std::vector<antlr4::Token*>& tokens,
                  const std::shared_ptr<const SourceFile>& file, DiagnosticEngine& diags) {
  std::vector<int> levels{0};  // recursion-making operators at each open paren level
  int depth = 0;               // open parens + sum(levels)
  size_t prevType = 0;         // previous default-channel token type (0: none)
  for (antlr4::Token* t : tokens) {
    if (t->getChannel() != antlr4::Token::DEFAULT_CHANNEL) continue;
    size_t type = t->getType();
    bool operandBefore = prevType == AttnParser::ID || prevType == AttnParser::NUMBER ||
                         prevType == AttnParser::TRUE || prevType == AttnParser::FALSE ||
                         prevType == AttnParser::RPAREN;
    switch (type) {
      case AttnParser::LPAREN:
        levels.push_back(0);
        ++depth;
        break;
      case AttnParser::RPAREN:
        if (levels.size() > 1) {
          depth -= levels.back() + 1;
          levels.pop_back();
        }
        break;
      case AttnParser::CARET:
      case AttnParser::QUESTION:
        ++levels.back();
        ++depth;
        break;
      case AttnParser::MINUS:
      case AttnParser::PLUS:
      case AttnParser::NOT:
        if (!operandBefore) {
          ++levels.back();
          ++depth;
        }
        break;
      case AttnParser::NL:
      case AttnParser::SEMI:
      case AttnParser::LBRACE:
      case AttnParser::RBRACE:
        levels.assign(1, 0);
        depth = 0;
        break;
      default:
        break;
    }
    if (depth > kMaxNesting) {
      auto& d = diags.error(file, locOf(t),
                            "expression nested too deeply (more than " +
                                std::to_string(kMaxNesting) + " levels)");
      d.hint = "split it into several `let` statements";
      return false;
    }
    prevType = type;
  }
  return true;
}

// ---- syntax errors -------------------------------------------------------------------------

std::string describeToken(const antlr4::Token* t) {
  if (!t || t->getType() == antlr4::Token::EOF) return "end of file";
  switch (t->getType()) {
    case AttnParser::NL: return "end of line";
    case AttnParser::ID: return "name '" + t->getText() + "'";
    case AttnParser::NUMBER: return "number " + t->getText();
    default: break;
  }
  std::string text = t->getText();
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return "'" + text + "'";
}

std::string describeExpected(const antlr4::misc::IntervalSet& expected,
                             const antlr4::dfa::Vocabulary& vocabulary) {
  std::vector<std::string> names;
  for (ssize_t type : expected.toList()) {
    if (type == static_cast<ssize_t>(antlr4::Token::EOF)) {
      names.push_back("end of file");
    } else if (type == AttnParser::NL) {
      names.push_back("end of line");
    } else if (type == AttnParser::ID) {
      names.push_back("a name");
    } else if (type == AttnParser::NUMBER) {
      names.push_back("a number");
    } else {
      names.push_back(vocabulary.getLiteralName(type));
    }
  }
  if (names.empty() || names.size() > 8) return "";
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// Turns ANTLR's reports into our diagnostics, remembering where they were (as character
// indices) so that the definitions containing them can be dropped.
class ErrorCollector : public antlr4::BaseErrorListener {
 public:
  ErrorCollector(std::shared_ptr<const SourceFile> file, DiagnosticEngine& diags)
      : file_(std::move(file)), diags_(diags) {}

  void syntaxError(antlr4::Recognizer* recognizer, antlr4::Token* offending, size_t line,
                   size_t charPositionInLine, const std::string& msg,
                   std::exception_ptr) override {
    SourceLoc loc{static_cast<uint32_t>(line), static_cast<uint32_t>(charPositionInLine) + 1, 1};
    auto* parser = dynamic_cast<antlr4::Parser*>(recognizer);
    if (!parser || !offending) {
      // A lexer error: ANTLR's message is "token recognition error at: 'X'".
      std::string text = msg;
      auto at = text.find("at: ");
      std::string what = at == std::string::npos ? text : text.substr(at + 4);
      diags_.error(file_, loc, "unexpected character " + what);
      // The lexer's current index is just past the bad character.
      errorPositions_.push_back(recognizer->getInputStream()->index());
      return;
    }
    loc = locOf(offending);
    if (offending->getType() == antlr4::Token::EOF) {
      loc.line = static_cast<uint32_t>(line);
      loc.col = static_cast<uint32_t>(charPositionInLine) + 1;
    }
    std::string message = "unexpected " + describeToken(offending);
    std::string expected = describeExpected(parser->getExpectedTokens(), parser->getVocabulary());
    if (!expected.empty()) message += "; expected " + expected;
    // ANTLR can report the same place twice while recovering: keep the first.
    if (!reported_.insert({loc.line, loc.col}).second) return;
    diags_.error(file_, loc, message);
    errorPositions_.push_back(offending->getStartIndex());
  }

  const std::vector<size_t>& errorPositions() const { return errorPositions_; }

 private:
  std::shared_ptr<const SourceFile> file_;
  DiagnosticEngine& diags_;
  std::vector<size_t> errorPositions_;
  std::set<std::pair<uint32_t, uint32_t>> reported_;
};

// ---- parse tree -> AST -------------------------------------------------------------------

// Thrown when the parse tree of a definition is incomplete (ANTLR recovered from an error
// inside it); the definition is then left out. The error itself was already reported.
struct Malformed {};

template <typename T>
T* need(T* p) {
  if (!p) throw Malformed{};
  return p;
}

class AstBuilder {
 public:
  AstBuilder(std::shared_ptr<const SourceFile> file, antlr4::CommonTokenStream& tokens,
             DiagnosticEngine& diags)
      : file_(std::move(file)), tokens_(tokens), diags_(diags) {
    for (antlr4::Token* t : tokens_.getTokens())
      if (t->getType() == AttnParser::COMMENT) comments_.push_back(t);
  }

  void build(AttnParser::FileContext* fileCtx, const std::vector<size_t>& errorPositions,
             ast::Module& module) {
    for (auto* defCtx : fileCtx->definition()) {
      if (containsError(defCtx, errorPositions)) {
        skipCommentsBefore(defCtx->getStop() ? defCtx->getStop()->getTokenIndex() + 1 : 0);
        continue;
      }
      try {
        // An attention's own comments are its statements' business: take only those before it.
        antlr4::Token* stop = defCtx->fnDef() ? defCtx->getStop() : defCtx->getStart();
        ast::Trivia trivia = leadingTrivia(defCtx->getStart(), stop);
        if (auto* fn = defCtx->fnDef()) {
          ast::FnDef def = buildFn(fn);
          def.trivia = trivia;
          def.trivia.trailing = trailingComment(fn->getStop());
          module.defs.emplace_back(std::move(def));
        } else {
          ast::AttentionDef def = buildAttention(need(defCtx->attentionDef()));
          def.trivia.leading = trivia.leading;
          def.trivia.blankLineBefore = trivia.blankLineBefore;
          def.trivia.blankLineAfterLeading = trivia.blankLineAfterLeading;
          module.defs.emplace_back(std::move(def));
        }
      } catch (const Malformed&) {
        skipCommentsBefore(defCtx->getStop() ? defCtx->getStop()->getTokenIndex() + 1 : 0);
      }
    }
    // Whatever comments remain come after the last definition.
    uint32_t lastLine = 0;
    if (!module.defs.empty()) lastLine = lastLineOfPreviousNode_;
    bool first = true;
    for (; nextComment_ < comments_.size(); ++nextComment_) {
      antlr4::Token* c = comments_[nextComment_];
      if (first) module.trailingBlankLine = lastLine > 0 && blankBetween(lastLine, c->getLine());
      first = false;
      module.trailingComments.push_back(commentText(c));
    }
  }

 private:
  std::shared_ptr<const SourceFile> file_;
  antlr4::CommonTokenStream& tokens_;
  DiagnosticEngine& diags_;
  std::vector<antlr4::Token*> comments_;
  size_t nextComment_ = 0;
  std::set<antlr4::Token*> usedAsTrailing_;
  uint32_t lastLineOfPreviousNode_ = 0;

  static bool containsError(antlr4::ParserRuleContext* ctx, const std::vector<size_t>& positions) {
    if (!ctx->getStart() || !ctx->getStop()) return true;
    size_t from = ctx->getStart()->getStartIndex();
    size_t to = std::max(ctx->getStop()->getStopIndex(), ctx->getStart()->getStartIndex());
    for (size_t p : positions)
      if (p >= from && p <= to + 1) return true;
    return false;
  }

  std::string commentText(antlr4::Token* t) const {
    std::string s = t->getText();
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
    return s;
  }

  bool lineIsBlank(uint32_t line) const {
    std::string_view text = file_->lineText(line);
    return text.find_first_not_of(" \t\f\r") == std::string_view::npos;
  }
  // Is any line strictly between `a` and `b` blank?
  bool blankBetween(size_t a, size_t b) const {
    for (size_t l = a + 1; l < b; ++l)
      if (lineIsBlank(static_cast<uint32_t>(l))) return true;
    return false;
  }

  void skipCommentsBefore(size_t tokenIndex) {
    while (nextComment_ < comments_.size() && comments_[nextComment_]->getTokenIndex() < tokenIndex)
      ++nextComment_;
  }

  // Own-line comments before (or inside) the node spanning [start, stop], and whether a
  // blank line precedes it. Comments already used as some node's trailing comment are
  // skipped.
  ast::Trivia leadingTrivia(antlr4::Token* start, antlr4::Token* stop) {
    ast::Trivia trivia;
    size_t stopIndex = stop ? stop->getTokenIndex() : start->getTokenIndex();
    size_t firstLine = start->getLine();
    size_t lastCommentLine = 0;
    while (nextComment_ < comments_.size()) {
      antlr4::Token* c = comments_[nextComment_];
      if (c->getTokenIndex() > stopIndex) break;
      // A comment inside a node ending on the node's last line is its trailing comment.
      if (c->getTokenIndex() > start->getTokenIndex() && c->getLine() == stop->getLine()) break;
      ++nextComment_;
      if (usedAsTrailing_.count(c)) continue;
      if (c->getTokenIndex() < start->getTokenIndex()) {
        firstLine = std::min(firstLine, c->getLine());
        lastCommentLine = c->getLine();
      }
      trivia.leading.push_back(commentText(c));
    }
    if (lastLineOfPreviousNode_ > 0) trivia.blankLineBefore = blankBetween(lastLineOfPreviousNode_, firstLine);
    if (lastCommentLine > 0) trivia.blankLineAfterLeading = blankBetween(lastCommentLine, start->getLine());
    lastLineOfPreviousNode_ = static_cast<uint32_t>(stop ? stop->getLine() : start->getLine());
    return trivia;
  }

  // A comment on the same line right after `last` (only whitespace between).
  std::string trailingComment(antlr4::Token* last) {
    if (!last) return "";
    for (antlr4::Token* t : tokens_.getHiddenTokensToRight(last->getTokenIndex())) {
      if (t->getLine() != last->getLine()) break;
      if (t->getType() == AttnParser::COMMENT) {
        usedAsTrailing_.insert(t);
        if (nextComment_ < comments_.size() && comments_[nextComment_] == t) ++nextComment_;
        return commentText(t);
      }
    }
    return "";
  }

  ast::FnDef buildFn(AttnParser::FnDefContext* ctx) {
    ast::FnDef def;
    def.loc = locOf(need(ctx->FN())->getSymbol());
    def.name = need(ctx->name)->getText();
    def.nameLoc = locOf(ctx->name);
    auto ids = ctx->ID();
    for (size_t k = 1; k < ids.size(); ++k) {  // ID(0) is the name
      def.params.push_back(ids[k]->getText());
      def.paramLocs.push_back(locOf(ids[k]->getSymbol()));
    }
    def.body = expr(need(ctx->expr()));
    return def;
  }

  ast::AttentionDef buildAttention(AttnParser::AttentionDefContext* ctx) {
    ast::AttentionDef def;
    def.loc = locOf(need(ctx->ATTENTION())->getSymbol());
    def.name = need(ctx->name)->getText();
    def.nameLoc = locOf(ctx->name);
    antlr4::Token* open = need(ctx->LBRACE())->getSymbol();
    antlr4::Token* close = need(ctx->RBRACE())->getSymbol();
    def.closeLoc = locOf(close);
    def.trivia.trailing = trailingComment(open);
    lastLineOfPreviousNode_ = static_cast<uint32_t>(open->getLine());
    bool first = true;
    antlr4::Token* previousStop = nullptr;
    for (auto* s : ctx->statement()) {
      if (previousStop) requireSeparator(previousStop, s->getStart());
      previousStop = s->getStop();
      ast::Stmt stmt = statement(s);
      stmt.trivia = leadingTrivia(s->getStart(), s->getStop());
      if (first) stmt.trivia.blankLineBefore = false;
      first = false;
      stmt.trivia.trailing = trailingComment(s->getStop());
      def.stmts.push_back(std::move(stmt));
    }
    while (nextComment_ < comments_.size() &&
           comments_[nextComment_]->getTokenIndex() < close->getTokenIndex()) {
      antlr4::Token* c = comments_[nextComment_++];
      if (!usedAsTrailing_.count(c)) def.closingComments.push_back(commentText(c));
    }
    lastLineOfPreviousNode_ = static_cast<uint32_t>(close->getLine());
    return def;
  }

  // Two statements need a newline or ';' between them.
  void requireSeparator(antlr4::Token* previousStop, antlr4::Token* next) {
    for (size_t k = previousStop->getTokenIndex() + 1; k < next->getTokenIndex(); ++k) {
      antlr4::Token* t = tokens_.get(k);
      if (t->getChannel() == antlr4::Token::DEFAULT_CHANNEL &&
          (t->getType() == AttnParser::NL || t->getType() == AttnParser::SEMI))
        return;
    }
    auto& d = diags_.error(file_, locOf(next),
                           "unexpected '" + next->getText() + "'; expected end of line or ';' before it");
    d.hint = "statements end at a newline or ';'";
  }

  ast::Stmt statement(AttnParser::StatementContext* ctx) {
    if (ctx->exception) throw Malformed{};
    ast::Stmt s;
    if (auto* p = dynamic_cast<AttnParser::ParamStmtContext*>(ctx)) {
      s.kind = ast::Stmt::Kind::Param;
      s.loc = locOf(need(p->PARAM())->getSymbol());
      s.name = need(p->name)->getText();
      s.nameLoc = locOf(p->name);
      s.typeName = need(p->type)->getText();
      s.typeLoc = locOf(p->type);
      s.expr = expr(need(p->expr()));
    } else if (auto* m = dynamic_cast<AttnParser::MaskStmtContext*>(ctx)) {
      s.kind = ast::Stmt::Kind::Mask;
      s.loc = locOf(need(m->MASK())->getSymbol());
      auto* spec = need(m->maskSpec());
      if (dynamic_cast<AttnParser::CausalMaskContext*>(spec)) {
        s.maskKind = ast::MaskKind::Causal;
      } else if (dynamic_cast<AttnParser::FullMaskContext*>(spec)) {
        s.maskKind = ast::MaskKind::Full;
      } else if (auto* w = dynamic_cast<AttnParser::WindowMaskContext*>(spec)) {
        s.maskKind = ast::MaskKind::Window;
        s.expr = expr(need(w->expr()));
      } else if (auto* e = dynamic_cast<AttnParser::ExprMaskContext*>(spec)) {
        s.maskKind = ast::MaskKind::Expr;
        s.expr = expr(need(e->expr()));
      } else {
        throw Malformed{};
      }
      if (auto* scope = m->scope()) maskScope(scope, s);
    } else if (auto* l = dynamic_cast<AttnParser::LetStmtContext*>(ctx)) {
      s.kind = ast::Stmt::Kind::Let;
      s.loc = locOf(need(l->LET())->getSymbol());
      s.name = need(l->name)->getText();
      s.nameLoc = locOf(l->name);
      s.expr = expr(need(l->expr()));
    } else if (auto* o = dynamic_cast<AttnParser::OutStmtContext*>(ctx)) {
      s.kind = ast::Stmt::Kind::Out;
      s.loc = locOf(need(o->OUT())->getSymbol());
      s.expr = expr(need(o->expr()));
    } else {
      throw Malformed{};
    }
    return s;
  }

  // `per document` after a mask; the words are not keywords (a program may still name a
  // value `document`), so a misspelling is reported here, located at the wrong word.
  void maskScope(AttnParser::ScopeContext* scope, ast::Stmt& s) {
    antlr4::Token* per = need(scope->per);
    s.scopeLoc = locOf(per);
    if (per->getText() != "per") {
      auto& d = diags_.error(file_, locOf(per), "unexpected '" + per->getText() + "' after the mask");
      d.hint = "a mask may be followed by 'per document' (each query sees only its own document's keys)";
      return;
    }
    if (!scope->what || scope->what->getText() != "document") {
      auto& d = scope->what ? diags_.error(file_, locOf(scope->what), "expected 'document' after 'per', found '" +
                                                                          scope->what->getText() + "'")
                            : diags_.error(file_, locOf(per), "expected 'document' after 'per'");
      d.hint = "write 'per document'";
      return;
    }
    s.perDocument = true;
  }

  ast::ExprPtr binary(antlr4::Token* op, const std::vector<AttnParser::ExprContext*>& operands,
                      ast::BinaryOp kind) {
    if (operands.size() != 2) throw Malformed{};
    return ast::Expr::makeBinary(locOf(need(op)), kind, expr(operands[0]), expr(operands[1]));
  }

  static ast::BinaryOp binaryOpOf(size_t tokenType) {
    switch (tokenType) {
      case AttnParser::CARET: return ast::BinaryOp::Pow;
      case AttnParser::STAR: return ast::BinaryOp::Mul;
      case AttnParser::SLASH: return ast::BinaryOp::Div;
      case AttnParser::PLUS: return ast::BinaryOp::Add;
      case AttnParser::MINUS: return ast::BinaryOp::Sub;
      case AttnParser::LT: return ast::BinaryOp::Lt;
      case AttnParser::LE: return ast::BinaryOp::Le;
      case AttnParser::GT: return ast::BinaryOp::Gt;
      case AttnParser::GE: return ast::BinaryOp::Ge;
      case AttnParser::EQ: return ast::BinaryOp::Eq;
      case AttnParser::NE: return ast::BinaryOp::Ne;
      case AttnParser::AND: return ast::BinaryOp::And;
      case AttnParser::OR: return ast::BinaryOp::Or;
      default: throw Malformed{};
    }
  }

  ast::ExprPtr expr(AttnParser::ExprContext* ctx) {
    if (!ctx || ctx->exception) throw Malformed{};
    if (auto* p = dynamic_cast<AttnParser::PrimaryExprContext*>(ctx)) return primary(need(p->primary()));
    if (auto* u = dynamic_cast<AttnParser::UnaryExprContext*>(ctx)) {
      antlr4::Token* op = need(u->op);
      ast::UnaryOp kind = op->getType() == AttnParser::MINUS  ? ast::UnaryOp::Neg
                          : op->getType() == AttnParser::PLUS ? ast::UnaryOp::Plus
                                                              : ast::UnaryOp::Not;
      return ast::Expr::makeUnary(locOf(op), kind, expr(need(u->expr())));
    }
    if (auto* c = dynamic_cast<AttnParser::CondExprContext*>(ctx)) {
      auto parts = c->expr();
      if (parts.size() != 3) throw Malformed{};
      return ast::Expr::makeConditional(locOf(need(c->op)), expr(parts[0]), expr(parts[1]),
                                        expr(parts[2]));
    }
#define ATTN_BINARY_CASE(Ctx)                                              \
  if (auto* b = dynamic_cast<AttnParser::Ctx*>(ctx)) {                     \
    return binary(b->op, b->expr(), binaryOpOf(need(b->op)->getType()));   \
  }
    ATTN_BINARY_CASE(PowExprContext)
    ATTN_BINARY_CASE(MulExprContext)
    ATTN_BINARY_CASE(AddExprContext)
    ATTN_BINARY_CASE(RelExprContext)
    ATTN_BINARY_CASE(EqExprContext)
    ATTN_BINARY_CASE(AndExprContext)
    ATTN_BINARY_CASE(OrExprContext)
#undef ATTN_BINARY_CASE
    throw Malformed{};
  }

  ast::ExprPtr primary(AttnParser::PrimaryContext* ctx) {
    if (ctx->exception) throw Malformed{};
    if (auto* n = dynamic_cast<AttnParser::NumberLitContext*>(ctx)) {
      antlr4::Token* t = need(n->NUMBER())->getSymbol();
      std::string text = t->getText();
      double value = std::strtod(text.c_str(), nullptr);  // the lexer guarantees the syntax
      return ast::Expr::makeNumber(locOf(t), value, text);
    }
    if (auto* b = dynamic_cast<AttnParser::BoolLitContext*>(ctx)) {
      antlr4::Token* t = b->getStart();
      return ast::Expr::makeBool(locOf(t), t->getType() == AttnParser::TRUE);
    }
    if (auto* c = dynamic_cast<AttnParser::CallExprContext*>(ctx)) {
      std::vector<ast::ExprPtr> args;
      for (auto* a : c->expr()) args.push_back(expr(a));
      return ast::Expr::makeCall(locOf(need(c->callee)), c->callee->getText(), std::move(args));
    }
    if (auto* n = dynamic_cast<AttnParser::NameExprContext*>(ctx)) {
      antlr4::Token* t = need(n->ID())->getSymbol();
      return ast::Expr::makeName(locOf(t), t->getText());
    }
    if (auto* p = dynamic_cast<AttnParser::ParenExprContext*>(ctx)) {
      return ast::Expr::withParens(expr(need(p->expr())));
    }
    throw Malformed{};
  }
};

}  // namespace

ast::Module parseModule(std::shared_ptr<const SourceFile> file, DiagnosticEngine& diags) {
  ast::Module module;
  module.file = file;
  if (!checkEncoding(file, diags)) return module;

  antlr4::ANTLRInputStream input(file->text());
  input.name = file->path();
  AttnLexer lexer(&input);
  ErrorCollector errors(file, diags);
  lexer.removeErrorListeners();
  lexer.addErrorListener(&errors);
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  if (!checkNesting(tokens.getTokens(), file, diags)) return module;

  AttnParser parser(&tokens);
  parser.removeErrorListeners();
  parser.addErrorListener(&errors);
  AttnParser::FileContext* tree = parser.file();

  AstBuilder builder(file, tokens, diags);
  builder.build(tree, errors.errorPositions(), module);
  return module;
}

}  // namespace attn
