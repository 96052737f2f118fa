// The scalar kernel generator: a KernelPlan and its BackwardPlan written as loops over key
// blocks and query rows in the KernelWriter vocabulary. See ScalarKernels.h.
#include "codegen/scalar/ScalarKernels.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "compiler/Diagnostics.h"
#include "compiler/ScalarOps.h"

namespace attn::kernels {

namespace {

using ir::Node;
using ir::NodeId;
using ir::Op;
using Kind = RowStatistic::Kind;

// A vector operand of dot as a scalar multiple of q or k: sign and scale factors, and
// whether it is normalised (l2norm(c·q) = sign(c)·q/|q|).
struct VectorForm {
  bool normalised = false;
  std::vector<std::pair<NodeId, bool>> factors;  // (scalar node, use its sign only)
};

class Generator {
 public:
  Generator(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
            const KernelSizes& sizes)
      : plan_(plan), g_(plan.graph), bwd_(backward), real_(real), sizes_(sizes) {
    src_.sizes = sizes;
    for (size_t s = 0; s < plan.statistics.size(); ++s) {
      const RowStatistic& st = plan.statistics[s];
      statOf_[st.node] = static_cast<int>(s);
      if (st.kind == Kind::Max || st.kind == Kind::Min) extremesOf_[st.operand].push_back(static_cast<int>(s));
    }
    live_ = ir::liveNodes(g_);
    avail_.assign(g_.size(), 1);
    for (NodeId id : live_) {
      int a = 1;
      if (auto it = statOf_.find(id); it != statOf_.end()) a = plan.statistics[static_cast<size_t>(it->second)].pass + 1;
      else
        for (NodeId o : g_.node(id).operands) a = std::max(a, avail_[static_cast<size_t>(o)]);
      avail_[static_cast<size_t>(id)] = a;
    }
    users_.resize(g_.size());
    for (NodeId id : live_)
      for (NodeId o : atomicOperands(g_, id)) {
        // Each user once, though it may take the node as several operands (m * m): the
        // users' shares sum partials over all operand slots, and a repeated user counted
        // them twice (the row adjoint of m was 4m, not 2m, times the user's).
        std::vector<NodeId>& users = users_[static_cast<size_t>(o)];
        if (std::find(users.begin(), users.end(), id) == users.end()) users.push_back(id);
      }
    for (NodeId id : live_) {
      const Node& n = g_.node(id);
      if (n.op == Op::Dot) {
        dots_[id] = {vectorForm(n.operands[0]), vectorForm(n.operands[1])};
        src_.needsQueryNorm = src_.needsQueryNorm || dots_[id].first.normalised;
        src_.needsKeyNorm = src_.needsKeyNorm || dots_[id].second.normalised;
      }
    }
    ns_ = 2 * static_cast<int>(plan.statistics.size());
    src_.statSlots = ns_;
    src_.adjointSlots = static_cast<int>(bwd_.adjoints.size());
    for (size_t k = 0; k < bwd_.adjoints.size(); ++k)
      if (bwd_.adjoints[k].identity) src_.identitySlots.push_back(static_cast<int>(k));
    src_.backwardUnsupported = bwd_.unsupported;
    if (g_.mask == ir::MaskKind::Window) {
      const Node& w = g_.node(g_.maskExpr);
      ATTN_INTERNAL_ASSERT(w.op == Op::Const, "window width is not a constant");
      windowLow_ = static_cast<long long>(std::ceil(w.value)) - 1;
    }
  }

  // The per-element hooks of forward pass `pass` (see generateElementHooks).
  KernelFunction elementHook(const WriterFactory& makeWriter, int pass) {
    const std::string name = "attn_hook_" + std::to_string(pass);
    auto writer = makeWriter(name, real_);
    KernelWriter& f = *writer;
    pass_ = pass;
    level_ = 0;
    const std::string x = enterHook(f, false, true).first;
    const KeyPass& kp = plan_.passes.at(static_cast<size_t>(pass - 1));
    const OutputAccumulation& out = plan_.output;
    const int outSlot = static_cast<int>(plan_.statistics.size());
    auto put = [&](int slot, const std::string& v) { f.storeReal(v, f.realAt(x, KernelWriter::i64(slot))); };
    for (const RowStatistic& st : kp.produces) {
      const int index = statOf_.at(st.node);
      switch (st.kind) {
        case Kind::Normaliser: break;  // fed by the output operand
        case Kind::Count: break;       // counted by the skeleton
        case Kind::OnlineExp: {
          std::string e = value(st.operand);
          put(index, isExp2(st.node) ? mul(e, c(M_LN2)) : e);
          break;
        }
        case Kind::Sum: {
          std::string v = value(st.operand);
          put(index, g_.node(st.node).op == Op::Normalize ? f.intrinsic("fabs", v) : v);
          break;
        }
        default: put(index, value(st.operand)); break;  // Mean, Max, Min, OnlinePower
      }
    }
    if (kp.accumulatesOutput) {
      std::string y = value(out.value);
      if (out.form == OutputAccumulation::Form::OnlineExp) {
        for (const RowStatistic& st : plan_.statistics)
          if (st.kind == Kind::Normaliser && isExp2(st.node)) y = mul(y, c(M_LN2));
      }
      put(outSlot, y);
    }
    put(outSlot + 1, el_.vis.empty() ? c(1) : f.bool2real(el_.vis));
    el_ = ElementContext{};
    pass_ = 0;
    return {name, f.finish()};
  }

  // Sets up a hook's row (and element) from its parameters,
  //   (float* stats, [float* adj,] long long i, float n, long long lk, float rq,
  //    [float s, [float g,] long long j, float rk, float* x])
  // adj and g for `backward` hooks, the element's for `element` ones; returns (x, g). The
  // caller sets pass_ (forward) or level_ (backward) first: they say what is readable.
  std::pair<std::string, std::string> enterHook(KernelWriter& f, bool backward, bool element) {
    f_ = &f;
    stats_ = f.param("ptr", "stats");
    if (backward) adj_ = f.param("ptr", "adj");
    row_ = RowContext{};
    row_.r = "0";
    row_.i = f.param("i64", "i");
    row_.n = f.param(real_, "n");
    lk_ = f.param("i64", "lk");
    lq_ = "";
    const std::string rq = f.param(real_, "rq");
    std::string s, g, j, rk, x;
    if (element) {
      s = f.param(real_, "s");
      if (backward) g = f.param(real_, "g");
      j = f.param("i64", "j");
      rk = f.param(real_, "rk");
      x = f.param("ptr", "x");
    }
    d_ = KernelWriter::i64(sizes_.d);
    dv_ = KernelWriter::i64(sizes_.dv);
    if (src_.needsQueryNorm) row_.memo[-2] = rq;
    prefetchRow();
    if (element) {
      el_ = ElementContext{};
      el_.active = true;
      el_.j = j;
      el_.s = s;
      if (src_.needsKeyNorm) el_.memo[-3] = rk;
      if (g_.mask == ir::MaskKind::Expr) el_.vis = f.real2bool(value(g_.maskExpr));
    }
    return {x, g};
  }

  // Backward row pass `pass`, per element: x[a] = the element's term of each row adjoint a
  // of that level, x[adjoints] = visibility.
  KernelFunction rowPassHook(const WriterFactory& makeWriter, int pass) {
    const std::string name = "attn_bwd_rows_" + std::to_string(pass);
    auto writer = makeWriter(name, real_);
    KernelWriter& f = *writer;
    pass_ = 0;
    level_ = pass;
    auto [x, g] = enterHook(f, true, true);
    WalkSinks sinks;
    for (size_t k = 0; k < bwd_.adjoints.size(); ++k)
      if (bwd_.adjoints[k].level == pass) {
        std::string var = f.variable(real_);
        f.storeReal(c(0), var);
        sinks.accumulators[static_cast<int>(k)] = var;
      }
    reverseWalk(pass, g, sinks);
    for (auto& [k, var] : sinks.accumulators) f.storeReal(f.loadReal(var), f.realAt(x, KernelWriter::i64(k)));
    const auto count = static_cast<long long>(bwd_.adjoints.size());
    f.storeReal(el_.vis.empty() ? c(1) : f.bool2real(el_.vis), f.realAt(x, KernelWriter::i64(count)));
    el_ = ElementContext{};
    level_ = 0;
    return {name, f.finish()};
  }

  // After row pass `pass` has summed its adjoints, for the current row: the row users'
  // shares, R_r += R_u du/dr, users first, on the row's adj in place.
  void rowUsersShares(int pass) {
    std::map<NodeId, std::string> finished;
    for (auto it = bwd_.adjoints.rbegin(); it != bwd_.adjoints.rend(); ++it) {
      if (it->level != pass || it->kind != RowAdjoint::Kind::RowValue) continue;
      const int k = bwd_.adjointOf.at(it->node);
      std::string R = f_->loadReal(adjSlot(row_.r, k));
      for (NodeId u : users_[static_cast<size_t>(it->node)]) {
        const Node& un = g_.node(u);
        if (un.kind != ValueKind::Row || !bwd_.adjointOf.count(u)) continue;
        auto done = finished.find(u);
        std::string Ru = done != finished.end() ? done->second : rowAdjoint(bwd_.adjointOf.at(u));
        for (auto& [opIndex, contribution] : partials(u, Ru))
          if (un.operands[static_cast<size_t>(opIndex)] == it->node) R = add(R, contribution);
      }
      f_->storeReal(R, adjSlot(row_.r, k));
      finished[it->node] = R;
    }
  }

