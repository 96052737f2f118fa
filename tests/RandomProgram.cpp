#include "RandomProgram.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace attn::test {

namespace {

enum class K { Const = 0, Row = 1, Score = 2 };

// Precedence levels of the generated text, for parenthesising.
constexpr int kAtom = 10, kPow = 8, kUnary = 7, kMul = 6, kAdd = 5, kCmp = 4, kAnd = 3, kOr = 2, kCond = 1;

struct E {
  std::string text;
  int level = kAtom;
};

struct Param {
  std::string name;
  char type;  // 'i' int (small, 1..4), 'f' float (positive), 'b' bool, 'w' int window (1..6)
};

struct Fn {
  std::string name;
  int arity;
};

class Gen {
 public:
  Gen(std::mt19937_64& rng, const RandomProgramOptions& o) : rng_(rng), o_(o) {}

  std::string program();
  std::string reductionProgram();

 private:
  std::mt19937_64& rng_;
  RandomProgramOptions o_;
  std::vector<Param> params_;
  std::vector<Fn> fns_;
  std::vector<std::pair<std::string, K>> lets_;  // scalar lets
  std::vector<std::string> qvecs_, kvecs_;       // vector lets
  bool nPositive_ = true;                        // every row has an unmasked key
  bool inFn_ = false;                            // generating a fn body: atoms are its args
  std::vector<std::string> fnArgs_;
  int letCounter_ = 0;
  double letBias_ = 0.4;  // chance that an atom is a let of its kind

  int uni(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(uni(0, static_cast<int>(v.size()) - 1))]; }
  K lower(K k) { return static_cast<K>(uni(0, static_cast<int>(k))); }

  static std::string wrap(const E& e, bool need) { return need ? "(" + e.text + ")" : e.text; }
  static E bin(const E& a, const std::string& op, const E& b, int level) {
    // left-associative: left keeps its text at the same level, right needs a higher one.
    return {wrap(a, a.level < level) + " " + op + " " + wrap(b, b.level <= level), level};
  }
  static E call(const std::string& f, const std::vector<E>& args) {
    std::string t = f + "(";
    for (size_t a = 0; a < args.size(); ++a) t += (a ? ", " : "") + args[a].text;
    return {t + ")", kAtom};
  }
  static E neg(const E& a) { return {"-" + wrap(a, a.level <= kUnary), kUnary}; }
  static E power(const E& a, const E& b) { return {wrap(a, a.level <= kPow) + " ^ " + wrap(b, b.level < kPow), kPow}; }

  std::vector<std::string> paramsOf(char type) {
    std::vector<std::string> r;
    for (const auto& p : params_)
      if (p.type == type) r.push_back(p.name);
    return r;
  }

  E literal() {
    static const std::vector<std::string> lits = {"0.5", "2", "1.5", ".25", "1e-1", "3", "0.75", "1", "0.3"};
    return {pick(lits), kAtom};
  }
  // An integer power for a stabilised normalisation, l1norm(b ^ p): up to 100.
  E bigPower() {
    static const std::vector<std::string> ps = {"1", "2", "3", "5", "8", "15", "16", "31", "64", "100"};
    return {pick(ps), kAtom};
  }
  E smallInt() {
    auto ps = paramsOf('i');
    if (!ps.empty() && coin(0.3)) return {pick(ps), kAtom};
    return {std::to_string(uni(1, 4)), kAtom};
  }

  // ---- atoms by kind ------------------------------------------------------------------
  E atom(K k) {
    if (inFn_) {
      if (k == K::Const) return literal();
      return {pick(fnArgs_), kAtom};
    }
    std::vector<std::string> lets;
    for (const auto& l : lets_)
      if (l.second == k) lets.push_back(l.first);
    if (!lets.empty() && coin(letBias_)) return {pick(lets), kAtom};
    switch (k) {
      case K::Const: {
        int c = uni(0, 5);
        if (c == 0) return {"L", kAtom};
        if (c == 1) return {"d", kAtom};
        if (c == 2) return call("sqrt", {{"d", kAtom}});
        auto fs = paramsOf('f');
        auto is = paramsOf('i');
        if (c == 3 && !fs.empty()) return {pick(fs), kAtom};
        if (c == 4 && !is.empty()) return {pick(is), kAtom};
        return literal();
      }
      case K::Row: {
        int c = uni(0, 3);
        if (c == 0) return {"i", kAtom};
        if (c == 1) return {"n", kAtom};
        if (c == 2) return reduction(o_.maxDepth > 1 ? 1 : 0);
        return bin({"i", kAtom}, "/", {"L", kAtom}, kMul);
      }
      case K::Score: {
        int c = uni(0, 5);
        if (c == 0) return {"j", kAtom};
        if (c == 1) return bin({"j", kAtom}, "/", {"L", kAtom}, kMul);
        return dotScore();
      }
    }
    return literal();
  }

