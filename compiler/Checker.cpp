// The checker (Checker.h): every rule of LANGUAGE.md that the grammar cannot enforce.
//
// How it goes, for one module:
// 1. fns: names (a fn may not be named like a built-in function or be defined twice, its
//    parameters must be distinct), then every body is walked for names (its parameters,
//    the built-in names, calls to known functions with the right number of arguments),
//    then the call graph is searched for cycles. A fn with any of these errors is
//    "broken": calls to it give a poisoned value without a second report.
// 2. attentions: a first pass registers the params and lets (to tell "unknown" from
//    "used before its definition"), then the statements are checked in order. Every
//    expression becomes a TExpr with a kind and a type; fn calls are inlined by checking
//    the fn's body with the arguments bound to its parameters (like a template), memoised
//    on (fn, arguments) so that shared calls stay shared and checking stays linear.
//
// Errors never stop the check. A subexpression with an error yields a null TExpr
// ("poisoned"): whatever contains it is poisoned too, silently, so one mistake gives one
// diagnostic; a let whose value is poisoned makes its uses poisoned. The same message at
// the same place is reported once (an error in a fn body called from several places).
//
// Recursion follows the expression tree, which the parser bounds, but inlining can nest
// fn bodies deeply: the depth (kMaxCheckDepth) and the total work per attention
// (kMaxCheckedNodes) are bounded, with a located error beyond either.
#include "compiler/Checker.h"

#include "compiler/ScalarOps.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "compiler/Suggest.h"

namespace attn {

const char* kindName(ValueKind k) {
  switch (k) {
    case ValueKind::Constant: return "constant";
    case ValueKind::Row: return "row scalar";
    case ValueKind::Score: return "score";
    case ValueKind::QueryVec: return "query vector";
    case ValueKind::KeyVec: return "key vector";
  }
  return "?";
}

const char* paramTypeName(ParamType t) {
  switch (t) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
  }
  return "?";
}