  // The row users' shares of row pass `pass` (rowUsersShares) as a hook for one row.
  KernelFunction rowFinishHook(const WriterFactory& makeWriter, int pass) {
    const std::string name = "attn_bwd_rowfinish_" + std::to_string(pass);
    auto writer = makeWriter(name, real_);
    KernelWriter& f = *writer;
    pass_ = 0;
    level_ = pass + 1;  // the adjoints of this level are summed now: prefetch them too
    enterHook(f, true, false);
    level_ = pass;
    rowUsersShares(pass);
    level_ = 0;
    return {name, f.finish()};
  }

  // The gradient pass, per element: x[0] = dS, x[1] = w, x[2] = rqBar term, x[3] = rkBar
  // term, x[4] = visibility.
  KernelFunction gradientHook(const WriterFactory& makeWriter) {
    const std::string name = "attn_bwd_grad";
    auto writer = makeWriter(name, real_);
    KernelWriter& f = *writer;
    const int level = bwd_.rowPasses + 1;
    pass_ = 0;
    level_ = level;
    auto [x, g] = enterHook(f, true, true);
    WalkSinks sinks;
    reverseWalk(level, g, sinks);
    auto put = [&](int slot, const std::string& v) { f.storeReal(v, f.realAt(x, KernelWriter::i64(slot))); };
    put(0, sinks.dS);
    put(1, whereVisible(value(g_.out), c(0)));
    put(2, sinks.rqBar);
    put(3, sinks.rkBar);
    put(4, el_.vis.empty() ? c(1) : f.bool2real(el_.vis));
    el_ = ElementContext{};
    level_ = 0;
    return {name, f.finish()};
  }

  ScalarKernels run(const WriterFactory& makeWriter) {
    auto add = [&](KernelWriter& f, const std::string& name) {
      src_.functions.push_back({name, f.finish()});
      src_.declarations.insert(f.declarations().begin(), f.declarations().end());
    };
    {
      auto f = makeWriter(src_.forward, real_);
      emitForward(*f);
      add(*f, src_.forward);
    }
    if (bwd_.unsupported.empty()) {
      for (int s = 1; s <= bwd_.rowPasses; ++s) {
        src_.rowPasses.push_back("attn_backward_rows_" + std::to_string(s));
        auto f = makeWriter(src_.rowPasses.back(), real_);
        emitRowPass(*f, s);
        add(*f, src_.rowPasses.back());
      }
      auto f = makeWriter(src_.gradient, real_);
      emitGradient(*f);
      add(*f, src_.gradient);
    }
    return src_;
  }

 private:
  const KernelPlan& plan_;
  const ir::Graph& g_;
  const BackwardPlan& bwd_;
  std::string real_;
  KernelSizes sizes_;
  ScalarKernels src_;
  std::map<NodeId, int> statOf_;
  std::map<NodeId, std::vector<int>> extremesOf_;  // score node -> the Max/Min statistics of it
  std::vector<NodeId> live_;
  std::vector<int> avail_;
  std::vector<std::vector<NodeId>> users_;
  std::map<NodeId, std::pair<VectorForm, VectorForm>> dots_;
  int ns_ = 0;
  long long windowLow_ = 0;

  KernelWriter* f_ = nullptr;
  int pass_ = 0;  // forward pass being emitted; 0 in backward (every statistic readable)
  int level_ = 0;  // backward pass being emitted
  // Arguments of the current function.
  std::string q_, k_, v_, o_, stats_, rq_, rk_, dout_, adj_, lq_, lk_, d_, dv_;
  // The current query row.
  struct RowContext {
    std::string r, i, lo, hi, n;
    std::map<NodeId, std::string> memo;
    std::map<int, std::pair<std::string, std::string>> slots;  // statistic -> (slot0, slot1)
    std::map<int, std::string> adjoints;                      // finished row adjoints
  } row_;
  // The current key.
  struct ElementContext {
    bool active = false;
    std::string j, s, vis;
    std::map<NodeId, std::string> memo;
  } el_;

  // ---------------------------------------------------------------- helpers
  std::string c(double v) const { return f_->constant(v); }
  std::string negInf() const { return c(-INFINITY); }
  std::string add(const std::string& a, const std::string& b) { return f_->fop("fadd", a, b); }
  std::string sub(const std::string& a, const std::string& b) { return f_->fop("fsub", a, b); }
  std::string mul(const std::string& a, const std::string& b) { return f_->fop("fmul", a, b); }
  std::string div(const std::string& a, const std::string& b) { return f_->fop("fdiv", a, b); }
  std::string selectIf(const std::string& cond, const std::string& a, const std::string& b) {
    return f_->select(cond, a, b);
  }
  std::string whereVisible(const std::string& x, const std::string& otherwise) {
    return el_.vis.empty() ? x : f_->select(el_.vis, x, otherwise);
  }
  std::string isZero(const std::string& x) { return f_->fcmp("oeq", x, c(0)); }
  std::string sigmoid(const std::string& x) {
    std::string e = f_->intrinsic("exp", f_->fneg(f_->intrinsic("fabs", x)));
    std::string denom = add(c(1), e);
    return selectIf(f_->fcmp("oge", x, c(0)), div(c(1), denom), div(e, denom));
  }
  // max(x, 0) + log1p(exp(-|x|)), with log1p(e) = log(u) e / (u - 1), u = 1 + e (exact to
  // a few ulps, from the intrinsics every target has: LLVM's log and exp, and CUDA's logf
  // and expf; a log1p call would be one more libm entry point per backend, and the CPU
  // kernels no longer use a vector math library, for which this form was first chosen).
  // With approximate math: log1p(e) = log(1 + e) for e >= 1/64 (the approximate log's 2^-21
  // absolute error is then under 2^-15 relative) and e (1 - e/2 + e^2/3) below (error under
  // e^3/4 <= 2^-20 relative): a few instructions instead of an exact log and a division.
  std::string softplus(const std::string& x) {
    std::string pos = selectIf(f_->fcmp("ogt", x, c(0)), x, c(0));
    std::string e = f_->intrinsic("exp", f_->fneg(f_->intrinsic("fabs", x)));
    std::string u = add(c(1), e);
    if (f_->approximateMath()) {
      std::string series = mul(e, add(c(1), mul(e, add(c(-0.5), mul(e, c(1.0 / 3.0))))));
      std::string logged = f_->intrinsic("log_approx", u);
      return add(pos, selectIf(f_->fcmp("olt", e, c(1.0 / 64.0)), series, logged));
    }
    std::string log1p = selectIf(f_->fcmp("oeq", u, c(1)), e, div(mul(f_->intrinsic("log", u), e), sub(u, c(1))));
    return add(pos, log1p);
  }
  std::string libm(const char* name) const { return real_ == "float" ? std::string(name) + "f" : name; }
  std::string power(const std::string& x, double p) {
    if (std::floor(p) == p && std::fabs(p) <= 256) return f_->powi(x, static_cast<int>(p));
    return f_->intrinsic2("pow", x, c(p));
  }
  std::string stdMax(const std::string& a, const std::string& b) { return selectIf(f_->fcmp("olt", a, b), b, a); }
  std::string stdMin(const std::string& a, const std::string& b) { return selectIf(f_->fcmp("olt", b, a), b, a); }
  // The IR's max and min (ScalarOps.cpp): NaN when either operand is NaN, where the select
  // of stdMax keeps whichever operand comes first.
  std::string isNan(const std::string& x) { return f_->fcmp("une", x, x); }
  std::string nanMax(const std::string& a, const std::string& b) { return selectIf(isNan(b), b, stdMax(a, b)); }
  std::string nanMin(const std::string& a, const std::string& b) { return selectIf(isNan(b), b, stdMin(a, b)); }
  // *ptr += value
  void increment(const std::string& ptr, const std::string& value) {
    f_->storeReal(add(f_->loadReal(ptr), value), ptr);
  }
  // dst[col] += a * src[col] for col in [0, cols)
  void axpy(const std::string& dst, const std::string& a, const std::string& src, const std::string& cols) {
    f_->loop("0", cols, [&](const std::string& col) {
      increment(f_->realAt(dst, col), mul(a, f_->loadReal(f_->realAt(src, col))));
    });
  }
  // row[col] *= factor for col in [0, cols)
  void scaleRow(const std::string& row, const std::string& factor, const std::string& cols) {
    f_->loop("0", cols, [&](const std::string& col) {
      std::string p = f_->realAt(row, col);
      f_->storeReal(mul(f_->loadReal(p), factor), p);
    });
  }

  double constantOf(NodeId id) const {
    const Node& n = g_.node(id);
    ATTN_INTERNAL_ASSERT(n.op == Op::Const, "expected a constant");
    return n.value;
  }