  // ---- vectors --------------------------------------------------------------------------
  E qvec() {
    if (!qvecs_.empty() && coin(0.4)) return {pick(qvecs_), kAtom};
    switch (uni(0, 6)) {
      case 0: return call("l2norm", {{"q", kAtom}});
      case 1: return bin({"q", kAtom}, "/", call("sqrt", {{"d", kAtom}}), kMul);
      case 2: return bin({"q", kAtom}, "*", literal(), kMul);
      case 3: return bin(call("l2norm", {{"q", kAtom}}), "*", tameRow(), kMul);  // row-scalar scaling
      case 4: return bin({"q", kAtom}, "/", pos(K::Row, 1), kMul);
      case 5: return bin(literal(), "*", {"q", kAtom}, kMul);
      default: return {"q", kAtom};
    }
  }
  E kvec() {
    if (!kvecs_.empty() && coin(0.4)) return {pick(kvecs_), kAtom};
    switch (uni(0, 5)) {
      case 0: return call("l2norm", {{"k", kAtom}});
      case 1: return bin({"k", kAtom}, "/", call("sqrt", {{"d", kAtom}}), kMul);
      case 2: return bin({"k", kAtom}, "*", literal(), kMul);
      case 3: return bin(call("l2norm", {{"k", kAtom}}), "*", constant(1), kMul);
      case 4: return bin(literal(), "*", {"k", kAtom}, kMul);
      default: return {"k", kAtom};
    }
  }
  E dotScore() {
    E a = qvec(), b = kvec();
    E s = coin(0.85) ? call("dot", {a, b}) : call("dot", {b, a});
    if (coin(0.3)) s = bin(s, "/", call("sqrt", {{"d", kAtom}}), kMul);
    return s;
  }
  // A bounded row scalar (for scaling q): in (0, 3].
  E tameRow() {
    switch (uni(0, 3)) {
      case 0: return bin(call("sigmoid", {gen(K::Row, 1)}), "+", literal(), kAdd);
      case 1: return call("exp", {bin(call("tanh", {gen(K::Row, 1)}), "*", {"0.5", kAtom}, kMul)});
      case 2: return {"(i < 3 ? 1 : 0.5)", kAtom};
      default: return bin({"1", kAtom}, "/", bin({"i", kAtom}, "+", {"1", kAtom}, kAdd), kMul);
    }
  }
  E constant(int depth) { return gen(K::Const, depth); }

  // x squashed into a few units (for the bases of powers: a cube of a large value fed to
  // softplus or exp would sit in the subnormal range, where float64 keeps few digits).
  E bounded(const E& x) {
    switch (uni(0, 3)) {
      case 0: return call("clamp", {x, {"-2", kUnary}, {"3", kAtom}});
      case 1: return bin(call("tanh", {x}), "*", {std::to_string(uni(1, 3)), kAtom}, kMul);
      case 2: return bin(call("sigmoid", {x}), "*", {"2", kAtom}, kMul);
      default: return bin(x, "/", bin({"1", kAtom}, "+", call("abs", {x}), kAdd), kMul);
    }
  }

  // ---- reductions ------------------------------------------------------------------------
  E reduction(int depth) {
    static const std::vector<std::string> r = {"rowsum", "rowmax", "rowmin", "rowmean"};
    return call(pick(r), {gen(K::Score, depth)});
  }