namespace {

/// Deepest nesting, both of the checker's recursion (a chain of fns each calling the next
/// nests one body inside the other) and of the checked expressions it builds (an inlined
/// fn that applies another fn to its own result doubles the height at each level).
constexpr int kMaxCheckDepth = 2000;
/// Most expression nodes checked for one attention, after inlining.
constexpr size_t kMaxCheckedNodes = 200000;
/// Most row reductions and normalisations nested in one another, after inlining. Each can
/// need a pass over the keys, and every pass recomputes the scores: the generated code
/// grows with passes x expression size, so nested fns that reduce could make gigabytes.
constexpr int kMaxNestedReductions = 16;
/// Longest text toString produces (a shared fn argument is printed at each use, so the
/// text of a small DAG can be exponentially long).
constexpr size_t kMaxPrintedChars = 20000;
/// Suggestions computed per check (each costs a pass over the candidates).
constexpr int kMaxSuggestions = 200;
/// Inline frames named in the notes of one diagnostic.
constexpr int kMaxInlineNotes = 4;

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string didYouMean(const std::optional<std::string>& near) {
  return near ? "; did you mean '" + *near + "'?" : "";
}

std::string at(SourceLoc loc) {
  return "line " + std::to_string(loc.line) + ", column " + std::to_string(loc.col);
}

/// The shortest decimal text that reads back as `v` ("15", "0.5", "0.001", "1e+20").
std::string formatNumber(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

bool isKeyword(const std::string& name) {
  const auto& k = keywords();
  return std::find(k.begin(), k.end(), name) != k.end();
}

std::string joinKinds(const std::vector<TExprPtr>& args) {
  std::string out;
  for (size_t a = 0; a < args.size(); ++a) {
    if (a > 0) out += a + 1 == args.size() ? " and " : ", ";
    out += kindName(args[a]->kind);
  }
  return out;
}

std::string article(ValueKind k) { return std::string("a ") + kindName(k); }

std::string plural(size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

ValueKind maxKind(ValueKind a, ValueKind b) { return a < b ? b : a; }

bool isComparison(ast::BinaryOp op) {
  using ast::BinaryOp;
  return op == BinaryOp::Lt || op == BinaryOp::Le || op == BinaryOp::Gt || op == BinaryOp::Ge ||
         op == BinaryOp::Eq || op == BinaryOp::Ne;
}

ValueKind builtinKind(BuiltinName b) {
  switch (b) {
    case BuiltinName::Q: return ValueKind::QueryVec;
    case BuiltinName::K: return ValueKind::KeyVec;
    case BuiltinName::I: return ValueKind::Row;
    case BuiltinName::J: return ValueKind::Score;
    case BuiltinName::N: return ValueKind::Row;
    case BuiltinName::L: return ValueKind::Constant;
    case BuiltinName::D: return ValueKind::Constant;
  }
  return ValueKind::Constant;
}

TExprPtr makeNode(TExpr::Op op, ValueKind kind, ValueType type, SourceLoc loc) {
  auto t = std::make_shared<TExpr>();
  t->op = op;
  t->kind = kind;
  t->type = type;
  t->loc = loc;
  return t;
}

// ---- constant folding (param defaults, window widths) ------------------------------------

/// The value of a constant expression; nullopt when it depends on anything not known at
/// check time (L, d, lets, ...). Memoised on nodes: inlined expressions are DAGs.
class ConstantFolder {
 public:
  std::optional<double> fold(const TExpr& e) {
    auto it = memo_.find(&e);
    if (it != memo_.end()) return it->second;
    std::optional<double> v = compute(e);
    memo_.emplace(&e, v);
    return v;
  }

 private:
  std::unordered_map<const TExpr*, std::optional<double>> memo_;

  std::optional<double> compute(const TExpr& e) {
    using ast::BinaryOp;
    std::vector<double> args;
    for (const auto& o : e.operands) {
      if (!o) return std::nullopt;
      auto v = fold(*o);
      if (!v) return std::nullopt;
      args.push_back(*v);
    }
    switch (e.op) {
      case TExpr::Op::Literal:
      case TExpr::Op::Param: return e.value;
      case TExpr::Op::Builtin:
      case TExpr::Op::Let: return std::nullopt;
      // The one definition of every op's value (ScalarOps.h), shared with the backends.
      case TExpr::Op::Unary:
        if (e.unaryOp == ast::UnaryOp::Plus) return args[0];
        return ir::applyScalar(ir::elementwiseOp(e.unaryOp), args.data());
      case TExpr::Op::Binary: return ir::applyScalar(ir::elementwiseOp(e.binaryOp), args.data());
      case TExpr::Op::Call: {
        auto op = ir::elementwiseOp(e.fn);  // vectors and row operations have no constant value
        if (!op) return std::nullopt;
        return ir::applyScalar(*op, args.data());
      }
      case TExpr::Op::Conditional: return ir::applyScalar(ir::Op::Select, args.data());
    }
    return std::nullopt;
  }
};

// ---- printing ------------------------------------------------------------------------------

// Binding strength, loosest first; a primary (literal, name, call) binds tightest.
constexpr int kPrecConditional = 1, kPrecUnary = 8, kPrecPow = 9, kPrecPrimary = 10;

int precedence(ast::BinaryOp op) {
  using ast::BinaryOp;
  switch (op) {
    case BinaryOp::Or: return 2;
    case BinaryOp::And: return 3;
    case BinaryOp::Eq:
    case BinaryOp::Ne: return 4;
    case BinaryOp::Lt:
    case BinaryOp::Le:
    case BinaryOp::Gt:
    case BinaryOp::Ge: return 5;
    case BinaryOp::Add:
    case BinaryOp::Sub: return 6;
    case BinaryOp::Mul:
    case BinaryOp::Div: return 7;
    case BinaryOp::Pow: return kPrecPow;
  }
  return kPrecPrimary;
}

int precedence(const TExpr& e) {
  switch (e.op) {
    case TExpr::Op::Literal: return e.type == ValueType::Number && e.value < 0 ? kPrecUnary : kPrecPrimary;
    case TExpr::Op::Unary: return kPrecUnary;
    case TExpr::Op::Binary: return precedence(e.binaryOp);
    case TExpr::Op::Conditional: return kPrecConditional;
    default: return kPrecPrimary;
  }
}

/// Names given to shared subexpressions when printing a large DAG ("%1", ...).
using SharedNames = std::map<const TExpr*, std::string>;

class Printer {
 public:
  /// `names`: subexpressions printed as their name (never `root`, printed in full).
  explicit Printer(const CheckedAttention& attention, const SharedNames* names = nullptr,
                   const TExpr* root = nullptr)
      : attention_(attention), names_(names), root_(root) {}

  std::string print(const TExpr& e) {
    emit(e);
    if (truncated_) out_ += "...";
    return out_;
  }

 private:
  const CheckedAttention& attention_;
  const SharedNames* names_;
  const TExpr* root_;
  std::string out_;
  bool truncated_ = false;

  const std::string* nameOf(const TExpr& e) const {
    if (!names_ || &e == root_) return nullptr;
    auto it = names_->find(&e);
    return it == names_->end() ? nullptr : &it->second;
  }

  void text(const std::string& s) {
    if (truncated_) return;
    if (out_.size() + s.size() > kMaxPrintedChars) {
      truncated_ = true;
      return;
    }
    out_ += s;
  }

  void operand(const TExprPtr& e, bool parens) {
    if (parens) text("(");
    if (e) {
      emit(*e);
    } else {
      text("<error>");
    }
    if (parens) text(")");
  }

  void emit(const TExpr& e) {
    if (truncated_) return;
    if (const std::string* name = nameOf(e)) {
      text(*name);
      return;
    }
    auto prec = [this](const TExprPtr& p) { return !p || nameOf(*p) ? kPrecPrimary : precedence(*p); };
    switch (e.op) {
      case TExpr::Op::Literal:
        text(e.type == ValueType::Bool ? (e.value != 0 ? "true" : "false") : formatNumber(e.value));
        return;
      case TExpr::Op::Builtin: text(builtinNameSpelling(e.builtin)); return;
      case TExpr::Op::Param:
        if (e.index >= 0 && static_cast<size_t>(e.index) < attention_.params.size()) {
          text(attention_.params[e.index].name);
        } else {
          text(formatNumber(e.value));
        }
        return;
      case TExpr::Op::Let:
        if (e.index >= 0 && static_cast<size_t>(e.index) < attention_.lets.size()) {
          text(attention_.lets[e.index].name);
        } else {
          text("<let " + std::to_string(e.index) + ">");
        }
        return;
      case TExpr::Op::Unary: {
        ATTN_INTERNAL_ASSERT(e.operands.size() == 1, "a unary node has one operand");
        text(ast::spelling(e.unaryOp));
        // Nested prefix operators get parentheses: "-(-x)" rather than "--x".
        operand(e.operands[0], prec(e.operands[0]) <= kPrecUnary);
        return;
      }
      case TExpr::Op::Binary: {
        ATTN_INTERNAL_ASSERT(e.operands.size() == 2, "a binary node has two operands");
        int p = precedence(e.binaryOp);
        bool rightAssoc = e.binaryOp == ast::BinaryOp::Pow;
        int l = prec(e.operands[0]), r = prec(e.operands[1]);
        operand(e.operands[0], rightAssoc ? l <= p : l < p);
        text(std::string(" ") + ast::spelling(e.binaryOp) + " ");
        operand(e.operands[1], rightAssoc ? r < p : r <= p);
        return;
      }
      case TExpr::Op::Call: {
        text(info(e.fn).name);
        text("(");
        for (size_t a = 0; a < e.operands.size(); ++a) {
          if (a > 0) text(", ");
          operand(e.operands[a], false);
        }
        text(")");
        return;
      }
      case TExpr::Op::Conditional: {
        ATTN_INTERNAL_ASSERT(e.operands.size() == 3, "a conditional node has three operands");
        operand(e.operands[0], prec(e.operands[0]) <= kPrecConditional);
        text(" ? ");
        operand(e.operands[1], false);
        text(" : ");
        operand(e.operands[2], false);
        return;
      }
    }
  }
};

// ---- the checker ---------------------------------------------------------------------------

/// Where an expression stands; it decides which names it may use.
enum class Place { Let, Out, Mask, Window, ParamDefault };

struct FnInfo {
  const ast::FnDef* def = nullptr;
  bool broken = false;  ///< an error in its definition: calls to it are poisoned
  std::vector<std::pair<int, SourceLoc>> calls;  ///< the file's fns its body calls
};

/// A fn body being checked at a call site: its parameters are bound to the arguments.
struct InlineFrame {
  int fn;
  const std::vector<TExprPtr>* args;
  SourceLoc callLoc;
  const InlineFrame* parent;
};

/// A param or let of the attention being checked (its first definition).
struct Symbol {
  bool isParam = false;
  int slot = -1;        ///< index into CheckedAttention::params or ::lets
  size_t stmt = 0;      ///< the statement that defines it
  SourceLoc loc;
};

class Checker {
 public:
  Checker(const ast::Module& module, DiagnosticEngine& diags) : module_(module), file_(module.file), diags_(diags) {}

  /// Step 1 of the file comment: fn names, bodies, recursion.
  void checkFns();

  /// Reports attentions that reuse an earlier attention's name (all of them, or only those
  /// called `only` when it is not null).
  void checkAttentionNames(const std::string* only);

  /// Checks one attention, with the --set `overrides` when not null; "never used" warnings
  /// when `warnUnused`. Null when any error was met (here or in a fn it calls).
  std::optional<CheckedAttention> checkAttention(const ast::AttentionDef& def,
                                                 const std::vector<ParamOverride>* overrides,
                                                 bool warnUnused);

  size_t errorsSeen() const { return errorsSeen_; }

 private:
  const ast::Module& module_;
  std::shared_ptr<const SourceFile> file_;
  DiagnosticEngine& diags_;
  std::set<std::tuple<uint32_t, uint32_t, Severity, std::string>> reported_;
  size_t errorsSeen_ = 0;  ///< errors met, including repeats that were not reported again
  int suggestionsLeft_ = kMaxSuggestions;

  std::vector<FnInfo> fns_;
  std::unordered_map<std::string, int> fnIndex_;  ///< name -> the fn calls resolve to
  std::vector<std::string> functionNames_;        ///< built-in and file, for suggestions

  // The attention being checked.
  const ast::AttentionDef* def_ = nullptr;
  CheckedAttention result_;
  std::unordered_map<std::string, Symbol> symbols_;
  std::vector<bool> paramPoisoned_, letPoisoned_, paramUsed_, letUsed_;
  size_t currentStmt_ = 0;
  Place place_ = Place::Let;
  const InlineFrame* frame_ = nullptr;
  int depth_ = 0;
  size_t nodes_ = 0;
  bool abortStatement_ = false;  ///< too deep: the rest of this statement is not checked
  bool abortAttention_ = false;  ///< too large: the rest of this attention is not checked
  /// Inlined calls: (fn, place, arguments) -> the result. The value keeps the arguments
  /// alive, so that no other node can take an address used in a key.
  std::map<std::tuple<int, Place, std::vector<const TExpr*>>, std::pair<std::vector<TExprPtr>, TExprPtr>>
      inlined_;
  /// Height, and depth of nested row reductions and normalisations, of every node built
  /// for this attention (every node is entered when it is built, so an address reused
  /// after a node was freed is overwritten before it is read).
  struct NodeDepth {
    int height = 0;
    int reductions = 0;
  };
  std::unordered_map<const TExpr*, NodeDepth> height_;

  // -- reporting --
  void addInlineNotes(std::vector<std::string>& notes) const;
  void error(SourceLoc loc, const std::string& message, std::vector<std::string> notes = {},
             const std::string& hint = "");
  void warning(SourceLoc loc, const std::string& message);
  std::optional<std::string> suggest(const std::string& name, const std::vector<std::string>& candidates);

  // -- names shared by the fn walk and the expression checker --
  bool isFunction(const std::string& name) const {
    return lookupBuiltinFn(name) || fnIndex_.count(name);
  }
  void reportFunctionAsValue(const ast::Expr& e);
  void reportUnknownFunction(const ast::Expr& e);
  bool checkArity(const ast::Expr& e, size_t expected, bool builtin);
  bool checkDefinableName(const std::string& name, SourceLoc loc);

  // -- fns --
  void walkFnBody(int fn);
  void findRecursion();

  // -- attentions --
  void registerSymbols(std::vector<int>& slotOfStmt);
  std::map<int, double> parseOverrides(const std::vector<ParamOverride>& overrides);
  void checkParam(const ast::Stmt& s, int slot, const std::map<int, double>& overrideValues);
  TExprPtr checkMask(const ast::Stmt& s);
  void checkOut(const ast::Stmt& s);
  TExprPtr checkTop(const ast::Expr& e, Place place);

  // -- expressions --
  // The recursion goes check -> checkUnary/Binary/Conditional/Call (-> inlineFn) -> check;
  // everything else is kept out of those frames (noinline), because a chain of inlined
  // fns can make the recursion a few thousand levels deep.
  TExprPtr finish(TExprPtr t);
  [[gnu::noinline]] void reportTooDeep(SourceLoc loc);
  [[gnu::noinline]] void reportTooLarge(SourceLoc loc);
  [[gnu::noinline]] void reportTooManyReductions(SourceLoc loc);
  TExprPtr check(const ast::Expr& e);
  [[gnu::noinline]] TExprPtr checkLiteral(const ast::Expr& e);
  [[gnu::noinline]] TExprPtr checkName(const ast::Expr& e);
  TExprPtr checkBuiltinName(const ast::Expr& e, BuiltinName b);
  TExprPtr checkSymbolUse(const ast::Expr& e, const Symbol& sym);
  TExprPtr checkUnary(const ast::Expr& e);
  TExprPtr checkBinary(const ast::Expr& e);
  TExprPtr checkConditional(const ast::Expr& e);
  [[gnu::noinline]] TExprPtr checkCall(const ast::Expr& e);
  [[gnu::noinline]] TExprPtr combineUnary(const ast::Expr& e, TExprPtr a);
  [[gnu::noinline]] TExprPtr combineBinary(const ast::Expr& e, TExprPtr a, TExprPtr b);
  [[gnu::noinline]] TExprPtr combineConditional(const ast::Expr& e, TExprPtr c, TExprPtr a, TExprPtr b);
  [[gnu::noinline]] TExprPtr resolveCall(const ast::Expr& e, std::vector<TExprPtr>& args, bool poisoned,
                                         int& inlineThis);
  TExprPtr applyBuiltin(const ast::Expr& e, const BuiltinFnInfo& fn, std::vector<TExprPtr> args);
  [[gnu::noinline]] TExprPtr inlineFn(const ast::Expr& e, int fn, std::vector<TExprPtr> args);
  bool requireBool(const TExprPtr& t);
  bool placeForbids(const std::string& what, SourceLoc loc);
  std::string placeName() const;
  std::string describeVariable(const std::string& name) const;
  void markUsed(const std::string& name);
  std::string printed(const TExpr& e) const { return toString(result_, e); }
};

// ---- reporting ---------------------------------------------------------------------------

void Checker::addInlineNotes(std::vector<std::string>& notes) const {
  int shown = 0;
  for (const InlineFrame* f = frame_; f; f = f->parent) {
    if (shown == kMaxInlineNotes) {
      notes.push_back("... (called through more fns)");
      break;
    }
    notes.push_back("in fn '" + fns_[f->fn].def->name + "', called at " + at(f->callLoc));
    ++shown;
  }
}

void Checker::error(SourceLoc loc, const std::string& message, std::vector<std::string> notes,
                    const std::string& hint) {
  ++errorsSeen_;
  if (!reported_.emplace(loc.line, loc.col, Severity::Error, message).second) return;
  addInlineNotes(notes);
  Diagnostic& d = diags_.error(file_, loc, message);
  d.notes = std::move(notes);
  d.hint = hint;
}

void Checker::warning(SourceLoc loc, const std::string& message) {
  if (!reported_.emplace(loc.line, loc.col, Severity::Warning, message).second) return;
  diags_.warning(file_, loc, message);
}

std::optional<std::string> Checker::suggest(const std::string& name, const std::vector<std::string>& candidates) {
  if (suggestionsLeft_ <= 0) return std::nullopt;
  --suggestionsLeft_;
  return nearestName(name, candidates);
}

void Checker::reportFunctionAsValue(const ast::Expr& e) {
  error(e.loc, quoted(e.text) + " is a function, not a value", {}, "call it: " + e.text + "(...)");
}

void Checker::reportUnknownFunction(const ast::Expr& e) {
  error(e.loc, "unknown function " + quoted(e.text) + didYouMean(suggest(e.text, functionNames_)));
}

bool Checker::checkArity(const ast::Expr& e, size_t expected, bool builtin) {
  if (e.operands.size() == expected) return true;
  std::string who = builtin ? e.text : "fn " + quoted(e.text);
  error(e.loc, who + " takes " + plural(expected, "argument") + ", got " + std::to_string(e.operands.size()));
  return false;
}

/// A param, let, fn or fn parameter may not take a built-in name or a keyword.
bool Checker::checkDefinableName(const std::string& name, SourceLoc loc) {
  if (lookupBuiltinName(name)) {
    error(loc, quoted(name) + " is a built-in name and cannot be redefined");
    return false;
  }
  if (isKeyword(name)) {
    error(loc, quoted(name) + " is a keyword and cannot be used as a name");
    return false;
  }
  return true;
}

// ---- fns ---------------------------------------------------------------------------------

void Checker::checkFns() {
  for (const auto& d : module_.defs)
    if (const auto* fn = std::get_if<ast::FnDef>(&d)) fns_.push_back(FnInfo{fn, false, {}});

  for (size_t f = 0; f < fns_.size(); ++f) {
    const ast::FnDef& fn = *fns_[f].def;
    if (lookupBuiltinFn(fn.name)) {
      error(fn.nameLoc, quoted(fn.name) + " is a built-in function and cannot be redefined");
      fns_[f].broken = true;
    } else if (isKeyword(fn.name)) {
      error(fn.nameLoc, quoted(fn.name) + " is a keyword and cannot be used as a name");
      fns_[f].broken = true;
    } else if (auto it = fnIndex_.find(fn.name); it != fnIndex_.end()) {
      error(fn.nameLoc, "fn " + quoted(fn.name) + " is already defined",
            {"first definition at " + at(fns_[it->second].def->nameLoc)});
      fns_[f].broken = true;
    } else {
      fnIndex_.emplace(fn.name, static_cast<int>(f));
    }
    std::unordered_map<std::string, size_t> seen;
    for (size_t p = 0; p < fn.params.size(); ++p) {
      SourceLoc loc = p < fn.paramLocs.size() ? fn.paramLocs[p] : fn.nameLoc;
      if (!checkDefinableName(fn.params[p], loc)) {
        fns_[f].broken = true;
      } else if (auto it = seen.find(fn.params[p]); it != seen.end()) {
        SourceLoc first = it->second < fn.paramLocs.size() ? fn.paramLocs[it->second] : fn.nameLoc;
        error(loc, "duplicate parameter " + quoted(fn.params[p]) + " of fn " + quoted(fn.name),
              {"first definition at " + at(first)});
        fns_[f].broken = true;
      } else {
        seen.emplace(fn.params[p], p);
      }
    }
  }

  for (const auto& f : builtinFunctions()) functionNames_.push_back(f.name);
  for (const auto& [name, index] : fnIndex_) functionNames_.push_back(name);
  std::sort(functionNames_.begin() + static_cast<long>(builtinFunctions().size()), functionNames_.end());

  for (size_t f = 0; f < fns_.size(); ++f) walkFnBody(static_cast<int>(f));
  findRecursion();
}

/// Names in a fn body, without kinds (they depend on the arguments of each call). Walks
/// with an explicit stack: bodies are bounded by the parser only in nesting, not in length.
void Checker::walkFnBody(int f) {
  FnInfo& fn = fns_[f];
  if (!fn.def->body) return;
  const size_t errorsBefore = errorsSeen_;
  auto isParam = [&](const std::string& name) {
    return std::find(fn.def->params.begin(), fn.def->params.end(), name) != fn.def->params.end();
  };
  std::vector<const ast::Expr*> stack{fn.def->body.get()};
  while (!stack.empty()) {
    const ast::Expr* e = stack.back();
    stack.pop_back();
    if (!e) continue;
    for (const auto& o : e->operands) stack.push_back(o.get());
    if (e->kind == ast::Expr::Kind::Name) {
      if (isParam(e->text) || lookupBuiltinName(e->text)) continue;
      if (isFunction(e->text)) {
        reportFunctionAsValue(*e);
        continue;
      }
      std::vector<std::string> candidates = fn.def->params;
      for (const char* b : {"q", "k", "i", "j", "n", "L", "d"}) candidates.push_back(b);
      error(e->loc, "unknown name " + quoted(e->text) + didYouMean(suggest(e->text, candidates)), {},
            "a fn body can use its parameters and the built-in names q k i j n L d, nothing else");
    } else if (e->kind == ast::Expr::Kind::Call) {
      if (auto b = lookupBuiltinFn(e->text)) {
        checkArity(*e, static_cast<size_t>(b->arity), true);
      } else if (auto it = fnIndex_.find(e->text); it != fnIndex_.end()) {
        checkArity(*e, fns_[it->second].def->params.size(), false);
        fn.calls.emplace_back(it->second, e->loc);
      } else if (isParam(e->text)) {
        error(e->loc, quoted(e->text) + " is a parameter of fn " + quoted(fn.def->name) + ", not a function");
      } else if (lookupBuiltinName(e->text)) {
        error(e->loc, quoted(e->text) + " is a built-in name, not a function");
      } else {
        reportUnknownFunction(*e);
      }
    }
  }
  if (errorsSeen_ != errorsBefore) fn.broken = true;
}

/// Every cycle in the call graph is an error at the call that closes it, and every fn on
/// a cycle is broken. Tarjan's strongly connected components, iteratively (a file may hold
/// a chain of 100,000 fns): a component of several fns, or one fn calling itself, is
/// recursion.
void Checker::findRecursion() {
  const size_t count = fns_.size();
  constexpr size_t kUnvisited = static_cast<size_t>(-1);
  std::vector<size_t> order(count, kUnvisited), low(count, 0), pathPos(count, kUnvisited);
  std::vector<bool> onStack(count, false);
  std::vector<int> stack;  // Tarjan's stack of visited fns not yet in a component
  size_t nextOrder = 0;
  // The names of path[from..] then path[from] again, long cycles elided in the middle.
  auto cycleText = [&](const std::vector<std::pair<int, size_t>>& path, size_t from) {
    const size_t length = path.size() - from;
    std::string text;
    for (size_t k = from; k < path.size(); ++k) {
      if (length > 8 && k == from + 4) {
        text += "... -> ";
        k = path.size() - 2;
      }
      text += fns_[path[k].first].def->name + " -> ";
    }
    text += fns_[path[from].first].def->name;
    if (length > 8) text += " (" + std::to_string(length) + " fns)";
    return text;
  };
  for (size_t root = 0; root < count; ++root) {
    if (order[root] != kUnvisited) continue;
    std::vector<std::pair<int, size_t>> path;  // (fn, index of its next call to follow)
    auto enter = [&](int f) {
      order[f] = low[f] = nextOrder++;
      pathPos[f] = path.size();
      path.emplace_back(f, 0);
      stack.push_back(f);
      onStack[f] = true;
    };
    enter(static_cast<int>(root));
    while (!path.empty()) {
      const int u = path.back().first;
      size_t& next = path.back().second;
      if (next < fns_[u].calls.size()) {
        auto [v, callLoc] = fns_[u].calls[next++];
        if (order[v] == kUnvisited) {
          enter(v);
        } else if (onStack[v]) {
          low[u] = std::min(low[u], order[v]);
          if (pathPos[v] != kUnvisited) {
            error(callLoc, "fn " + quoted(fns_[v].def->name) + " calls itself: " + cycleText(path, pathPos[v]), {},
                  "a fn is inlined at every use, so it cannot be recursive");
          }
        }
        continue;
      }
      // u is finished: close its component if it is the root of one.
      path.pop_back();
      pathPos[u] = kUnvisited;
      if (!path.empty()) low[path.back().first] = std::min(low[path.back().first], low[u]);
      if (low[u] != order[u]) continue;
      std::vector<int> component;
      int w;
      do {
        w = stack.back();
        stack.pop_back();
        onStack[w] = false;
        component.push_back(w);
      } while (w != u);
      bool selfCall = std::any_of(fns_[u].calls.begin(), fns_[u].calls.end(),
                                  [&](const auto& c) { return c.first == u; });
      if (component.size() > 1 || selfCall)
        for (int f : component) fns_[f].broken = true;
    }
  }
  // A fn that only calls a broken fn is not broken itself: the call is poisoned where it
  // is inlined, and that is enough to fail the attention that uses it.
}

// ---- attentions ----------------------------------------------------------------------------

void Checker::checkAttentionNames(const std::string* only) {
  std::unordered_map<std::string, const ast::AttentionDef*> first;
  for (const auto& d : module_.defs) {
    const auto* a = std::get_if<ast::AttentionDef>(&d);
    if (!a || (only && a->name != *only)) continue;
    auto [it, inserted] = first.emplace(a->name, a);
    if (!inserted)
      error(a->nameLoc, "attention " + quoted(a->name) + " is already defined",
            {"first definition at " + at(it->second->nameLoc)});
  }
}

void Checker::registerSymbols(std::vector<int>& slotOfStmt) {
  const auto& stmts = def_->stmts;
  slotOfStmt.assign(stmts.size(), -1);
  for (size_t s = 0; s < stmts.size(); ++s) {
    const ast::Stmt& st = stmts[s];
    if (st.kind != ast::Stmt::Kind::Param && st.kind != ast::Stmt::Kind::Let) continue;
    if (!checkDefinableName(st.name, st.nameLoc)) continue;
    if (auto it = symbols_.find(st.name); it != symbols_.end()) {
      error(st.nameLoc, quoted(st.name) + " is already defined",
            {"first definition at " + at(it->second.loc)});
      continue;
    }
    Symbol sym;
    sym.isParam = st.kind == ast::Stmt::Kind::Param;
    sym.stmt = s;
    sym.loc = st.nameLoc;
    if (sym.isParam) {
      sym.slot = static_cast<int>(result_.params.size());
      CheckedParam p;
      p.name = st.name;
      p.loc = st.nameLoc;
      result_.params.push_back(p);
    } else {
      sym.slot = static_cast<int>(result_.lets.size());
      CheckedLet l;
      l.name = st.name;
      l.loc = st.nameLoc;
      result_.lets.push_back(l);
    }
    slotOfStmt[s] = sym.slot;
    symbols_.emplace(st.name, sym);
  }
  paramPoisoned_.assign(result_.params.size(), false);
  paramUsed_.assign(result_.params.size(), false);
  letPoisoned_.assign(result_.lets.size(), false);
  letUsed_.assign(result_.lets.size(), false);
}

std::optional<ParamType> paramTypeFromName(const std::string& name) {
  if (name == "int") return ParamType::Int;
  if (name == "float") return ParamType::Float;
  if (name == "bool") return ParamType::Bool;
  return std::nullopt;
}

/// Is `text` a decimal number as the language writes them, with an optional sign: digits
/// with an optional fraction (`15`, `0.5`, `.5`, `2.`) and exponent (`1e-3`, `3E+2`)? No
/// spaces, hex, inf or nan (strtod alone would take all of those).
bool isDecimalNumber(const std::string& text, bool integerOnly) {
  size_t k = 0, n = text.size();
  auto digits = [&] {
    size_t start = k;
    while (k < n && text[k] >= '0' && text[k] <= '9') ++k;
    return k - start;
  };
  if (k < n && (text[k] == '+' || text[k] == '-')) ++k;
  size_t mantissa = digits();
  if (integerOnly) return mantissa > 0 && k == n;
  if (k < n && text[k] == '.') {
    ++k;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (k < n && (text[k] == 'e' || text[k] == 'E')) {
    ++k;
    if (k < n && (text[k] == '+' || text[k] == '-')) ++k;
    if (digits() == 0) return false;
  }
  return k == n;
}

/// Parses a --set value as `type`: int is an optional sign and digits; float a decimal
/// number (isDecimalNumber); bool is true, false, 1 or 0. Whether the value is in range is
/// checked with the param's other rules (checkParamValue).
std::optional<double> parseParamValue(const std::string& text, ParamType type) {
  if (type == ParamType::Bool) {
    if (text == "true" || text == "1") return 1.0;
    if (text == "false" || text == "0") return 0.0;
    return std::nullopt;
  }
  if (!isDecimalNumber(text, type == ParamType::Int)) return std::nullopt;
  return std::strtod(text.c_str(), nullptr);  // 1e400 reads as inf: out of range, said later
}

/// Int params are whole numbers that fit in 32 bits (they count things: powers, widths).
constexpr double kMinIntParam = -2147483648.0, kMaxIntParam = 2147483647.0;

/// Why `value` cannot be a param of `type` (empty when it can): it must be finite, round
/// to a finite float32 (the arithmetic is float32), and an int whole and within 32 bits.
std::string paramValueProblem(double value, ParamType type) {
  if (std::isnan(value)) return "has non-finite value nan";
  if (type == ParamType::Int) {
    if (std::floor(value) != value) return "has non-integer value " + formatNumber(value);
    if (value < kMinIntParam || value > kMaxIntParam)
      return "has value " + formatNumber(value) + ", out of range: an int param is between -2147483648 and 2147483647";
    return "";
  }
  if (std::isinf(value)) return "has non-finite value " + formatNumber(value);
  if (!ir::fitsFloat32(value))
    return "has value " + formatNumber(value) +
           ", out of range: attn computes in float32, whose largest finite value is 3.4028235e38";
  return "";
}

std::map<int, double> Checker::parseOverrides(const std::vector<ParamOverride>& overrides) {
  std::map<int, double> values;
  std::vector<std::string> paramNames;
  for (const auto& p : result_.params) paramNames.push_back(p.name);
  for (const auto& o : overrides) {
    auto it = symbols_.find(o.name);
    if (it == symbols_.end() || !it->second.isParam) {
      std::string message = "unknown param " + quoted(o.name) + " of attention " + quoted(def_->name);
      auto near = nearestName(o.name, paramNames);
      if (near) {
        message += "; did you mean '" + *near + "'?";
      } else if (paramNames.empty()) {
        message += " (it has no params)";
      } else {
        std::string list;
        for (size_t k = 0; k < paramNames.size(); ++k) list += (k ? ", " : "") + paramNames[k];
        message += " (its params: " + list + ")";
      }
      ++errorsSeen_;
      diags_.error(message);
      continue;
    }
    const ast::Stmt& st = def_->stmts[it->second.stmt];
    auto type = paramTypeFromName(st.typeName);
    if (!type) continue;  // the param's own error says why
    auto value = parseParamValue(o.value, *type);
    std::string problem = value ? paramValueProblem(*value, *type) : "";
    if (value && std::isinf(*value))  // digits too many for a double, like 1e400
      problem = "is out of range: attn computes in float32, whose largest finite value is 3.4028235e38";
    if (!value || !problem.empty()) {
      static const char* const expected[] = {"an int", "a float", "a bool"};
      ++errorsSeen_;
      Diagnostic& d = diags_.error(
          "--set " + o.name + "=" + o.value + ": " +
          (value ? paramTypeName(*type) + std::string(" param ") + quoted(o.name) + " " + problem
                 : std::string("expected ") + expected[static_cast<int>(*type)]));
      d.notes.push_back("param " + quoted(o.name) + " is declared at " + file_->path() + ":" +
                        std::to_string(st.nameLoc.line) + " as " + st.typeName);
      if (*type == ParamType::Bool) d.hint = "a bool is true, false, 1 or 0";
      if (*type == ParamType::Int && !value) d.hint = "an int is written with digits only, e.g. 3 or -2";
      if (*type == ParamType::Float && !value) d.hint = "a float is a decimal number, e.g. 0.5, -2 or 1e-3";
      continue;
    }
    values[it->second.slot] = *value;  // the last --set of a name wins
  }
  return values;
}

TExprPtr Checker::checkTop(const ast::Expr& e, Place place) {
  place_ = place;
  frame_ = nullptr;
  depth_ = 0;
  abortStatement_ = false;
  return check(e);
}

void Checker::checkParam(const ast::Stmt& s, int slot, const std::map<int, double>& overrideValues) {
  auto type = paramTypeFromName(s.typeName);
  if (!type) {
    auto near = suggest(s.typeName, {"int", "float", "bool"});
    error(s.typeLoc, "unknown param type " + quoted(s.typeName) + "; expected int, float or bool", {},
          near ? "did you mean '" + *near + "'?" : "");
  }
  TExprPtr value = s.expr ? checkTop(*s.expr, Place::ParamDefault) : nullptr;
  if (slot < 0) return;
  CheckedParam& p = result_.params[slot];
  if (!type || !value) {
    paramPoisoned_[slot] = true;
    return;
  }
  p.type = *type;
  ATTN_INTERNAL_ASSERT(value->kind == ValueKind::Constant, "a param default that passed the checks is constant");
  auto folded = ConstantFolder().fold(*value);
  ATTN_INTERNAL_ASSERT(folded.has_value(), "a constant param default folds to a value");
  const size_t errorsBefore = errorsSeen_;
  const std::string what = paramTypeName(*type) + std::string(" param ") + quoted(s.name);
  if (*type == ParamType::Bool && value->type != ValueType::Bool) {
    error(s.expr->loc, what + " needs a boolean default, got a number", {}, "write true or false");
  } else if (std::string problem = paramValueProblem(*folded, *type); !problem.empty()) {
    error(s.expr->loc, what + " " + problem);
  }
  if (errorsSeen_ != errorsBefore) {
    paramPoisoned_[slot] = true;
    return;
  }
  p.value = *folded;
  if (auto it = overrideValues.find(slot); it != overrideValues.end()) {
    p.value = it->second;
    p.overridden = true;
  }
}

/// The width of `mask window(W)` or the predicate of `mask EXPR`; null for causal and
/// full, and when there was an error.
TExprPtr Checker::checkMask(const ast::Stmt& s) {
  if (!s.expr) return nullptr;
  if (s.maskKind == ast::MaskKind::Window) {
    TExprPtr e = checkTop(*s.expr, Place::Window);
    if (!e) return nullptr;
    if (e->kind != ValueKind::Constant) {
      error(e->loc, "window width must be a constant, got " + article(e->kind));
      return nullptr;
    }
    if (e->type == ValueType::Bool) {
      error(e->loc, "window width must be a number, got a boolean");
      return nullptr;
    }
    // Known now unless it depends on L or d.
    auto w = ConstantFolder().fold(*e);
    if (w && !(std::isfinite(*w) && *w >= 1 && std::floor(*w) == *w)) {
      error(e->loc, "window width must be a whole number of at least 1, got " + formatNumber(*w));
      return nullptr;
    }
    return e;
  }
  if (s.maskKind == ast::MaskKind::Expr) {
    TExprPtr e = checkTop(*s.expr, Place::Mask);
    if (!e || !requireBool(e)) return nullptr;
    return e;
  }
  return nullptr;
}

void Checker::checkOut(const ast::Stmt& s) {
  TExprPtr e = s.expr ? checkTop(*s.expr, Place::Out) : nullptr;
  if (!e) return;
  if (e->kind != ValueKind::Score) {
    error(e->loc, "out needs a score (a value that varies with j), got " + article(e->kind));
    return;
  }
  if (e->type == ValueType::Bool) {
    error(e->loc, "out needs a number, got a boolean", {}, "weights are numbers; for 0/1 weights write c ? 1 : 0");
    return;
  }
  result_.out = e;
}

std::optional<CheckedAttention> Checker::checkAttention(const ast::AttentionDef& def,
                                                        const std::vector<ParamOverride>* overrides,
                                                        bool warnUnused) {
  def_ = &def;
  result_ = CheckedAttention{};
  result_.name = def.name;
  result_.file = file_;
  result_.loc = def.nameLoc;
  symbols_.clear();
  inlined_.clear();
  height_.clear();
  nodes_ = 0;
  abortAttention_ = false;
  const size_t errorsBefore = errorsSeen_;

  std::vector<int> slotOfStmt;
  registerSymbols(slotOfStmt);
  std::map<int, double> overrideValues;
  if (overrides) overrideValues = parseOverrides(*overrides);

  const ast::Stmt* firstMask = nullptr;
  const ast::Stmt* firstOut = nullptr;
  size_t firstOutStmt = def.stmts.size();
  for (size_t si = 0; si < def.stmts.size(); ++si) {
    const ast::Stmt& s = def.stmts[si];
    currentStmt_ = si;
    if (firstOut) {
      std::vector<std::string> notes;
      if (s.kind == ast::Stmt::Kind::Out) notes.push_back("there is one 'out'; the first is at " + at(firstOut->loc));
      error(s.loc, "statement after 'out'", notes, "'out' must be the last statement");
    }
    switch (s.kind) {
      case ast::Stmt::Kind::Param: checkParam(s, slotOfStmt[si], overrideValues); break;
      case ast::Stmt::Kind::Let: {
        TExprPtr value = s.expr ? checkTop(*s.expr, Place::Let) : nullptr;
        int slot = slotOfStmt[si];
        if (slot >= 0) {
          result_.lets[slot].value = value;
          if (!value) letPoisoned_[slot] = true;
        }
        break;
      }
      case ast::Stmt::Kind::Mask: {
        if (firstMask) {
          error(s.loc, "more than one 'mask' statement", {"the first 'mask' is at " + at(firstMask->loc)});
          checkMask(s);  // for its own errors; the first mask stands
        } else {
          firstMask = &s;
          result_.mask = s.maskKind;
          result_.perDocument = s.perDocument;
          result_.maskExpr = checkMask(s);
        }
        break;
      }
      case ast::Stmt::Kind::Out: {
        if (firstOut) {
          TExprPtr ignored = s.expr ? checkTop(*s.expr, Place::Out) : nullptr;
          (void)ignored;
        } else {
          firstOut = &s;
          firstOutStmt = si;
          checkOut(s);
        }
        break;
      }
    }
  }
  if (!firstOut) error(def.nameLoc, "attention " + quoted(def.name) + " has no 'out' statement");

  if (warnUnused && !abortAttention_) {
    for (const auto& [name, sym] : symbols_) {
      if (sym.stmt > firstOutStmt) continue;  // "statement after 'out'" says it all
      bool used = sym.isParam ? paramUsed_[sym.slot] : letUsed_[sym.slot];
      bool poisoned = sym.isParam ? paramPoisoned_[sym.slot] : letPoisoned_[sym.slot];
      if (!used && !poisoned) warning(sym.loc, quoted(name) + " is never used");
    }
  }
  def_ = nullptr;
  inlined_.clear();
  height_.clear();
  if (errorsSeen_ != errorsBefore) return std::nullopt;
  ATTN_INTERNAL_ASSERT(result_.out, "an attention without errors has an out value");
  return std::move(result_);
}

// ---- expressions -------------------------------------------------------------------------

std::string Checker::placeName() const {
  switch (place_) {
    case Place::Mask:
    case Place::Window: return "a mask";
    case Place::ParamDefault: return "a param default";
    default: return "";
  }
}

/// Reports `what` (a name or a row function) when the current place may not use it.
bool Checker::placeForbids(const std::string& what, SourceLoc loc) {
  std::string hint;
  if (place_ == Place::ParamDefault) {
    hint = "a param default may use numbers, earlier params and functions";
  } else if (place_ == Place::Mask || place_ == Place::Window) {
    hint = "a mask may use i, j, L, d, params and functions";
  } else {
    return false;
  }
  error(loc, placeName() + " may not use " + what, {}, hint);
  return true;
}

std::string Checker::describeVariable(const std::string& name) const {
  if (frame_) {
    const auto& params = fns_[frame_->fn].def->params;
    if (std::find(params.begin(), params.end(), name) != params.end())
      return "a parameter of fn " + quoted(fns_[frame_->fn].def->name);
  }
  if (lookupBuiltinName(name)) return "a built-in name";
  if (!frame_) {
    auto it = symbols_.find(name);
    if (it != symbols_.end()) return it->second.isParam ? "a param" : "a let";
  }
  return "";
}

/// Records the height of a node just built; null (and an error) when it is too tall.
TExprPtr Checker::finish(TExprPtr t) {
  NodeDepth depth;
  auto depthOf = [&](const TExpr* o) {
    auto it = height_.find(o);
    ATTN_INTERNAL_ASSERT(it != height_.end(), "every operand was built by this checker");
    return it->second;
  };
  for (const auto& o : t->operands) {
    NodeDepth d = depthOf(o.get());
    depth.height = std::max(depth.height, d.height);
    depth.reductions = std::max(depth.reductions, d.reductions);
  }
  if (t->op == TExpr::Op::Let) depth.reductions = depthOf(result_.lets.at(static_cast<size_t>(t->index)).value.get()).reductions;
  if (t->op == TExpr::Op::Call &&
      (info(t->fn).cls == FnClass::RowReduction || info(t->fn).cls == FnClass::Normalisation))
    ++depth.reductions;
  if (depth.height + 1 > kMaxCheckDepth) {
    reportTooDeep(t->loc);
    return nullptr;
  }
  if (depth.reductions > kMaxNestedReductions) {
    reportTooManyReductions(t->loc);
    return nullptr;
  }
  ++depth.height;
  height_[t.get()] = depth;
  return t;
}

void Checker::reportTooManyReductions(SourceLoc loc) {
  error(loc, "more than " + std::to_string(kMaxNestedReductions) +
                 " row reductions and normalisations nested in one another once fns are inlined "
                 "(each needs its own pass over the keys)",
        {}, "reduce fewer times, or make the fns nest less");
  abortStatement_ = true;
}

void Checker::reportTooDeep(SourceLoc loc) {
  error(loc, "expression nested too deeply (more than " + std::to_string(kMaxCheckDepth) +
                 " levels once fns are inlined)",
        {}, "split it into several `let` statements, or make the fns nest less");
  abortStatement_ = true;
}

TExprPtr Checker::check(const ast::Expr& e) {
  if (abortStatement_ || abortAttention_) return nullptr;
  if (++nodes_ > kMaxCheckedNodes) {
    reportTooLarge(e.loc);
    return nullptr;
  }
  if (depth_ >= kMaxCheckDepth) {
    reportTooDeep(e.loc);
    return nullptr;
  }
  ++depth_;
  TExprPtr result;
  switch (e.kind) {
    case ast::Expr::Kind::Number:
    case ast::Expr::Kind::Bool: result = checkLiteral(e); break;
    case ast::Expr::Kind::Name: result = checkName(e); break;
    case ast::Expr::Kind::Unary: result = checkUnary(e); break;
    case ast::Expr::Kind::Binary: result = checkBinary(e); break;
    case ast::Expr::Kind::Call: result = checkCall(e); break;
    case ast::Expr::Kind::Conditional: result = checkConditional(e); break;
  }
  --depth_;
  return result;
}

TExprPtr Checker::checkLiteral(const ast::Expr& e) {
  bool isBool = e.kind == ast::Expr::Kind::Bool;
  if (!isBool && !ir::fitsFloat32(e.number)) {
    // 1e400 reads as inf, 1e39 is finite but not in float32: either would be a silent inf.
    error(e.loc, "number " + e.text + " is out of range: attn computes in float32, whose largest finite value is "
                                      "3.4028235e38");
    return nullptr;
  }
  TExprPtr t = makeNode(TExpr::Op::Literal, ValueKind::Constant, isBool ? ValueType::Bool : ValueType::Number, e.loc);
  const_cast<TExpr*>(t.get())->value = isBool ? (e.boolean ? 1 : 0) : e.number;
  return finish(t);
}

void Checker::reportTooLarge(SourceLoc loc) {
  error(loc, "attention " + quoted(def_->name) + " is too large after inlining fns (more than " +
                 std::to_string(kMaxCheckedNodes) + " operations)");
  abortAttention_ = true;
}

TExprPtr Checker::checkName(const ast::Expr& e) {
  const std::string& name = e.text;
  if (frame_) {
    const auto& params = fns_[frame_->fn].def->params;
    for (size_t p = 0; p < params.size(); ++p)
      if (params[p] == name) return (*frame_->args)[p];  // null: a poisoned argument
  }
  if (auto b = lookupBuiltinName(name)) return checkBuiltinName(e, *b);
  if (!frame_) {
    auto it = symbols_.find(name);
    if (it != symbols_.end()) return checkSymbolUse(e, it->second);
  }
  if (isFunction(name)) {
    reportFunctionAsValue(e);
    return nullptr;
  }
  std::vector<std::string> candidates = {"q", "k", "i", "j", "n", "L", "d"};
  if (frame_) {
    for (const auto& p : fns_[frame_->fn].def->params) candidates.push_back(p);
  } else {
    for (const auto& [n, sym] : symbols_)
      if (sym.stmt < currentStmt_) candidates.push_back(n);
    std::sort(candidates.begin() + 7, candidates.end());
  }
  auto near = suggest(name, candidates);
  error(e.loc, "unknown name " + quoted(name) + didYouMean(near));
  // The misspelt let or param is used after all: no "never used" warning for it too.
  if (!frame_ && near) markUsed(*near);
  return nullptr;
}

void Checker::markUsed(const std::string& name) {
  auto it = symbols_.find(name);
  if (it == symbols_.end()) return;
  if (it->second.isParam) {
    paramUsed_[it->second.slot] = true;
  } else {
    letUsed_[it->second.slot] = true;
  }
}

TExprPtr Checker::checkBuiltinName(const ast::Expr& e, BuiltinName b) {
  bool forbidden = place_ == Place::ParamDefault ||
                   ((place_ == Place::Mask || place_ == Place::Window) &&
                    (b == BuiltinName::N || b == BuiltinName::Q || b == BuiltinName::K));
  if (forbidden) {
    placeForbids(builtinNameSpelling(b), e.loc);
    return nullptr;
  }
  TExprPtr t = makeNode(TExpr::Op::Builtin, builtinKind(b), ValueType::Number, e.loc);
  std::const_pointer_cast<TExpr>(t)->builtin = b;
  return finish(t);
}

TExprPtr Checker::checkSymbolUse(const ast::Expr& e, const Symbol& sym) {
  if (sym.isParam) {
    paramUsed_[sym.slot] = true;
  } else {
    letUsed_[sym.slot] = true;
  }
  if (!sym.isParam && (place_ == Place::Mask || place_ == Place::Window || place_ == Place::ParamDefault)) {
    placeForbids("let " + quoted(e.text), e.loc);
    return nullptr;
  }
  if (sym.stmt >= currentStmt_) {
    error(e.loc, quoted(e.text) + " is used before its definition",
          {quoted(e.text) + " is defined at " + at(sym.loc)});
    return nullptr;
  }
  if (sym.isParam) {
    if (paramPoisoned_[sym.slot]) return nullptr;
    const CheckedParam& p = result_.params[sym.slot];
    TExprPtr t = makeNode(TExpr::Op::Param, ValueKind::Constant,
                          p.type == ParamType::Bool ? ValueType::Bool : ValueType::Number, e.loc);
    auto* m = const_cast<TExpr*>(t.get());
    m->index = sym.slot;
    m->value = p.value;
    return finish(t);
  }
  if (letPoisoned_[sym.slot]) return nullptr;
  const TExprPtr& value = result_.lets[sym.slot].value;
  ATTN_INTERNAL_ASSERT(value, "a let that is not poisoned has a value");
  TExprPtr t = makeNode(TExpr::Op::Let, value->kind, value->type, e.loc);
  const_cast<TExpr*>(t.get())->index = sym.slot;
  return finish(t);
}

bool Checker::requireBool(const TExprPtr& t) {
  if (t->type == ValueType::Bool && !isVector(t->kind)) return true;
  if (isVector(t->kind)) {
    error(t->loc, "expected a boolean condition, got " + article(t->kind));
    return false;
  }
  auto zero = makeNode(TExpr::Op::Literal, ValueKind::Constant, ValueType::Number, t->loc);
  auto compare = makeNode(TExpr::Op::Binary, t->kind, ValueType::Bool, t->loc);
  auto* c = const_cast<TExpr*>(compare.get());
  c->binaryOp = ast::BinaryOp::Ne;
  c->operands = {t, zero};
  std::string example = printed(*compare);
  if (example.size() > 40) example = "x != 0";
  error(t->loc, "expected a boolean condition, got a number", {}, "compare it, e.g. " + example);
  return false;
}

TExprPtr Checker::checkUnary(const ast::Expr& e) {
  ATTN_INTERNAL_ASSERT(e.operands.size() == 1 && e.operands[0], "a unary expression has one operand");
  TExprPtr a = check(*e.operands[0]);
  if (!a) return nullptr;
  return combineUnary(e, std::move(a));
}

TExprPtr Checker::combineUnary(const ast::Expr& e, TExprPtr a) {
  ValueType type = ValueType::Number;
  if (e.unaryOp == ast::UnaryOp::Not) {
    if (!requireBool(a)) return nullptr;
    type = ValueType::Bool;
  } else if (isVector(a->kind)) {
    error(e.loc, std::string("unary '") + ast::spelling(e.unaryOp) + "' needs a scalar, got " + kindName(a->kind),
          {}, "scale a vector with '*', e.g. q * -1");
    return nullptr;
  }
  TExprPtr t = makeNode(TExpr::Op::Unary, a->kind, type, e.loc);
  auto* m = const_cast<TExpr*>(t.get());
  m->unaryOp = e.unaryOp;
  m->operands = {std::move(a)};
  return finish(t);
}

TExprPtr Checker::checkBinary(const ast::Expr& e) {
  using ast::BinaryOp;
  ATTN_INTERNAL_ASSERT(e.operands.size() == 2 && e.operands[0] && e.operands[1],
                       "a binary expression has two operands");
  TExprPtr a = check(*e.operands[0]);
  TExprPtr b = check(*e.operands[1]);
  if (!a || !b) return nullptr;
  return combineBinary(e, std::move(a), std::move(b));
}

TExprPtr Checker::combineBinary(const ast::Expr& e, TExprPtr a, TExprPtr b) {
  using ast::BinaryOp;
  const BinaryOp op = e.binaryOp;
  const std::string spelled = quoted(ast::spelling(op));
  ValueKind kind;
  ValueType type = ValueType::Number;
  if (op == BinaryOp::And || op == BinaryOp::Or) {
    bool okA = requireBool(a), okB = requireBool(b);
    if (!okA || !okB) return nullptr;
    kind = maxKind(a->kind, b->kind);
    type = ValueType::Bool;
  } else if (isVector(a->kind) || isVector(b->kind)) {
    // Only scaling keeps a vector: x * c, c * x, x / c.
    const bool scaling = (op == BinaryOp::Mul && isVector(a->kind) != isVector(b->kind)) ||
                         (op == BinaryOp::Div && isVector(a->kind) && !isVector(b->kind));
    if (!scaling) {
      std::string hint;
      if (op == BinaryOp::Mul) hint = "for the dot product of a query vector and a key vector, use dot(q, k)";
      error(e.loc, spelled + " needs scalars, got " + joinKinds({a, b}), {}, hint);
      return nullptr;
    }
    const TExprPtr& vec = isVector(a->kind) ? a : b;
    const TExprPtr& factor = isVector(a->kind) ? b : a;
    const ValueKind limit = vec->kind == ValueKind::QueryVec ? ValueKind::Row : ValueKind::Constant;
    if (factor->kind > limit) {
      std::string allowed = vec->kind == ValueKind::QueryVec ? "a constant or a row scalar" : "a constant";
      error(e.loc, article(vec->kind) + " can be scaled only by " + allowed + ", got " + kindName(a->kind) + " " +
                       ast::spelling(op) + " " + kindName(b->kind));
      return nullptr;
    }
    kind = vec->kind;
  } else {
    kind = maxKind(a->kind, b->kind);
    if (isComparison(op)) type = ValueType::Bool;
  }
  TExprPtr t = makeNode(TExpr::Op::Binary, kind, type, e.loc);
  auto* m = const_cast<TExpr*>(t.get());
  m->binaryOp = op;
  m->operands = {a, b};
  return finish(t);
}

TExprPtr Checker::checkConditional(const ast::Expr& e) {
  ATTN_INTERNAL_ASSERT(e.operands.size() == 3 && e.operands[0] && e.operands[1] && e.operands[2],
                       "a conditional has three operands");
  TExprPtr c = check(*e.operands[0]);
  TExprPtr a = check(*e.operands[1]);
  TExprPtr b = check(*e.operands[2]);
  return combineConditional(e, std::move(c), std::move(a), std::move(b));
}

TExprPtr Checker::combineConditional(const ast::Expr& e, TExprPtr c, TExprPtr a, TExprPtr b) {
  bool ok = c && requireBool(c);
  if (!a || !b) return nullptr;
  if (isVector(a->kind) || isVector(b->kind)) {
    error(e.loc, "'?:' needs scalar branches, got " + joinKinds({a, b}));
    return nullptr;
  }
  if (!ok) return nullptr;
  ValueType type = a->type == ValueType::Bool && b->type == ValueType::Bool ? ValueType::Bool : ValueType::Number;
  TExprPtr t = makeNode(TExpr::Op::Conditional, maxKind(c->kind, maxKind(a->kind, b->kind)), type, e.loc);
  const_cast<TExpr*>(t.get())->operands = {c, a, b};
  return finish(t);
}

TExprPtr Checker::checkCall(const ast::Expr& e) {
  std::vector<TExprPtr> args;
  args.reserve(e.operands.size());
  bool poisoned = false;
  for (const auto& a : e.operands) {
    TExprPtr t = a ? check(*a) : nullptr;
    if (!t) poisoned = true;
    args.push_back(std::move(t));
  }
  int fn = -1;
  TExprPtr result = resolveCall(e, args, poisoned, fn);
  return fn >= 0 ? inlineFn(e, fn, std::move(args)) : result;
}

/// A call to a built-in function, or an error; sets `inlineThis` instead when the call
/// is to a fn of the file that should be inlined (kept apart from the recursion of
/// checkCall and inlineFn so that their stack frames stay small).
TExprPtr Checker::resolveCall(const ast::Expr& e, std::vector<TExprPtr>& args, bool poisoned, int& inlineThis) {
  if (auto b = lookupBuiltinFn(e.text)) {
    if (!checkArity(e, static_cast<size_t>(b->arity), true) || poisoned) return nullptr;
    return applyBuiltin(e, *b, std::move(args));
  }
  if (auto it = fnIndex_.find(e.text); it != fnIndex_.end()) {
    if (checkArity(e, fns_[it->second].def->params.size(), false) && !poisoned) inlineThis = it->second;
    return nullptr;
  }
  std::string variable = describeVariable(e.text);
  if (!frame_) markUsed(e.text);  // a let called by mistake is not also "never used"
  if (!variable.empty()) {
    error(e.loc, quoted(e.text) + " is " + variable + ", not a function");
  } else {
    reportUnknownFunction(e);
  }
  return nullptr;
}

TExprPtr Checker::applyBuiltin(const ast::Expr& e, const BuiltinFnInfo& fn, std::vector<TExprPtr> args) {
  const std::string name = fn.name;
  ValueKind kind = ValueKind::Constant;
  switch (fn.cls) {
    case FnClass::Elementwise:
    case FnClass::RowReduction:
    case FnClass::Normalisation: {
      if (fn.cls != FnClass::Elementwise && placeForbids(name, e.loc)) return nullptr;
      bool anyVector = false;
      for (const auto& a : args) {
        anyVector = anyVector || isVector(a->kind);
        kind = maxKind(kind, a->kind);
      }
      if (anyVector) {
        error(e.loc, name + (args.size() == 1 ? " needs a scalar" : " needs scalars") + ", got " + joinKinds(args));
        return nullptr;
      }
      if (fn.cls == FnClass::RowReduction) kind = ValueKind::Row;
      if (fn.cls == FnClass::Normalisation) kind = maxKind(kind, ValueKind::Row);
      break;
    }
    case FnClass::VectorNorm:
      if (!isVector(args[0]->kind)) {
        error(e.loc, name + " needs a vector, got " + kindName(args[0]->kind));
        return nullptr;
      }
      kind = args[0]->kind;
      break;
    case FnClass::Dot: {
      const bool ok = (args[0]->kind == ValueKind::QueryVec && args[1]->kind == ValueKind::KeyVec) ||
                      (args[0]->kind == ValueKind::KeyVec && args[1]->kind == ValueKind::QueryVec);
      if (!ok) {
        error(e.loc, name + " needs a query vector and a key vector, got " + joinKinds(args));
        return nullptr;
      }
      kind = ValueKind::Score;
      break;
    }
  }
  TExprPtr t = makeNode(TExpr::Op::Call, kind, ValueType::Number, e.loc);
  auto* m = const_cast<TExpr*>(t.get());
  m->fn = fn.fn;
  m->operands = std::move(args);
  return finish(t);
}

TExprPtr Checker::inlineFn(const ast::Expr& e, int fn, std::vector<TExprPtr> args) {
  if (fns_[fn].broken || !fns_[fn].def->body) {
    ++errorsSeen_;  // its errors were reported with the fn
    return nullptr;
  }
  std::vector<const TExpr*> key;
  for (const auto& a : args) key.push_back(a.get());
  auto memoKey = std::make_tuple(fn, place_, std::move(key));
  if (auto it = inlined_.find(memoKey); it != inlined_.end()) {
    if (!it->second.second) ++errorsSeen_;
    return it->second.second;
  }
  InlineFrame frame{fn, &args, e.loc, frame_};
  const InlineFrame* saved = frame_;
  frame_ = &frame;
  TExprPtr result = check(*fns_[fn].def->body);
  frame_ = saved;
  if (!abortStatement_ && !abortAttention_) inlined_.emplace(std::move(memoKey), std::make_pair(std::move(args), result));
  return result;
}

}  // namespace

// ---- the API -------------------------------------------------------------------------------

std::vector<CheckedAttention> checkModule(const ast::Module& module, DiagnosticEngine& diags) {
  Checker checker(module, diags);
  checker.checkFns();
  checker.checkAttentionNames(nullptr);
  std::vector<CheckedAttention> out;
  std::unordered_map<std::string, bool> seen;
  for (const auto& d : module.defs) {
    const auto* a = std::get_if<ast::AttentionDef>(&d);
    if (!a) continue;
    auto checked = checker.checkAttention(*a, nullptr, true);
    // A second attention of the same name is an error (reported above), never returned.
    if (checked && seen.emplace(a->name, true).second) out.push_back(std::move(*checked));
  }
  return out;
}

std::optional<CheckedAttention> checkAttention(const ast::Module& module, const std::string& name,
                                               const std::vector<ParamOverride>& overrides,
                                               DiagnosticEngine& diags) {
  Checker checker(module, diags);
  checker.checkFns();
  checker.checkAttentionNames(&name);
  const ast::AttentionDef* target = nullptr;
  std::vector<std::string> names;
  for (const auto& d : module.defs) {
    if (const auto* a = std::get_if<ast::AttentionDef>(&d)) {
      names.push_back(a->name);
      if (!target && a->name == name) target = a;
    }
  }
  if (!target) {
    std::string path = module.file ? module.file->path() : std::string("<input>");
    std::string message = "no attention " + quoted(name) + " in " + path;
    if (auto near = nearestName(name, names)) message += "; did you mean '" + *near + "'?";
    diags.error(message);
    return std::nullopt;
  }
  // Warnings are checkModule's: the pipeline runs it first on the same file.
  auto checked = checker.checkAttention(*target, &overrides, false);
  if (checker.errorsSeen() > 0) return std::nullopt;
  return checked;
}

std::string toString(const CheckedAttention& attention, const TExpr& expr) {
  return Printer(attention).print(expr);
}

namespace {

/// The subexpressions of `root` to print once each, operands before users: when its full
/// text would pass kInlineChars, every operator node used more than once (empty otherwise,
/// so ordinary programs print as written).
std::vector<const TExpr*> sharedSubexpressions(const TExpr& root) {
  constexpr double kInlineChars = 400;
  std::map<const TExpr*, double> length;  // a double: the text of a DAG can be 2^1000 long
  std::map<const TExpr*, int> uses;
  std::vector<const TExpr*> postOrder;
  // Iterative post-order: a chain of inlined fns is thousands of levels deep.
  std::vector<std::pair<const TExpr*, size_t>> stack{{&root, 0}};
  length[&root] = -1;
  while (!stack.empty()) {
    auto& [e, next] = stack.back();
    if (next < e->operands.size()) {
      const TExpr* o = e->operands[next++].get();
      if (!o) continue;
      if (++uses[o] == 1) {
        length[o] = -1;
        stack.push_back({o, 0});
      }
      continue;
    }
    double l = 8;
    for (const auto& o : e->operands) l += o ? length.at(o.get()) + 4 : 8;
    length[e] = l;
    postOrder.push_back(e);
    stack.pop_back();
  }
  std::vector<const TExpr*> shared;
  if (length.at(&root) <= kInlineChars) return shared;
  for (const TExpr* e : postOrder)
    if (e != &root && uses[e] > 1 && !e->operands.empty()) shared.push_back(e);
  return shared;
}

}  // namespace

std::string describe(const CheckedAttention& a) {
  std::ostringstream os;
  os << "attention " << a.name << "  (" << (a.file ? a.file->path() : std::string("<input>")) << ':'
     << a.loc.line << ")\n";
  auto valueText = [](const CheckedParam& p) {
    if (p.type == ParamType::Bool) return std::string(p.value != 0 ? "true" : "false");
    return formatNumber(p.value);
  };
  if (!a.params.empty()) {
    os << "  params:\n";
    for (const auto& p : a.params)
      os << "    " << p.name << ": " << paramTypeName(p.type) << " = " << valueText(p) << "   ("
         << (p.overridden ? "--set" : "default") << ")\n";
  }
  os << "  mask: ";
  switch (a.mask) {
    case ast::MaskKind::Causal: os << "causal"; break;
    case ast::MaskKind::Full: os << "full"; break;
    case ast::MaskKind::Window:
      os << "window(" << (a.maskExpr ? toString(a, *a.maskExpr) : "?") << ")";
      if (a.maskExpr) {
        if (auto w = ConstantFolder().fold(*a.maskExpr); w && a.maskExpr->op != TExpr::Op::Literal)
          os << "  = window(" << formatNumber(*w) << ")";
      }
      break;
    case ast::MaskKind::Expr: os << (a.maskExpr ? toString(a, *a.maskExpr) : "?"); break;
  }
  if (a.perDocument) os << " per document";
  os << '\n';

  // Lines of "text" then, aligned in a column, the kind and type.
  auto kindText = [](const auto& e) {
    if (!e) return std::string("?");
    std::string s = kindName(e->kind);
    if (!isVector(e->kind)) s += e->type == ValueType::Bool ? ", bool" : ", number";
    return s;
  };
  std::vector<std::pair<std::string, std::string>> rows;
  size_t nameWidth = 0;
  for (const auto& l : a.lets) nameWidth = std::max(nameWidth, l.name.size());
  // A value whose text would be long (fns inlined into a DAG) gets its shared
  // subexpressions as rows of their own, "%1 = ...", before it: printed once each.
  SharedNames names;
  auto printed = [&](const TExprPtr& e, const std::string& indent) {
    if (!e) return std::string("?");
    for (const TExpr* shared : sharedSubexpressions(*e)) {
      std::string name = "%" + std::to_string(names.size() + 1);
      rows.emplace_back(indent + name + " = " + Printer(a, &names, shared).print(*shared), kindText(shared));
      names.emplace(shared, name);
    }
    return Printer(a, &names, e.get()).print(*e);
  };
  for (const auto& l : a.lets) {
    std::string name = l.name + std::string(nameWidth - l.name.size(), ' ');
    std::string value = printed(l.value, "    ");
    rows.emplace_back("    " + name + " = " + value, kindText(l.value));
  }
  std::string out = printed(a.out, "  ");
  rows.emplace_back("  out: " + out, kindText(a.out));
  size_t column = 0;
  for (const auto& r : rows)
    if (r.first.size() <= 80) column = std::max(column, r.first.size());
  if (!a.lets.empty()) os << "  values:\n";
  for (const auto& [text, kind] : rows) {
    os << text << std::string(text.size() < column ? column - text.size() : 0, ' ') << "   " << kind << '\n';
  }
  return os.str();
}

}  // namespace attn