  void loadArguments(KernelWriter& f) {
    f_ = &f;
    q_ = f.arg(kQ, "ptr");
    k_ = f.arg(kK, "ptr");
    v_ = f.arg(kV, "ptr");
    o_ = f.arg(kO, "ptr");
    stats_ = f.arg(kStats, "ptr");
    rq_ = f.arg(kRq, "ptr");
    rk_ = f.arg(kRk, "ptr");
    dout_ = f.arg(kDout, "ptr");
    adj_ = f.arg(kAdj, "ptr");
    lq_ = f.arg(kLq, "i64");
    lk_ = f.arg(kLk, "i64");
    d_ = sizes_.d > 0 ? KernelWriter::i64(sizes_.d) : f.arg(kD, "i64");
    dv_ = sizes_.dv > 0 ? KernelWriter::i64(sizes_.dv) : f.arg(kDvDim, "i64");
    kt_.clear();
    vt_.clear();
  }

  // Pointer to real `index` of the row-major matrix `base` with `cols` columns.
  std::string at(const std::string& base, const std::string& rowIndex, const std::string& cols,
                 const std::string& col) {
    return f_->realAt(base, f_->iop("add nsw", f_->iop("mul nsw", rowIndex, cols), col));
  }
  std::string statSlot(const std::string& r, int s, int slot) {
    return at(stats_, r, KernelWriter::i64(ns_), KernelWriter::i64(2 * s + slot));
  }
  std::string adjSlot(const std::string& r, int k) {
    return at(adj_, r, KernelWriter::i64(src_.adjointSlots), KernelWriter::i64(k));
  }

  // Sets up query row r: its absolute position and visible key range.
  void enterRow(const std::string& r) {
    row_ = RowContext{};
    row_.r = r;
    row_.i = f_->iop("add nsw", f_->iop("sub nsw", lk_, lq_), r);
    std::string next = f_->iop("add nsw", row_.i, "1");
    switch (g_.mask) {
      case ir::MaskKind::Full:
      case ir::MaskKind::Expr:
        row_.lo = "0";
        row_.hi = lk_;
        break;
      case ir::MaskKind::Causal:
        row_.lo = "0";
        row_.hi = f_->imin(next, lk_);
        break;
      case ir::MaskKind::Window:
        row_.lo = f_->imax("0", f_->iop("sub nsw", row_.i, KernelWriter::i64(windowLow_)));
        row_.hi = f_->imin(next, lk_);
        break;
    }
    row_.n = f_->sitofp(f_->imax("0", f_->iop("sub nsw", row_.hi, row_.lo)));
  }

  bool readable(NodeId id) const { return pass_ == 0 || avail_[static_cast<size_t>(id)] <= pass_; }

  // Can `id` be evaluated at all (reductions and normalisations only through statistics)?
  bool evaluable(NodeId id) const {
    const Node& n = g_.node(id);
    if (auto it = statOf_.find(id); it != statOf_.end()) {
      if (!readable(id)) return false;
      return plan_.statistics[static_cast<size_t>(it->second)].kind != Kind::Normaliser || pass_ == 0;
    }
    if (ir::isRowReduction(n.op) || n.op == Op::Normalize) return false;
    for (NodeId o : n.operands)
      if (!evaluable(o)) return false;
    return readable(id);
  }

  // Loads what a row reads: statistic slots, finished row adjoints, row values.
  void prefetchRow() {
    for (size_t s = 0; s < plan_.statistics.size(); ++s) {
      const RowStatistic& st = plan_.statistics[s];
      if (pass_ != 0 && st.pass >= pass_) continue;
      row_.slots[static_cast<int>(s)] = {f_->loadReal(statSlot(row_.r, static_cast<int>(s), 0)),
                                          f_->loadReal(statSlot(row_.r, static_cast<int>(s), 1))};
    }
    if (pass_ == 0)
      for (size_t k = 0; k < bwd_.adjoints.size(); ++k)
        if (bwd_.adjoints[k].level < level_)
          row_.adjoints[static_cast<int>(k)] = f_->loadReal(adjSlot(row_.r, static_cast<int>(k)));
    if (src_.needsQueryNorm && !row_.memo.count(-2)) row_.memo[-2] = f_->loadReal(f_->realAt(rq_, row_.r));
    for (NodeId id : live_) {
      const Node& n = g_.node(id);
      if ((n.kind == ValueKind::Row || n.kind == ValueKind::Constant) && evaluable(id)) value(id);
    }
  }

  // ---------------------------------------------------------------- values
  std::string value(NodeId id) {
    if (auto it = row_.memo.find(id); it != row_.memo.end()) return it->second;
    if (auto it = el_.memo.find(id); it != el_.memo.end()) return it->second;
    const Node& n = g_.node(id);
    std::string v = compute(id, n);
    bool perRow = n.kind == ValueKind::Row || n.kind == ValueKind::Constant;
    if (el_.active && !perRow) v = atExtremes(id, v);
    (perRow && !el_.active ? row_.memo : el_.memo)[id] = v;
    return v;
  }

  // The operand x of a finished rowmax/rowmin, at the key where forward found the extreme, is
  // the saved extreme itself: so x - rowmax(x) is exactly 0 there in every kernel, as in the
  // maths. A recomputed x can differ from the saved value in its last bits (a vectorised exp
  // or log, another summation order), and a kink at 0 (relu, abs, a comparison) would then
  // fall on either side, differently in each kernel.
  std::string atExtremes(NodeId id, std::string v) {
    auto it = extremesOf_.find(id);
    if (it == extremesOf_.end()) return v;
    for (int s : it->second) {
      const RowStatistic& st = plan_.statistics[static_cast<size_t>(s)];
      if (pass_ != 0 && st.pass >= pass_) continue;  // not finished yet
      std::string here = f_->fcmp("oeq", add(f_->sitofp(el_.j), c(1)), slots(s).second);
      v = selectIf(here, statisticValue(s, st.node), v);
    }
    return v;
  }

  std::string compute(NodeId id, const Node& n) {
    if (auto it = statOf_.find(id); it != statOf_.end()) return statisticValue(it->second, id);
    switch (n.op) {
      case Op::Const: return c(n.value);
      case Op::RowIndex: return f_->sitofp(row_.i);
      case Op::KeyIndex: return f_->sitofp(el_.j);
      case Op::RowCount: return row_.n;
      case Op::KeyCount: return f_->sitofp(lk_);
      case Op::HeadDim: return f_->sitofp(d_);
      case Op::Dot: return dotValue(id);
      default: break;
    }
    ATTN_INTERNAL_ASSERT(ir::isElementwise(n.op), std::string("scalar codegen: cannot evaluate ") + ir::opName(n.op));
    std::vector<std::string> a;
    for (NodeId o : n.operands) a.push_back(value(o));
    // x - rowmax(x) (softmax's shift): shifted by 0 where every visible x is -inf, so the
    // row's exp(x - rowmax(x)) is 0, not NaN (IR.h; the reference does the same).
    if (n.op == Op::Sub && g_.node(n.operands[1]).op == Op::RowMax && g_.node(n.operands[1]).operands[0] == n.operands[0])
      a[1] = selectIf(f_->fcmp("oeq", a[1], negInf()), c(0), a[1]);
    return elementwise(n, a);
  }

  std::pair<std::string, std::string> slots(int s) {
    auto it = row_.slots.find(s);
    ATTN_INTERNAL_ASSERT(it != row_.slots.end(), "statistic read before it is finished");
    return it->second;
  }

  std::string normalisedValue(const NormalizeForm& form, int s) {
    auto [sum, m] = slots(s);
    switch (form.kind) {
      case NormalizeForm::Kind::Plain: {
        std::string x = value(form.operand);
        return selectIf(isZero(sum), c(0), div(x, sum));
      }
      case NormalizeForm::Kind::Exp: {
        std::string e = expOperand(form);
        return selectIf(isZero(sum), c(0), div(f_->intrinsic("exp", sub(e, m)), sum));
      }
      case NormalizeForm::Kind::Power: {
        std::string b = value(form.operand);
        std::string bad = f_->orBool(isZero(sum), isZero(m));
        return selectIf(bad, c(0), div(power(div(b, m), constantOf(form.power)), sum));
      }
      case NormalizeForm::Kind::None: break;
    }
    ATTN_INTERNAL_ERROR("not a normalisation");
  }

  std::string expOperand(const NormalizeForm& form) {
    std::string e = value(form.operand);
    return form.exp2 ? mul(e, c(M_LN2)) : e;
  }

  std::string statisticValue(int s, NodeId id) {
    const RowStatistic& st = plan_.statistics[static_cast<size_t>(s)];
    NormalizeForm form = normalizeForm(g_, id);
    if (form.kind != NormalizeForm::Kind::None) return normalisedValue(form, s);
    auto [a, b] = slots(s);
    switch (st.kind) {
      case Kind::Sum: case Kind::Count: return a;
      case Kind::Mean: return selectIf(isZero(b), c(0), div(a, b));
      // Slot 1 says whether the row saw a key: a row of -inf values has rowmax -inf, no key 0.
      case Kind::Max: case Kind::Min: return selectIf(isZero(b), c(0), a);
      default: break;
    }
    ATTN_INTERNAL_ERROR("unreadable statistic");
  }

  VectorForm vectorForm(NodeId id) const {
    const Node& n = g_.node(id);
    switch (n.op) {
      case Op::Query: case Op::Key: return {};
      case Op::VecScale: {
        VectorForm f = vectorForm(n.operands[0]);
        f.factors.push_back({n.operands[1], false});
        return f;
      }
      case Op::L2Norm: {
        VectorForm f = vectorForm(n.operands[0]);
        f.normalised = true;
        for (auto& factor : f.factors) factor.second = true;
        return f;
      }
      default: ATTN_INTERNAL_ERROR(std::string("scalar codegen: not a vector op: ") + ir::opName(n.op));
    }
  }