  // ---- provably positive values of kind exactly k ------------------------------------------
  E pos(K k, int depth) {
    if (k == K::Const) {
      int c = uni(0, 4);
      if (c == 0) return {"L", kAtom};
      if (c == 1) return {"d", kAtom};
      if (c == 2) return call("sqrt", {{"d", kAtom}});
      if (c == 3 && !inFn_) {
        auto fs = paramsOf('f');
        if (!fs.empty()) return {pick(fs), kAtom};
      }
      return literal();
    }
    if (!inFn_ && k == K::Row && coin(0.25)) {
      if (nPositive_ && coin(0.5)) return {"n", kAtom};
      return bin({coin() ? "n" : "i", kAtom}, "+", {"1", kAtom}, kAdd);
    }
    E x = gen(k, std::max(depth - 1, 0));
    switch (uni(0, 6)) {
      case 0: return bin(call("softplus", {x}), "+", {"1", kAtom}, kAdd);
      case 1: return call("exp", {bin(call("tanh", {x}), "*", {std::to_string(uni(1, 3)), kAtom}, kMul)});
      case 2: return bin(call("abs", {x}), "+", {"1", kAtom}, kAdd);
      case 3: return bin({"1", kAtom}, "+", power(x, {"2", kAtom}), kAdd);
      case 4: return bin(call("sigmoid", {x}), "+", {"0.5", kAtom}, kAdd);
      case 5: return call("sqrt", {bin(call("abs", {x}), "+", {"1", kAtom}, kAdd)});
      default: return bin(call("relu", {x}), "+", literal(), kAdd);
    }
  }

  // ---- booleans of kind <= k --------------------------------------------------------------
  E boolean(K k, int depth) {
    if (depth > 0 && coin(0.25)) {
      E a = boolean(k, depth - 1), b = boolean(lower(k), depth - 1);
      if (coin()) std::swap(a, b);
      return coin() ? bin(a, "&&", b, kAnd) : bin(a, "||", b, kOr);
    }
    if (depth > 0 && coin(0.1)) {
      E a = boolean(k, depth - 1);
      return {"!" + wrap(a, true), kUnary};
    }
    auto bs = paramsOf('b');
    if (!inFn_ && !bs.empty() && coin(0.15)) return {pick(bs), kAtom};
    static const std::vector<std::string> cmps = {"<", "<=", ">", ">=", "==", "!="};
    // Integer built-ins against each other or small literals.
    if (!inFn_ && coin(0.6)) {
      std::vector<std::string> names = {"L"};
      if (k >= K::Row) names.insert(names.end(), {"i", "n"});
      if (k >= K::Score) names.insert(names.end(), {"j", "j", "j"});
      E a{pick(names), kAtom};
      E b = coin() ? E{pick(names), kAtom} : E{std::to_string(uni(0, 8)), kAtom};
      if (coin(0.3)) b = bin(b, coin() ? "+" : "-", {std::to_string(uni(1, 4)), kAtom}, kAdd);
      return bin(a, pick(cmps), b, kCmp);
    }
    // A computed value against a literal (no ties by construction, up to rounding).
    static const std::vector<std::string> thr = {"0.37", "-0.41", "1.13", "0.07", "2.3"};
    E a = gen(k, std::max(depth - 1, 0));
    static const std::vector<std::string> strict = {"<", ">", "<=", ">="};
    return bin(a, pick(strict), {pick(thr), kAtom}, kCmp);
  }

  // ---- scalar expressions of kind exactly k -------------------------------------------------
  E other(K k, int depth, E main) {
    // a binary operand pair: main has kind k, the other kind <= k
    (void)main;
    return gen(lower(k), depth);
  }