  std::string keyNorm() {
    auto it = el_.memo.find(-3);
    if (it != el_.memo.end()) return it->second;
    return el_.memo[-3] = f_->loadReal(f_->realAt(rk_, el_.j));
  }

  // The product of a dot's scalar factors (not the norms).
  std::string dotFactor(NodeId dot) {
    const auto& [qf, kf] = dots_.at(dot);
    std::string product = c(1);
    for (const auto* form : {&qf, &kf})
      for (auto [node, sign] : form->factors) {
        std::string x = value(node);
        if (sign) x = elementwiseOp(Op::Sign, {x});
        product = mul(product, x);
      }
    return product;
  }

  std::string dotValue(NodeId id) {
    const auto& [qf, kf] = dots_.at(id);
    std::string v = mul(el_.s, dotFactor(id));
    if (qf.normalised) v = mul(v, row_.memo.at(-2));
    if (kf.normalised) v = mul(v, keyNorm());
    return v;
  }

  std::string elementwise(const Node& n, const std::vector<std::string>& a) {
    if (n.op == Op::Pow && g_.node(n.operands[1]).op == Op::Const) return power(a[0], g_.node(n.operands[1]).value);
    return elementwiseOp(n.op, a);
  }

  // The IR's meaning of each elementwise op (compiler/ScalarOps.cpp), in LLVM IR.
  std::string elementwiseOp(Op op, const std::vector<std::string>& a) {
    KernelWriter& f = *f_;
    auto b2r = [&](const std::string& i1) { return f.bool2real(i1); };
    switch (op) {
      case Op::Neg: return f.fneg(a[0]);
      case Op::Not: return b2r(isZero(a[0]));
      case Op::Add: return add(a[0], a[1]);
      case Op::Sub: return sub(a[0], a[1]);  // x - rowmax(x): see compute
      case Op::Mul: return mul(a[0], a[1]);
      case Op::Div: return div(a[0], a[1]);
      case Op::SafeDiv: return selectIf(isZero(a[1]), c(0), div(a[0], a[1]));
      case Op::Pow: return f.intrinsic2("pow", a[0], a[1]);
      case Op::Min: return nanMin(a[0], a[1]);
      case Op::Max: return nanMax(a[0], a[1]);
      case Op::Clamp: return nanMin(nanMax(a[0], a[1]), a[2]);
      case Op::Lt: return b2r(f.fcmp("olt", a[0], a[1]));
      case Op::Le: return b2r(f.fcmp("ole", a[0], a[1]));
      case Op::Gt: return b2r(f.fcmp("ogt", a[0], a[1]));
      case Op::Ge: return b2r(f.fcmp("oge", a[0], a[1]));
      case Op::Eq: return b2r(f.fcmp("oeq", a[0], a[1]));
      case Op::Ne: return b2r(f.fcmp("une", a[0], a[1]));
      case Op::And: return b2r(f.andBool(f.real2bool(a[0]), f.real2bool(a[1])));
      case Op::Or: return b2r(f.orBool(f.real2bool(a[0]), f.real2bool(a[1])));
      case Op::Select: return selectIf(f.real2bool(a[0]), a[1], a[2]);
      case Op::Exp: return f.intrinsic("exp", a[0]);
      case Op::Log: return f.intrinsic("log", a[0]);
      case Op::Exp2: return f.intrinsic("exp2", a[0]);
      case Op::Log2: return f.intrinsic("log2", a[0]);
      case Op::Sqrt: return f.intrinsic("sqrt", a[0]);
      case Op::Rsqrt: return div(c(1), f.intrinsic("sqrt", a[0]));
      case Op::Abs: return f.intrinsic("fabs", a[0]);
      // 1, -1, or x itself: 0 for 0 and NaN for NaN (IR.h), in two selects (it is also |x|'s
      // derivative, on the backward kernels' register budget).
      case Op::Sign: {
        // sign(NaN) is NaN (IR.h) in forward values. In backward code (pass_ 0) sign is
        // mostly |x|'s derivative, where a NaN x has already made the row's statistics NaN;
        // there the NaN test is left out: it costs the tensor-core backward-rows kernel 36
        // registers and spills (LSSAR, fp16, d = 128; the cuda suite's no-spill check).
        std::string sign = sub(b2r(f.fcmp("ogt", a[0], c(0))), b2r(f.fcmp("olt", a[0], c(0))));
        return pass_ == 0 ? sign : selectIf(isNan(a[0]), a[0], sign);
      }
      case Op::Tanh: return f.call(libm("tanh"), a[0]);
      case Op::Sigmoid: return sigmoid(a[0]);
      case Op::Softplus: return softplus(a[0]);
      case Op::Relu: return selectIf(f.fcmp("ole", a[0], c(0)), c(0), a[0]);  // NaN stays NaN
      case Op::Relu6: return nanMin(nanMax(a[0], c(0)), c(6));
      // x Phi(x) with Phi(x) = erfc(-x/sqrt 2) / 2, not (1 + erf(x/sqrt 2)) / 2: for x < -5 the
      // latter is a difference of nearly equal numbers and loses every digit (gelu(-8) = 0),
      // which a normalisation of such values then divides by.
      case Op::Gelu: return mul(mul(c(0.5), a[0]), f.call(libm("erfc"), mul(a[0], c(-M_SQRT1_2))));
      // (1 + tanh u) / 2 = sigmoid(2u), without the same cancellation.
      case Op::GeluTanh: {
        std::string x3 = mul(mul(a[0], a[0]), a[0]);
        std::string inner = mul(c(2 * std::sqrt(2.0 / M_PI)), add(a[0], mul(c(0.044715), x3)));
        return mul(a[0], sigmoid(inner));
      }
      case Op::Silu: return mul(a[0], sigmoid(a[0]));
      case Op::Mish: return mul(a[0], f.call(libm("tanh"), softplus(a[0])));
      default: break;
    }
    ATTN_INTERNAL_ERROR(std::string("scalar codegen: not an elementwise op: ") + ir::opName(op));
  }