  E gen(K k, int depth) {
    if (depth <= 0 || coin(0.1)) return atom(k);
    int d = depth - 1;
    int choice = uni(0, 19);
    switch (choice) {
      case 0:
      case 1: {
        static const std::vector<std::string> un = {"abs",  "tanh",      "sigmoid", "softplus", "relu", "relu6",
                                                    "gelu", "gelu_tanh", "silu",    "mish"};
        return call(pick(un), {gen(k, d)});
      }
      case 2: return call("exp", {bin(call("tanh", {gen(k, d)}), "*", {std::to_string(uni(1, 3)), kAtom}, kMul)});
      case 3: return call(coin() ? "log" : "sqrt", {pos(k, d)});
      case 4:
      case 5:
      case 6: {
        E a = gen(k, d), b = gen(lower(k), d);
        if (coin()) std::swap(a, b);
        static const std::vector<std::string> ops = {"+", "-", "*"};
        std::string op = pick(ops);
        return bin(a, op, b, op == "*" ? kMul : kAdd);
      }
      case 7: {
        bool mainTop = coin();
        E a = gen(mainTop ? k : lower(k), d);
        E b = pos(mainTop ? lower(k) : k, d);
        return bin(a, "/", b, kMul);
      }
      case 8: return power(coin(0.7) ? bounded(gen(k, d)) : gen(k, d), smallInt());
      case 9: {
        static const std::vector<std::string> ex = {"0.5", "1.5", "2", "0.25"};
        return call("pow", {pos(k, d), {pick(ex), kAtom}});
      }
      case 10: {
        E a = gen(k, d), b = gen(lower(k), d);
        if (coin()) std::swap(a, b);
        return call(coin() ? "min" : "max", {a, b});
      }
      case 11: {
        static const std::vector<std::string> lo = {"-1", "-2", "0", "-0.5"}, hi = {"1", "2", "3", "0.5"};
        E l{pick(lo), kUnary}, h{pick(hi), kAtom};
        if (l.text == "0") l.level = kAtom;
        return call("clamp", {gen(k, d), l, h});
      }
      case 12:
      case 13: {
        E c = boolean(lower(k), d);
        E a = gen(k, d), b = gen(lower(k), d);
        if (coin()) std::swap(a, b);
        return {wrap(c, c.level <= kCond) + " ? " + wrap(a, a.level <= kCond) + " : " + wrap(b, b.level <= kCond),
                kCond};
      }
      case 14: return neg(gen(k, d));
      case 15:
      case 18:
        if (!inFn_ && !fns_.empty()) {
          const Fn& f = pick(fns_);
          std::vector<E> args;
          int main = uni(0, f.arity - 1);
          for (int a = 0; a < f.arity; ++a) args.push_back(gen(a == main ? k : lower(k), d));
          return call(f.name, args);
        }
        return gen(k, d);
      case 16:
        if (!inFn_ && k == K::Row) return reduction(d);
        if (!inFn_ && k == K::Score) return normalised(d);
        return gen(k, d);
      case 17:
        if (!inFn_ && k == K::Score) return call("softmax", {tameScore(d)});
        return gen(k, d);
      default: return atom(k);
    }
  }

  // A score whose magnitude stays moderate (for softmax, whose result is sensitive to
  // rounding of large arguments only through exp(x - max)).
  E tameScore(int depth) {
    switch (uni(0, 3)) {
      case 0: return dotScore();
      case 1: return bin(dotScore(), coin() ? "+" : "-", bin(constant(0), "*", {coin() ? "j" : "i", kAtom}, kMul), kAdd);
      case 2: return bin(call("tanh", {gen(K::Score, depth)}), "*", {std::to_string(uni(1, 4)), kAtom}, kMul);
      default: return bin(gen(K::Score, std::min(depth, 1)), "/", pos(K::Const, 0), kMul);
    }
  }

  E normalised(int depth) {
    if (coin()) return call("softmax", {tameScore(depth)});
    return call("l1norm", {gen(K::Score, depth)});
  }

  // ---- statements -------------------------------------------------------------------------
  std::string newLet() { return "t" + std::to_string(letCounter_++); }

  std::string maskStatement() {
    switch (uni(0, 5)) {
      case 0: return "  mask causal\n";
      case 1: return coin() ? "  mask full\n" : "";
      case 2: {
        auto ws = paramsOf('w');
        if (!ws.empty() && coin(0.7)) return "  mask window(" + pick(ws) + ")\n";
        return "  mask window(" + std::to_string(uni(1, 6)) + ")\n";
      }
      default: {
        nPositive_ = false;
        int saved = 0;
        (void)saved;
        E m = maskExpr(2);
        return "  mask " + m.text + "\n";
      }
    }
  }
  E maskExpr(int depth) {
    if (depth > 0 && coin(0.5)) {
      E a = maskExpr(depth - 1), b = maskExpr(depth - 1);
      return coin(0.6) ? bin(a, "&&", b, kAnd) : bin(a, "||", b, kOr);
    }
    if (depth > 0 && coin(0.1)) return {"!" + wrap(maskExpr(depth - 1), true), kUnary};
    auto ws = paramsOf('w');
    auto is = paramsOf('i');
    std::string w = !ws.empty() && coin() ? pick(ws) : std::to_string(uni(1, 6));
    switch (uni(0, 7)) {
      case 0: return {"j <= i", kCmp};
      case 1: return {"i - j < " + w, kCmp};
      case 2: return {"j >= i - " + w, kCmp};
      case 3: return {"j < L - " + std::to_string(uni(0, 3)), kCmp};
      case 4: return {"j != i", kCmp};
      case 5: return {"j > " + std::to_string(uni(0, 4)), kCmp};
      case 6: return {"i + j >= " + (is.empty() ? std::to_string(uni(0, 9)) : pick(is)), kCmp};
      default: return {"j * 2 <= i + " + std::to_string(uni(0, 3)), kCmp};
    }
  }