  // ------------------------------------------------------------- derivatives
  // a·∂u/∂operand_k for the carrying operands of elementwise node u with adjoint a.
  std::vector<std::pair<int, std::string>> partials(NodeId id, const std::string& a) {
    const Node& n = g_.node(id);
    std::vector<std::pair<int, std::string>> out;
    auto carries = [&](int k) {
      return bwd_.carriesGradient[static_cast<size_t>(n.operands[static_cast<size_t>(k)])];
    };
    auto x = [&](int k) { return value(n.operands[static_cast<size_t>(k)]); };
    auto give = [&](int k, const std::function<std::string()>& d) {
      if (carries(k)) out.push_back({k, d()});
    };
    KernelWriter& f = *f_;
    // ATen's rule for maximum(a, b): all to the larger, half each on a tie.
    auto maxRule = [&](const std::string& l, const std::string& r, const std::string& g, bool isMax) {
      std::string half = mul(g, c(0.5));
      std::string lWins = f.fcmp(isMax ? "ogt" : "olt", l, r), tie = f.fcmp("oeq", l, r);
      std::string toL = selectIf(lWins, g, selectIf(tie, half, c(0)));
      std::string rWins = f.fcmp(isMax ? "olt" : "ogt", l, r);
      std::string toR = selectIf(rWins, g, selectIf(tie, half, c(0)));
      return std::make_pair(toL, toR);
    };
    switch (n.op) {
      case Op::Neg: give(0, [&] { return f.fneg(a); }); break;
      case Op::Add: give(0, [&] { return a; }); give(1, [&] { return a; }); break;
      case Op::Sub: give(0, [&] { return a; }); give(1, [&] { return f.fneg(a); }); break;
      case Op::Mul: give(0, [&] { return mul(a, x(1)); }); give(1, [&] { return mul(a, x(0)); }); break;
      case Op::Div:
        give(0, [&] { return div(a, x(1)); });
        give(1, [&] { return f.fneg(div(mul(a, value(id)), x(1))); });
        break;
      case Op::SafeDiv: {
        give(0, [&] { return selectIf(isZero(x(1)), c(0), div(a, x(1))); });
        give(1, [&] { return selectIf(isZero(x(1)), c(0), f.fneg(div(mul(a, value(id)), x(1)))); });
        break;
      }
      case Op::Pow: {
        if (g_.node(n.operands[1]).op == Op::Const) {
          double p = g_.node(n.operands[1]).value;
          give(0, [&] { return p == 0 ? c(0) : mul(mul(a, c(p)), power(x(0), p - 1)); });
        } else {
          give(0, [&] {
            return selectIf(isZero(x(1)), c(0), mul(mul(a, x(1)), f.intrinsic2("pow", x(0), sub(x(1), c(1)))));
          });
          give(1, [&] {
            std::string zeroBase = f.andBool(isZero(x(0)), f.fcmp("oge", x(1), c(0)));
            return selectIf(zeroBase, c(0), mul(mul(a, value(id)), f.intrinsic("log", x(0))));
          });
        }
        break;
      }
      case Op::Min: case Op::Max: {
        auto [l, r] = maxRule(x(0), x(1), a, n.op == Op::Max);
        give(0, [&] { return l; });
        give(1, [&] { return r; });
        break;
      }
      case Op::Clamp: {  // min(max(x, lo), hi)
        std::string m = stdMax(x(0), x(1));
        auto [toM, toHi] = maxRule(m, x(2), a, false);
        auto [toX, toLo] = maxRule(x(0), x(1), toM, true);
        give(0, [&] { return toX; });
        give(1, [&] { return toLo; });
        give(2, [&] { return toHi; });
        break;
      }
      case Op::Select:
        give(1, [&] { return selectIf(f.real2bool(x(0)), a, c(0)); });
        give(2, [&] { return selectIf(f.real2bool(x(0)), c(0), a); });
        break;
      case Op::Exp: give(0, [&] { return mul(a, value(id)); }); break;
      case Op::Exp2: give(0, [&] { return mul(mul(a, value(id)), c(M_LN2)); }); break;
      case Op::Log: give(0, [&] { return div(a, x(0)); }); break;
      case Op::Log2: give(0, [&] { return div(a, mul(x(0), c(M_LN2))); }); break;
      case Op::Sqrt: give(0, [&] { return div(a, mul(c(2), value(id))); }); break;
      case Op::Rsqrt: {
        give(0, [&] {
          std::string y = value(id);
          return mul(mul(c(-0.5), a), mul(mul(y, y), y));
        });
        break;
      }
      case Op::Abs: give(0, [&] { return mul(a, elementwiseOp(Op::Sign, {x(0)})); }); break;
      case Op::Tanh: give(0, [&] {
          std::string y = value(id);
          return mul(a, sub(c(1), mul(y, y)));
        });
        break;
      case Op::Sigmoid: give(0, [&] {
          std::string y = value(id);
          return mul(a, mul(y, sub(c(1), y)));
        });
        break;
      case Op::Softplus: give(0, [&] { return mul(a, sigmoid(x(0))); }); break;
      case Op::Relu: give(0, [&] { return selectIf(f.fcmp("ogt", x(0), c(0)), a, c(0)); }); break;
      case Op::Relu6: give(0, [&] {
          std::string in = f.andBool(f.fcmp("oge", x(0), c(0)), f.fcmp("ole", x(0), c(6)));
          return selectIf(in, a, c(0));
        });
        break;
      case Op::Gelu: give(0, [&] {
          std::string xv = x(0);
          std::string cdf = mul(c(0.5), f.call(libm("erfc"), mul(xv, c(-M_SQRT1_2))));  // as forward
          std::string pdf = mul(c(1 / std::sqrt(2 * M_PI)), f.intrinsic("exp", mul(c(-0.5), mul(xv, xv))));
          return mul(a, add(cdf, mul(xv, pdf)));
        });
        break;
      case Op::GeluTanh: give(0, [&] {
          std::string xv = x(0);
          const double k = std::sqrt(2.0 / M_PI);
          std::string x2 = mul(xv, xv);
          // sigma = sigmoid(2u) = (1 + tanh u) / 2, 1 - tanh^2 u = 4 sigma (1 - sigma) (as forward).
          std::string sg = sigmoid(mul(c(2 * k), add(xv, mul(c(0.044715), mul(x2, xv)))));
          std::string dInner = mul(c(k), add(c(1), mul(c(3 * 0.044715), x2)));
          std::string d = add(sg, mul(mul(c(2), xv), mul(mul(sg, sub(c(1), sg)), dInner)));
          return mul(a, d);
        });
        break;
      case Op::Silu: give(0, [&] {
          std::string s = sigmoid(x(0));
          return mul(a, mul(s, add(c(1), mul(x(0), sub(c(1), s)))));
        });
        break;
      case Op::Mish: give(0, [&] {
          std::string t = f.call(libm("tanh"), softplus(x(0)));
          return mul(a, add(t, mul(mul(x(0), sub(c(1), mul(t, t))), sigmoid(x(0)))));
        });
        break;
      default: break;  // comparisons, logic, sign: no gradient
    }
    return out;
  }

  // The finished row adjoint k of the current row.
  std::string rowAdjoint(int k) {
    auto it = row_.adjoints.find(k);
    ATTN_INTERNAL_ASSERT(it != row_.adjoints.end(), "row adjoint read before it is finished");
    return it->second;
  }

  bool computable(NodeId x, int pass) const {
    int p = bwd_.adjointPass[static_cast<size_t>(x)];
    return p > 0 && p <= pass;
  }

  struct WalkSinks {
    std::map<int, std::string> accumulators;  // row adjoint -> alloca summing it (this pass)
    std::string dS, rqBar, rkBar;              // gradient pass: values for this element
  };

  void accumulate(WalkSinks& sinks, int k, const std::string& x) {
    auto it = sinks.accumulators.find(k);
    if (it == sinks.accumulators.end()) return;
    increment(it->second, whereVisible(x, c(0)));
  }

  // Reverse mode over one score element in backward pass `pass` (rowPasses+1: gradient).
  void reverseWalk(int pass, const std::string& outAdjoint, WalkSinks& sinks) {
    const bool gradient = pass == bwd_.rowPasses + 1;
    std::map<NodeId, std::string> adj;
    adj[g_.out] = outAdjoint;
    auto addTo = [&](NodeId x, const std::string& v) {
      auto it = adj.find(x);
      adj[x] = it == adj.end() ? v : add(it->second, v);
    };
    std::string dS = c(0), rq = c(0), rk = c(0);
    // An output that is a row value (w_ij = r_i for every key: `exp(rowsum(s)) * (c ? 1 : j)`
    // once the constant condition is folded) has no score element to walk: its adjoint
    // sum_j adj(w_ij) is the row adjoint of r itself, summed here.
    if (g_.node(g_.out).kind == ValueKind::Row && bwd_.carriesGradient[static_cast<size_t>(g_.out)]) {
      auto k = bwd_.adjointOf.find(g_.out);
      if (k != bwd_.adjointOf.end() && bwd_.adjoints[static_cast<size_t>(k->second)].level == pass)
        accumulate(sinks, k->second, outAdjoint);
    }
    for (auto it = live_.rbegin(); it != live_.rend(); ++it) {
      const NodeId id = *it;
      const Node& n = g_.node(id);
      if (!bwd_.carriesGradient[static_cast<size_t>(id)]) continue;
      if (n.kind == ValueKind::Row && ir::isRowReduction(n.op)) {
        auto k = bwd_.adjointOf.find(id);
        if (k == bwd_.adjointOf.end() || bwd_.adjoints[static_cast<size_t>(k->second)].level >= pass) continue;
        NodeId x = n.operands[0];
        if (!computable(x, pass)) continue;
        std::string R = rowAdjoint(k->second);
        if (n.op == Op::RowSum) addTo(x, R);
        else if (n.op == Op::RowMean) {
          std::string count = slots(statOf_.at(id)).second;
          addTo(x, selectIf(isZero(count), c(0), div(R, count)));
        }
        // rowmax/rowmin: all of R to the key forward found the extreme at (slot 1), not
        // to keys whose recomputed value equals the saved one: a recomputation may round
        // differently (a vectorised exp, another summation order of the dots).
        else addTo(x, selectIf(f_->fcmp("oeq", add(f_->sitofp(el_.j), c(1)), slots(statOf_.at(id)).second), R, c(0)));
        continue;
      }
      if (n.kind != ValueKind::Score || !computable(id, pass)) continue;
      auto found = adj.find(id);
      if (found == adj.end()) continue;
      const std::string a = found->second;
      NormalizeForm form = normalizeForm(g_, id);
      if (form.kind != NormalizeForm::Kind::None) {
        const int k = bwd_.adjointOf.at(id);
        const RowAdjoint& A = bwd_.adjoints[static_cast<size_t>(k)];
        // A shifted T (RowAdjoint::Shift) is summed and used relative to c, itself summed the
        // plain way a pass earlier unless it is the identity's dO·o.
        std::string shift;
        if (A.shifted) {
          const int ks = bwd_.shiftOf.at(id);
          const RowAdjoint& S = bwd_.adjoints[static_cast<size_t>(ks)];
          if (!S.identity && S.level == pass) accumulate(sinks, ks, mul(a, value(id)));
          if (S.level < pass) shift = rowAdjoint(ks);
        }
        if (!A.identity && A.level == pass)
          accumulate(sinks, k, A.shifted ? mul(value(id), sub(a, shift)) : mul(a, value(id)));
        NodeId x = form.operand;
        if (!bwd_.carriesGradient[static_cast<size_t>(x)] || !computable(x, pass)) continue;
        std::string T = rowAdjoint(k);
        // adj(w) - sign T, or (adj(w) - sign c) - sign (T - c) when shifted.
        auto minusT = [&](const std::string& sign) {
          if (!A.shifted) return sub(a, mul(sign, T));
          return sub(sub(a, mul(sign, shift)), mul(sign, T));
        };
        const int s = statOf_.at(id);
        auto [sum, m] = slots(s);
        switch (form.kind) {
          case NormalizeForm::Kind::Plain: {
            std::string xv = value(x);
            std::string d = minusT(elementwiseOp(Op::Sign, {xv}));
            addTo(x, selectIf(isZero(sum), c(0), div(d, sum)));
            break;
          }
          case NormalizeForm::Kind::Exp: {
            std::string d = mul(value(id), sub(a, T));
            addTo(x, form.exp2 ? mul(d, c(M_LN2)) : d);
            break;
          }
          case NormalizeForm::Kind::Power: {
            const double p = constantOf(form.power);
            std::string ratio = div(value(x), m);
            std::string t = power(ratio, p);
            std::string d = minusT(elementwiseOp(Op::Sign, {t}));
            std::string bad = f_->orBool(isZero(sum), isZero(m));
            std::string chain = div(mul(c(p), power(ratio, p - 1)), mul(m, sum));
            addTo(x, selectIf(bad, c(0), mul(d, chain)));
            break;
          }
          case NormalizeForm::Kind::None: break;
        }
        continue;
      }
      if (n.op == Op::Dot) {
        const auto& [qf, kf] = dots_.at(id);
        std::string rqv = qf.normalised ? row_.memo.at(-2) : c(1);
        std::string rkv = kf.normalised ? keyNorm() : c(1);
        // A scale factor that depends on q or k (dot(s·q, k)): s gets a·(the dot without s).
        for (const auto* form : {&qf, &kf})
          for (size_t fi = 0; fi < form->factors.size(); ++fi) {
            auto [node, sign] = form->factors[fi];
            auto ko = bwd_.adjointOf.find(node);
            if (sign || ko == bwd_.adjointOf.end() || bwd_.adjoints[static_cast<size_t>(ko->second)].level != pass)
              continue;
            std::string rest = mul(el_.s, mul(rqv, rkv));
            for (const auto* other : {&qf, &kf})
              for (size_t oi = 0; oi < other->factors.size(); ++oi) {
                if (other == form && oi == fi) continue;
                std::string x = value(other->factors[oi].first);
                if (other->factors[oi].second) x = elementwiseOp(Op::Sign, {x});
                rest = mul(rest, x);
              }
            accumulate(sinks, ko->second, mul(a, rest));
          }
        if (!gradient) continue;
        std::string factor = dotFactor(id);
        dS = add(dS, mul(a, mul(factor, mul(rqv, rkv))));
        if (qf.normalised) rq = add(rq, mul(a, mul(el_.s, mul(factor, rkv))));
        if (kf.normalised) rk = add(rk, mul(a, mul(el_.s, mul(factor, rqv))));
        continue;
      }
      for (auto& [k, contribution] : partials(id, a)) {
        NodeId o = n.operands[static_cast<size_t>(k)];
        const Node& on = g_.node(o);
        if (on.kind == ValueKind::Score) {
          if (computable(o, pass)) addTo(o, contribution);
        } else if (on.kind == ValueKind::Row) {
          auto ko = bwd_.adjointOf.find(o);
          if (ko != bwd_.adjointOf.end() && bwd_.adjoints[static_cast<size_t>(ko->second)].level == pass)
            accumulate(sinks, ko->second, contribution);
        }
      }
    }
    sinks.dS = whereVisible(dS, c(0));
    sinks.rqBar = whereVisible(rq, c(0));
    sinks.rkBar = whereVisible(rk, c(0));
  }

  // ---------------------------------------------------------------- loops
  // With the head dimensions known (specialised kernels), each key block of k (and v) is
  // transposed once into KT [d][64] (VT [dv][64]) for all the rows of the task, and a row's
  // 64 dots become 64-wide vector multiply-adds over the head dimension: no horizontal sums.
  bool transposed() const { return sizes_.d > 0 && sizes_.dv > 0 && sizes_.d <= 256 && sizes_.dv <= 256; }

  // KT[c][jj] = x[kb + jj][c] for the block (0 past the last key).
  void transposeBlock(const std::string& x, int64_t cols, const std::string& kb, const std::string& out) {
    const std::string n = KernelWriter::i64(cols), block = KernelWriter::i64(kKeyBlock);
    f_->loop("0", block, [&](const std::string& jj) {
      std::string j = f_->iop("add nsw", kb, jj);
      std::string inside = f_->icmp("slt", j, lk_);
      std::string row = f_->realAt(x, f_->iop("mul nsw", f_->select(inside, j, "0", "i64"), n));
      f_->loop("0", n, [&](const std::string& col) {
        std::string value = f_->select(inside, f_->loadReal(f_->realAt(row, col)), c(0));
        f_->storeReal(value, f_->realAt(out, f_->iop("add nsw", f_->iop("mul nsw", col, block), jj)));
      });
    });
  }

  // S[jj] = a_row · XT[.][jj] for the whole block.
  void blockDots(const std::string& S, const std::string& arow, const std::string& XT, int64_t cols) {
    const std::string block = KernelWriter::i64(kKeyBlock);
    f_->loop("0", block, [&](const std::string& jj) { f_->storeReal(c(0), f_->realAt(S, jj)); });
    f_->loop("0", KernelWriter::i64(cols), [&](const std::string& col) {
      std::string a = f_->loadReal(f_->realAt(arow, col));
      std::string xrow = f_->realAt(XT, f_->iop("mul nsw", col, block));
      f_->loop("0", block, [&](const std::string& jj) {
        std::string p = f_->realAt(S, jj);
        increment(p, mul(a, f_->loadReal(f_->realAt(xrow, jj))));
      });
    });
  }

  std::string kt_, vt_;  // the transposed blocks (specialised kernels), allocated per function

  // out[j - kb] = a_r · x_j for j in [ja, jb): the row r of `a` (a_cols wide) against the
  // rows j of `x`; through the block transposed into `xt` when there is one.
  void rowDots(const std::string& out, const std::string& a, const std::string& x, const std::string& xt,
               const std::string& cols, int64_t fixedCols, const std::string& kb, const std::string& ja,
               const std::string& jb) {
    std::string arow = f_->realAt(a, f_->iop("mul nsw", row_.r, cols));
    if (!xt.empty()) return blockDots(out, arow, xt, fixedCols);
    f_->loop(ja, jb, [&](const std::string& j) {
      std::string xrow = f_->realAt(x, f_->iop("mul nsw", j, cols));
      std::string acc = f_->variable(real_);
      f_->storeReal(c(0), acc);
      f_->loop("0", cols, [&](const std::string& col) {
        std::string prod = mul(f_->loadReal(f_->realAt(arow, col)), f_->loadReal(f_->realAt(xrow, col)));
        increment(acc, prod);
      });
      f_->storeReal(f_->loadReal(acc), f_->realAt(out, f_->iop("sub nsw", j, kb)));
    });
  }

  // The raw dots q_r·k_j into S.
  void rawDots(const std::string& S, const std::string& kb, const std::string& ja, const std::string& jb) {
    rowDots(S, q_, k_, kt_, d_, sizes_.d, kb, ja, jb);
  }

  // g_j = dO_r·v_j into G.
  void outputDots(const std::string& G, const std::string& kb, const std::string& ja, const std::string& jb) {
    rowDots(G, dout_, v_, vt_, dv_, sizes_.dv, kb, ja, jb);
  }

  // Enters key j of the block starting at kb (S: the raw dots).
  void enterElement(const std::string& j, const std::string& kb, const std::string& S) {
    el_ = ElementContext{};
    el_.active = true;
    el_.j = j;
    el_.s = f_->loadReal(f_->realAt(S, f_->iop("sub nsw", j, kb)));
    if (g_.mask == ir::MaskKind::Expr) el_.vis = f_->real2bool(value(g_.maskExpr));
  }
  void leaveElement() { el_ = ElementContext{}; }

  // for kb over key blocks of [j0, j1): for r in [r0, r1): body(ja, jb, kb) on the row's
  // visible keys of the block, skipping empty ones.
  void blockLoop(const std::string& r0, const std::string& r1, const std::string& j0, const std::string& j1,
                 const std::function<void(const std::string&, const std::string&, const std::string&)>& body) {
    f_->loop(j0, j1, [&](const std::string& kb) {
      if (!kt_.empty()) transposeBlock(k_, sizes_.d, kb, kt_);
      if (!vt_.empty()) transposeBlock(v_, sizes_.dv, kb, vt_);
      f_->loop(r0, r1, [&](const std::string& r) {
        enterRow(r);
        std::string ja = f_->imax(row_.lo, kb);
        std::string jb = f_->imin(f_->imin(row_.hi, f_->iop("add nsw", kb, KernelWriter::i64(kKeyBlock))), j1);
        f_->ifThen(f_->icmp("slt", ja, jb), [&] { body(ja, jb, kb); });
      });
    }, kKeyBlock);
  }