  // ---- the Reductions focus ----------------------------------------------------------------
  // u(x) for unary function u (unaryNames()) of a moderate score x (about N(0, 1) and at most
  // ~10 in size), on an argument it is tame on: exp of x / 2, log and sqrt of positive values.
  E unary(int u, const E& x) {
    const std::string& name = unaryNames()[static_cast<size_t>(u)];
    const E half{"0.5", kAtom};
    if (name == "exp" || name == "exp2") return call(name, {bin(x, "*", half, kMul)});
    if (name == "log" || name == "log2") return call(name, {bin(call("softplus", {x}), "+", half, kAdd)});
    if (name == "sqrt") return call(name, {bin(call("abs", {x}), "+", {"0.25", kAtom}, kAdd)});
    if (name == "rsqrt") return call(name, {bin({"1", kAtom}, "+", power(x, {"2", kAtom}), kAdd)});
    if (name == "neg") return neg(x);
    if (name == "square") return power(x, {"2", kAtom});
    if (name == "cube") return power(x, {"3", kAtom});
    if (name == "pow") return call("pow", {bin(call("abs", {x}), "+", {"1", kAtom}, kAdd), {"1.5", kAtom}});
    if (name == "min") return call("min", {x, {"0.37", kAtom}});
    if (name == "max") return call("max", {x, {"-0.41", kUnary}});
    if (name == "clamp") return call("clamp", {x, {"-1", kUnary}, {"1.5", kAtom}});
    return call(name, {x});
  }
  int anyUnary() { return uni(0, static_cast<int>(unaryNames().size()) - 1); }
  E rowReduction(int r, const E& x) { return call(reductionNames()[static_cast<size_t>(r)], {x}); }
  E anyReduction(const E& x) { return rowReduction(uni(0, 3), x); }

  // The base score of the Reductions focus: a scaled dot product, about N(0, 1) on randn
  // inputs of a small head dimension.
  E baseScore() {
    switch (uni(0, 4)) {
      case 0: return bin(call("dot", {{"q", kAtom}, {"k", kAtom}}), "/", call("sqrt", {{"d", kAtom}}), kMul);
      case 1: return bin(call("dot", {{"q", kAtom}, {"k", kAtom}}), "/", {"4", kAtom}, kMul);
      case 2:
        return bin(call("dot", {call("l2norm", {{"q", kAtom}}), call("l2norm", {{"k", kAtom}})}), "*", {"3", kAtom}, kMul);
      case 3:
        return bin(call("dot", {bin({"q", kAtom}, "*", {"0.5", kAtom}, kMul), {"k", kAtom}}), "+",
                   bin({"j", kAtom}, "/", {"L", kAtom}, kMul), kAdd);
      default: return call("dot", {{"q", kAtom}, {"k", kAtom}});
    }
  }

  std::string fnDef(int index) {
    Fn f{"f" + std::to_string(index), uni(1, 2)};
    inFn_ = true;
    fnArgs_ = f.arity == 1 ? std::vector<std::string>{"x"} : std::vector<std::string>{"x", "y"};
    E body;
    if (f.arity == 1) {
      body = gen(K::Score, 2);
      // make sure x is used (atoms of kind score are x)
    } else {
      fnArgs_ = {"x"};
      E a = gen(K::Score, 2);
      fnArgs_ = {"y"};
      E b = gen(K::Score, 1);
      static const std::vector<std::string> ops = {"+", "-", "*"};
      std::string op = pick(ops);
      body = coin(0.25) ? call(coin() ? "min" : "max", {a, b}) : bin(a, op, b, op == "*" ? kMul : kAdd);
    }
    inFn_ = false;
    fns_.push_back(f);
    return "fn " + f.name + "(" + (f.arity == 1 ? "x" : "x, y") + ") = " + body.text + "\n";
  }
};