  // ---------------------------------------------------------------- forward
  void emitForward(KernelWriter& f) {
    loadArguments(f);
    if (transposed()) kt_ = f.variable(real_, static_cast<int>(sizes_.d * kKeyBlock));
    const std::string r0 = f.arg(kR0, "i64"), r1 = f.arg(kR1, "i64");
    const OutputAccumulation& out = plan_.output;
    const int last = static_cast<int>(plan_.passes.size());
    int outStat = -1;
    if (out.form != OutputAccumulation::Form::Direct) {
      for (size_t s = 0; s < plan_.statistics.size(); ++s)
        if (plan_.statistics[s].kind == Kind::Normaliser) outStat = static_cast<int>(s);
      ATTN_INTERNAL_ASSERT(outStat >= 0 && plan_.statistics[static_cast<size_t>(outStat)].pass == last,
                           "the output's normaliser is not accumulated in the last pass");
    }
    // Initialise the rows' statistics and o.
    f.loop(r0, r1, [&](const std::string& r) {
      for (size_t s = 0; s < plan_.statistics.size(); ++s) {
        Kind kind = plan_.statistics[s].kind;
        double first = kind == Kind::Max ? -INFINITY : kind == Kind::Min ? INFINITY : 0;
        bool expForm = kind == Kind::OnlineExp || (static_cast<int>(s) == outStat && out.form == OutputAccumulation::Form::OnlineExp);
        f.storeReal(c(first), statSlot(r, static_cast<int>(s), 0));
        f.storeReal(c(expForm ? -INFINITY : 0), statSlot(r, static_cast<int>(s), 1));
      }
      f.loop("0", dv_, [&](const std::string& col) { f.storeReal(c(0), at(o_, r, dv_, col)); });
    });
    const std::string S = f.variable(real_, kKeyBlock);
    const std::string W = f.variable(real_, kKeyBlock);
    // Expression masks: which keys of the block the row sees. The output skips the others:
    // their weight is 0, but 0 times a NaN or inf in v would reach a row that cannot see it.
    const std::string VIS = g_.mask == ir::MaskKind::Expr ? f.variable(real_, kKeyBlock) : "";
    std::map<int, std::string> buffers;  // online statistic -> its operand per key
    for (size_t s = 0; s < plan_.statistics.size(); ++s) buffers[static_cast<int>(s)] = f.variable(real_, kKeyBlock);
    // The last key any row of the task sees.
    std::string keyEnd = lk_;
    if (g_.mask == ir::MaskKind::Causal || g_.mask == ir::MaskKind::Window)
      keyEnd = f.imin(lk_, f.iop("add nsw", f.iop("sub nsw", lk_, lq_), r1));

    for (const KeyPass& kp : plan_.passes) {
      pass_ = kp.index;
      blockLoop(r0, r1, "0", keyEnd, [&](const std::string& ja, const std::string& jb, const std::string& kb) {
        prefetchRow();
        rawDots(S, kb, ja, jb);
        // Simple accumulators live in allocas for the block.
        std::map<int, std::pair<std::string, std::string>> acc;
        std::vector<int> online;
        for (const RowStatistic& st : kp.produces) {
          int s = statOf_.at(st.node);
          bool isOnline = st.kind == Kind::OnlineExp || st.kind == Kind::OnlinePower ||
                          (st.kind == Kind::Normaliser && out.form != OutputAccumulation::Form::DeferredDivision);
          if (isOnline) {
            online.push_back(s);
            continue;
          }
          std::string a0 = f.variable(real_), a1 = f.variable(real_);
          f.storeReal(f.loadReal(statSlot(row_.r, s, 0)), a0);
          f.storeReal(f.loadReal(statSlot(row_.r, s, 1)), a1);
          acc[s] = {a0, a1};
        }
        f.loop(ja, jb, [&](const std::string& j) {
          enterElement(j, kb, S);
          std::string index = f.iop("sub nsw", j, kb);
          for (const RowStatistic& st : kp.produces) {
            int s = statOf_.at(st.node);
            if (st.kind == Kind::Normaliser) {
              if (out.form == OutputAccumulation::Form::DeferredDivision) {
                std::string x = value(out.value);
                auto [a0, a1] = acc.at(s);
                increment(a0, whereVisible(f.intrinsic("fabs", x), c(0)));
                f.storeReal(whereVisible(x, c(0)), f.realAt(W, index));
              } else {
                storeOnlineOperand(out.form == OutputAccumulation::Form::OnlineExp, out.value,
                                   out.form == OutputAccumulation::Form::OnlineExp && isExp2(st.node), buffers.at(s), index);
              }
              continue;
            }
            if (st.kind == Kind::OnlineExp || st.kind == Kind::OnlinePower) {
              storeOnlineOperand(st.kind == Kind::OnlineExp, st.operand, isExp2(st.node), buffers.at(s), index);
              continue;
            }
            auto [a0, a1] = acc.at(s);
            std::string cur = f.loadReal(a0);
            switch (st.kind) {
              case Kind::Sum: {
                std::string x = value(st.operand);
                if (g_.node(st.node).op == Op::Normalize) x = f.intrinsic("fabs", x);
                f.storeReal(add(cur, whereVisible(x, c(0))), a0);
                break;
              }
              case Kind::Mean:
                f.storeReal(add(cur, whereVisible(value(st.operand), c(0))), a0);
                increment(a1, whereVisible(c(1), c(0)));
                break;
              case Kind::Count: f.storeReal(add(cur, whereVisible(c(1), c(0))), a0); break;
              case Kind::Max: case Kind::Min: {
                // A NaN wins and stays (the IR's rowmax of a row holding a NaN is NaN).
                std::string x = value(st.operand);
                std::string better = f.fcmp("olt", st.kind == Kind::Max ? cur : x, st.kind == Kind::Max ? x : cur);
                better = f.orBool(better, isNan(x));
                better = f.orBool(better, isZero(f.loadReal(a1)));  // the row's first visible key
                if (!el_.vis.empty()) better = f.andBool(better, el_.vis);
                f.storeReal(selectIf(better, x, cur), a0);
                // Slot 1: 1 + the first visible key attaining the extreme (backward sends the
                // adjoint there), 0 while the row has seen no key: a row of -inf values has
                // rowmax -inf, no key 0.
                f.storeReal(selectIf(better, add(f.sitofp(j), c(1)), f.loadReal(a1)), a1);
                break;
              }
              default: ATTN_INTERNAL_ERROR("unexpected statistic kind");
            }
          }
          if (kp.accumulatesOutput && out.form == OutputAccumulation::Form::Direct)
            f.storeReal(whereVisible(value(out.value), c(0)), f.realAt(W, index));
          if (kp.accumulatesOutput && !VIS.empty()) f.storeReal(f.bool2real(el_.vis), f.realAt(VIS, index));
          leaveElement();
        });
        for (auto& [s, vars] : acc) {
          f.storeReal(f.loadReal(vars.first), statSlot(row_.r, s, 0));
          f.storeReal(f.loadReal(vars.second), statSlot(row_.r, s, 1));
        }
        for (int s : online) {
          const RowStatistic& st = plan_.statistics[static_cast<size_t>(s)];
          bool isOutput = st.kind == Kind::Normaliser;
          bool expForm = isOutput ? out.form == OutputAccumulation::Form::OnlineExp : st.kind == Kind::OnlineExp;
          double p = 0;
          if (!expForm) p = constantOf(isOutput ? out.power : normalizeForm(g_, st.node).power);
          onlineUpdate(s, expForm, p, buffers.at(s), ja, jb, kb, isOutput ? W : "");
        }
        if (kp.accumulatesOutput) {
          std::string orow = f.realAt(o_, f.iop("mul nsw", row_.r, dv_));
          f.loop(ja, jb, [&](const std::string& j) {
            std::string index = f.iop("sub nsw", j, kb);
            auto accumulate = [&] {
              std::string wj = f.loadReal(f.realAt(W, index));
              axpy(orow, wj, f.realAt(v_, f.iop("mul nsw", j, dv_)), dv_);
            };
            if (VIS.empty()) accumulate();
            else f.ifThen(f.real2bool(f.loadReal(f.realAt(VIS, index))), accumulate);
          });
        }
      });
    }
    // Finish: o = scale · acc / normaliser.
    f.loop(r0, r1, [&](const std::string& r) {
      std::string factor = c(out.scale);
      if (outStat >= 0) {
        std::string sum = f.loadReal(statSlot(r, outStat, 0));
        factor = selectIf(isZero(sum), c(0), div(c(out.scale), sum));
      }
      scaleRow(f.realAt(o_, f.iop("mul nsw", r, dv_)), factor, dv_);
    });
    pass_ = 0;
  }

  bool isExp2(NodeId normalize) const {
    NormalizeForm form = normalizeForm(g_, normalize);
    return form.kind == NormalizeForm::Kind::Exp && form.exp2;
  }

  void storeOnlineOperand(bool expForm, NodeId operand, bool exp2, const std::string& buffer, const std::string& index) {
    std::string x = value(operand);
    if (expForm && exp2) x = mul(x, c(M_LN2));
    f_->storeReal(whereVisible(x, expForm ? negInf() : c(0)), f_->realAt(buffer, index));
  }