std::string Gen::program() {
  std::ostringstream out;
  // Fn helpers (defined before or after the attention).
  std::vector<std::string> fnTexts;
  if (o_.allowFns) {
    int nf = uni(0, o_.maxFns);
    for (int f = 0; f < nf; ++f) fnTexts.push_back(fnDef(f));
  }
  bool fnsAfter = coin(0.3);
  if (!fnsAfter)
    for (const auto& t : fnTexts) out << t << "\n";

  std::ostringstream body;
  // Params.
  int np = uni(0, o_.maxParams);
  for (int p = 0; p < np; ++p) {
    int t = uni(0, 3);
    Param prm;
    if (t == 0) {
      prm = {"p" + std::to_string(p), 'i'};
      body << "  param " << prm.name << ": int = " << uni(1, 4) << "\n";
    } else if (t == 1) {
      prm = {"c" + std::to_string(p), 'f'};
      static const std::vector<std::string> fv = {"0.5", "1.5", "2.0", ".25", "3"};
      // sometimes a default computed from an earlier param
      auto fs = paramsOf('f');
      if (!fs.empty() && coin(0.3))
        body << "  param " << prm.name << ": float = " << pick(fs) << " * 2\n";
      else
        body << "  param " << prm.name << ": float = " << pick(fv) << "\n";
    } else if (t == 2) {
      prm = {"b" + std::to_string(p), 'b'};
      body << "  param " << prm.name << ": bool = " << (coin() ? "true" : "false") << "\n";
    } else {
      prm = {"W" + std::to_string(p), 'w'};
      body << "  param " << prm.name << ": int = " << uni(1, 6) << "\n";
    }
    params_.push_back(prm);
  }
  body << maskStatement();

  // Vector lets.
  if (coin(0.4)) {
    std::string n = newLet();
    body << "  let " << n << " = " << qvec().text << "\n";
    qvecs_.push_back(n);
  }
  if (coin(0.4)) {
    std::string n = newLet();
    body << "  let " << n << " = " << kvec().text << "\n";
    kvecs_.push_back(n);
  }
  // Scalar lets of every kind.
  int nl = uni(0, o_.maxLets);
  for (int l = 0; l < nl; ++l) {
    K k = static_cast<K>(uni(0, 2));
    if (coin(0.5)) k = K::Score;
    std::string n = newLet();
    E e = gen(k, uni(1, o_.maxDepth));
    body << "  let " << n << " = " << e.text << "\n";
    lets_.push_back({n, k});
  }

  // out: a score, often a normalisation and a multi-stage re-weighting; it uses the lets.
  letBias_ = 0.7;
  std::string outText;
  int shape = uni(0, 5);
  if (shape == 0) {
    outText = gen(K::Score, o_.maxDepth).text;
  } else if (shape == 1) {
    outText = call("softmax", {tameScore(o_.maxDepth - 1)}).text;
  } else if (shape == 2) {
    outText = call("l1norm", {gen(K::Score, o_.maxDepth)}).text;
  } else {
    // re-weighting stages: a = normalised; w = l1norm(relu(n * a - c) ^ p) ... The offsets
    // are chosen so that n * a - c is not 0 for scores built from j / L (L = 13 in tests):
    // a tie there would make the weights rounding noise.
    std::string a = newLet();
    body << "  let " << a << " = " << normalised(o_.maxDepth - 1).text << "\n";
    int stages = uni(1, 2);
    static const std::vector<std::string> offs = {"0.37", "0.61", "0", "1.13", "(i < 3 ? 0 : 0.57)", "0.29"};
    for (int s = 0; s < stages; ++s) {
      std::string nn = nPositive_ ? "n" : "(n + 1)";
      std::string w = newLet();
      E inner = coin(0.8) ? E{"relu(" + nn + " * " + a + " - " + pick(offs) + ")", kAtom}
                          : E{"softplus(" + nn + " * " + a + " - 1)", kAtom};
      // Powers up to 100 where the stabilised normalisation keeps them finite; a bare power
      // stays small (13^100 overflows float32).
      const bool normalise = coin(0.8);
      E powd = power(inner, normalise && coin(0.4) ? bigPower() : smallInt());
      body << "  let " << w << " = " << (normalise ? call("l1norm", {powd}).text : powd.text) << "\n";
      a = w;
    }
    outText = coin(0.8) ? a : bin({a, kAtom}, "*", pos(K::Row, 1), kMul).text;
  }
  body << "  out " << outText << "\n";

  out << "attention r {\n" << body.str() << "}\n";
  if (fnsAfter)
    for (const auto& t : fnTexts) out << "\n" << t;
  return out.str();
}

// rowX(u(s)) at the heart of every program, used inside or outside a normalisation, nested,
// or re-weighted with a power up to 100.
std::string Gen::reductionProgram() {
  std::ostringstream body;
  body << maskStatement();
  const int red = o_.reduction >= 0 ? o_.reduction : uni(0, 3);
  const int un = o_.unary >= 0 ? o_.unary : anyUnary();
  const E s{"s", kAtom}, z{"z", kAtom}, r{"r", kAtom};
  const std::string nn = nPositive_ ? "n" : "(n + 1)";
  body << "  let s = " << baseScore().text << "\n";
  body << "  let z = " << unary(un, s).text << "\n";
  if (coin(0.3)) {
    // A nested reduction: the main one reduces a function of z and of a reduction of z.
    body << "  let y = " << unary(anyUnary(), bin(z, "-", anyReduction(z), kAdd)).text << "\n";
  } else {
    body << "  let y = z\n";
  }
  const E y{"y", kAtom};
  body << "  let r = " << rowReduction(red, y).text << "\n";
  const E centred = bin(y, "-", r, kAdd);
  static const std::vector<std::string> offs = {"0.37", "0.61", "1.13", "0.29"};
  std::string outText;
  switch (uni(0, 7)) {
    case 0: outText = call("l1norm", {unary(anyUnary(), centred)}).text; break;  // inside a normalisation
    case 1: outText = bin(unary(anyUnary(), centred), "/", {nn, kAtom}, kMul).text; break;  // outside
    case 2:
      outText = call("softmax", {bin(bin(y, "*", {"0.5", kAtom}, kMul), "+",
                                     bin(s, "/", bin({"1", kAtom}, "+", call("abs", {r}), kAdd), kMul), kAdd)})
                    .text;
      break;
    case 3: {  // LSSAR-style re-weighting of a normalised function of the reduction
      body << "  let a = " << call("l1norm", {call("softplus", {centred})}).text << "\n";
      E inner{"relu(" + nn + " * a - " + pick(offs) + ")", kAtom};
      outText = call("l1norm", {power(inner, bigPower())}).text;
      break;
    }
    case 4: {  // a power up to 100 of a function of the reduction, normalised (stabilised)
      static const std::vector<std::string> bases = {"relu", "sigmoid", "softplus", "abs", "relu6"};
      outText = call("l1norm", {power(call(pick(bases), {centred}), bigPower())}).text;
      break;
    }
    case 5: {  // a reduction of a normalised value, used outside any normalisation
      body << "  let a = " << call("l1norm", {unary(anyUnary(), centred)}).text << "\n";
      E a{"a", kAtom};
      outText = coin() ? bin(a, "*", anyReduction(a), kMul).text
                       : call("l1norm", {call("relu", {bin(a, "-", anyReduction(a), kAdd)})}).text;
      break;
    }
    case 6:  // row values as factors and divisors of a score
      outText = bin(bin(centred, "*", anyReduction(s), kMul), "/", bin({"1", kAtom}, "+", call("abs", {r}), kAdd), kMul)
                    .text;
      break;
    default:  // reductions nested inside the normalisation
      outText = call("l1norm", {unary(anyUnary(), bin(y, "-", anyReduction(unary(anyUnary(), centred)), kAdd))}).text;
      break;
  }
  body << "  out " << outText << "\n";
  return "attention r {\n" + body.str() + "}\n";
}

}  // namespace

std::string randomProgram(std::mt19937_64& rng, const RandomProgramOptions& options) {
  Gen g(rng, options);
  if (options.focus == RandomProgramOptions::Focus::Reductions) return g.reductionProgram();
  return g.program();
}

const std::vector<std::string>& reductionNames() {
  static const std::vector<std::string> names = {"rowsum", "rowmax", "rowmin", "rowmean"};
  return names;
}

const std::vector<std::string>& unaryNames() {
  static const std::vector<std::string> names = {
      "exp",   "exp2", "log",       "log2", "sqrt", "rsqrt", "abs",    "sign", "tanh", "sigmoid", "softplus", "relu",
      "relu6", "gelu", "gelu_tanh", "silu", "mish", "neg",   "square", "cube", "pow",  "min",     "max",      "clamp"};
  return names;
}

}  // namespace attn::test