  // The online update of statistic s over the block: the block's maximum, rescaling of
  // what was accumulated (and of o when `weights` is the output's), then the new terms.
  void onlineUpdate(int s, bool expForm, double p, const std::string& buffer, const std::string& ja,
                    const std::string& jb, const std::string& kb, const std::string& weights) {
    KernelWriter& f = *f_;
    std::string bmax = f.variable(real_);
    f.storeReal(expForm ? negInf() : c(0), bmax);
    f.loop(ja, jb, [&](const std::string& j) {
      std::string x = f.loadReal(f.realAt(buffer, f.iop("sub nsw", j, kb)));
      if (!expForm) x = f.intrinsic("fabs", x);
      f.storeReal(nanMax(f.loadReal(bmax), x), bmax);  // a NaN operand makes the row NaN
    });
    std::string sumPtr = statSlot(row_.r, s, 0), mPtr = statSlot(row_.r, s, 1);
    std::string m = f.loadReal(mPtr), sum = f.loadReal(sumPtr);
    std::string mNew = nanMax(m, f.loadReal(bmax));
    std::string factor;
    if (expForm) factor = selectIf(f.fcmp("oeq", m, negInf()), c(0), f.intrinsic("exp", sub(m, mNew)));
    else factor = selectIf(f.fcmp("ole", m, c(0)), c(0), power(div(m, mNew), p));
    std::string total = f.variable(real_);
    f.storeReal(mul(sum, factor), total);
    if (!weights.empty()) {
      scaleRow(f.realAt(o_, f.iop("mul nsw", row_.r, dv_)), factor, dv_);
    }
    std::string dead = expForm ? f.fcmp("oeq", mNew, negInf()) : f.fcmp("ole", mNew, c(0));
    f.loop(ja, jb, [&](const std::string& j) {
      std::string index = f.iop("sub nsw", j, kb);
      std::string x = f.loadReal(f.realAt(buffer, index));
      std::string t = expForm ? f.intrinsic("exp", sub(x, mNew)) : power(div(x, mNew), p);
      t = selectIf(dead, c(0), t);
      increment(total, expForm ? t : f.intrinsic("fabs", t));
      if (!weights.empty()) f.storeReal(t, f.realAt(weights, index));
    });
    f.storeReal(f.loadReal(total), sumPtr);
    f.storeReal(mNew, mPtr);
  }

  // ---------------------------------------------------------------- backward
  void emitRowPass(KernelWriter& f, int pass) {
    loadArguments(f);
    if (transposed()) {
      kt_ = f.variable(real_, static_cast<int>(sizes_.d * kKeyBlock));
      vt_ = f.variable(real_, static_cast<int>(sizes_.dv * kKeyBlock));
    }
    pass_ = 0;
    level_ = pass;
    const std::string r0 = f.arg(kR0, "i64"), r1 = f.arg(kR1, "i64");
    const std::string S = f.variable(real_, kKeyBlock), G = f.variable(real_, kKeyBlock);
    blockLoop(r0, r1, "0", lk_, [&](const std::string& ja, const std::string& jb, const std::string& kb) {
      prefetchRow();
      rawDots(S, kb, ja, jb);
      outputDots(G, kb, ja, jb);
      WalkSinks sinks;
      for (size_t k = 0; k < bwd_.adjoints.size(); ++k)
        if (bwd_.adjoints[k].level == pass) {
          std::string var = f.variable(real_);
          f.storeReal(f.loadReal(adjSlot(row_.r, static_cast<int>(k))), var);
          sinks.accumulators[static_cast<int>(k)] = var;
        }
      f.loop(ja, jb, [&](const std::string& j) {
        enterElement(j, kb, S);
        reverseWalk(pass, f.loadReal(f.realAt(G, f.iop("sub nsw", j, kb))), sinks);
        leaveElement();
      });
      for (auto& [k, var] : sinks.accumulators) f.storeReal(f.loadReal(var), adjSlot(row_.r, k));
    });
    // Row users' shares: R_r += R_u ∂u/∂r, users first.
    f.loop(r0, r1, [&](const std::string& r) {
      enterRow(r);
      prefetchRow();
      rowUsersShares(pass);
    });
    level_ = 0;
  }

  void emitGradient(KernelWriter& f) {
    loadArguments(f);
    if (transposed()) {
      kt_ = f.variable(real_, static_cast<int>(sizes_.d * kKeyBlock));
      vt_ = f.variable(real_, static_cast<int>(sizes_.dv * kKeyBlock));
    }
    pass_ = 0;
    level_ = bwd_.rowPasses + 1;
    const std::string r0 = f.arg(kR0, "i64"), r1 = f.arg(kR1, "i64");
    const std::string j0 = f.arg(kJ0, "i64"), j1 = f.arg(kJ1, "i64");
    const std::string flags = f.arg(kFlags, "i64");
    const std::string dq = f.arg(kDq, "ptr"), dk = f.arg(kDk, "ptr"), dv = f.arg(kDv, "ptr");
    const std::string rqBar = f.arg(kRqBar, "ptr"), rkBar = f.arg(kRkBar, "ptr");
    const std::string S = f.variable(real_, kKeyBlock), G = f.variable(real_, kKeyBlock);
    const std::string DS = f.variable(real_, kKeyBlock), W = f.variable(real_, kKeyBlock);
    const std::string RK = f.variable(real_, kKeyBlock);
    // Expression masks: the keys the row sees. Only those take part below: an invisible
    // pair's dS and w are 0, but 0 times a NaN in k_j (or q_i, dO_i) is NaN (IR.h).
    const std::string VIS = g_.mask == ir::MaskKind::Expr ? f.variable(real_, kKeyBlock) : "";
    auto ifSeen = [&](const std::string& index, const std::function<void()>& body) {
      if (VIS.empty()) body();
      else f.ifThen(f.real2bool(f.loadReal(f.realAt(VIS, index))), body);
    };
    const std::string wantDq = f.icmp("ne", f.iop("and", flags, "1"), "0");
    const std::string wantDk = f.icmp("ne", f.iop("and", flags, "2"), "0");
    blockLoop(r0, r1, j0, j1, [&](const std::string& ja, const std::string& jb, const std::string& kb) {
      prefetchRow();
      rawDots(S, kb, ja, jb);
      outputDots(G, kb, ja, jb);
      std::string rqAcc = f.variable(real_);
      f.storeReal(c(0), rqAcc);
      f.loop(ja, jb, [&](const std::string& j) {
        enterElement(j, kb, S);
        std::string index = f.iop("sub nsw", j, kb);
        WalkSinks sinks;
        reverseWalk(level_, f.loadReal(f.realAt(G, index)), sinks);
        f.storeReal(sinks.dS, f.realAt(DS, index));
        f.storeReal(whereVisible(value(g_.out), c(0)), f.realAt(W, index));
        f.storeReal(sinks.rkBar, f.realAt(RK, index));
        if (!VIS.empty()) f.storeReal(f.bool2real(el_.vis), f.realAt(VIS, index));
        increment(rqAcc, sinks.rqBar);
        leaveElement();
      });
      std::string qrow = f.realAt(q_, f.iop("mul nsw", row_.r, d_));
      std::string dorow = f.realAt(dout_, f.iop("mul nsw", row_.r, dv_));
      f.ifThen(wantDq, [&] {
        std::string dqrow = f.realAt(dq, f.iop("mul nsw", row_.r, d_));
        f.loop(ja, jb, [&](const std::string& j) {
          std::string index = f.iop("sub nsw", j, kb);
          ifSeen(index, [&] {
            std::string ds = f.loadReal(f.realAt(DS, index));
            axpy(dqrow, ds, f.realAt(k_, f.iop("mul nsw", j, d_)), d_);
          });
        });
        if (src_.needsQueryNorm) {
          std::string p = f.realAt(rqBar, row_.r);
          increment(p, f.loadReal(rqAcc));
        }
      });
      f.ifThen(wantDk, [&] {
        f.loop(ja, jb, [&](const std::string& j) {
          std::string index = f.iop("sub nsw", j, kb);
          ifSeen(index, [&] {
            std::string ds = f.loadReal(f.realAt(DS, index));
            std::string w = f.loadReal(f.realAt(W, index));
            axpy(f.realAt(dk, f.iop("mul nsw", j, d_)), ds, qrow, d_);
            axpy(f.realAt(dv, f.iop("mul nsw", j, dv_)), w, dorow, dv_);
            if (src_.needsKeyNorm) {
              std::string p = f.realAt(rkBar, j);
              increment(p, f.loadReal(f.realAt(RK, index)));
            }
          });
        });
      });
    });
    level_ = 0;
  }
};

}  // namespace

std::vector<KernelFunction> generateElementHooks(const KernelPlan& plan, const BackwardPlan& backward,
                                                const std::string& real, const KernelSizes& sizes,
                                                const WriterFactory& makeWriter) {
  ATTN_INTERNAL_ASSERT(sizes.d > 0 && sizes.dv > 0, "element hooks need the head dimensions");
  Generator g(plan, backward, real, sizes);
  std::vector<KernelFunction> hooks;
  for (const KeyPass& kp : plan.passes) hooks.push_back(g.elementHook(makeWriter, kp.index));
  return hooks;
}

std::vector<KernelFunction> generateBackwardHooks(const KernelPlan& plan, const BackwardPlan& backward,
                                                 const std::string& real, const KernelSizes& sizes,
                                                 const WriterFactory& makeWriter) {
  ATTN_INTERNAL_ASSERT(sizes.d > 0 && sizes.dv > 0, "backward hooks need the head dimensions");
  ATTN_INTERNAL_ASSERT(backward.unsupported.empty(), "backward hooks of a program without a backward");
  std::vector<KernelFunction> hooks;
  for (int p = 1; p <= backward.rowPasses; ++p) {
    hooks.push_back(Generator(plan, backward, real, sizes).rowPassHook(makeWriter, p));
    hooks.push_back(Generator(plan, backward, real, sizes).rowFinishHook(makeWriter, p));
  }
  hooks.push_back(Generator(plan, backward, real, sizes).gradientHook(makeWriter));
  return hooks;
}

ScalarKernels generateScalarKernels(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real,
                                    const KernelSizes& sizes, const WriterFactory& makeWriter) {
  ATTN_INTERNAL_ASSERT(real == "float" || real == "double", "scalar codegen: real must be float or double");
  return Generator(plan, backward, real, sizes).run(makeWriter);
}

}  // namespace attn::kernels
