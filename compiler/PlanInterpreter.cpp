#include "compiler/PlanInterpreter.h"

#include <cmath>
#include <map>

#include "compiler/ScalarOps.h"

namespace attn {

namespace {

using ir::Node;
using ir::NodeId;
using ir::Op;

// Accumulator of one row statistic over one pass.
template <typename T>
struct Accumulator {
  T sum = 0;    // Sum / Mean / Count: the sum; online forms: sum of rescaled terms
  T count = 0;  // Mean: how many keys
  T max = -INFINITY, min = INFINITY;
  T m = 0;      // online forms: the running maximum (0 before any positive value)
  bool started = false;
};

template <typename T>
class RowInterpreter {
 public:
  RowInterpreter(const KernelPlan& plan, const T* q, const T* k, int64_t Lk, int64_t D)
      : plan_(plan), g_(plan.graph), q_(q), k_(k), lk_(Lk), d_(D), elem_(g_.size()), elemStamp_(g_.size(), 0),
        row_(g_.size()), rowStamp_(g_.size(), 0) {
    for (size_t s = 0; s < plan.statistics.size(); ++s) statisticOf_[plan.statistics[s].node] = static_cast<int>(s);
    if (g_.mask == ir::MaskKind::Window) window_ = constant(g_.maskExpr);
  }

  // Runs every pass for query row `r` (absolute position i) and returns o_i.
  std::vector<T> row(int64_t r, int64_t i, const T* v, int64_t Dv) {
    i_ = i;
    qRow_ = q_ + r * d_;
    ++rowEpoch_;
    n_ = 0;
    for (int64_t j = 0; j < lk_; ++j) n_ += visible(j);
    finished_.assign(plan_.statistics.size(), false);
    values_.assign(plan_.statistics.size(), Accumulator<T>{});

    const OutputAccumulation& out = plan_.output;
    std::vector<T> acc(static_cast<size_t>(Dv), 0.0);
    Accumulator<T> outStat;
    const T p = out.power >= 0 ? g_.node(out.power).value : 0;
    for (const KeyPass& pass : plan_.passes) {
      for (int64_t j = 0; j < lk_; ++j) {
        if (!visible(j)) continue;
        j_ = j;
        kRow_ = k_ + j * d_;
        ++elemEpoch_;
        for (const RowStatistic& st : pass.produces) accumulate(st);
        if (!pass.accumulatesOutput) continue;
        T x = eval(out.value);
        if (out.form == OutputAccumulation::Form::OnlineExp) x *= expScale(outputNode());
        T weight = 0;
        switch (out.form) {
          case OutputAccumulation::Form::Direct: weight = x; break;
          case OutputAccumulation::Form::DeferredDivision:
            weight = x;
            outStat.sum += std::fabs(x);
            break;
          case OutputAccumulation::Form::OnlineExp: weight = onlineExpTerm(outStat, x, acc); break;
          case OutputAccumulation::Form::OnlinePower: weight = onlinePowerTerm(outStat, x, p, acc); break;
        }
        const T* vj = v + j * Dv;
        for (int64_t c = 0; c < Dv; ++c) acc[static_cast<size_t>(c)] += weight * vj[c];
      }
      for (const RowStatistic& st : pass.produces) finished_[static_cast<size_t>(index(st))] = true;
    }
    T divisor = out.form == OutputAccumulation::Form::Direct ? 1 : outStat.sum;
    for (auto& a : acc) a = divisor == 0 ? 0 : out.scale * a / divisor;
    return acc;
  }

 private:
  const KernelPlan& plan_;
  const ir::Graph& g_;
  const T *q_, *k_;
  const T *qRow_ = nullptr, *kRow_ = nullptr;
  int64_t lk_, d_;
  int64_t i_ = 0, j_ = 0, n_ = 0;
  T window_ = 0;
  std::map<NodeId, int> statisticOf_;
  std::vector<bool> finished_;
  std::vector<Accumulator<T>> values_;
  // Per-element and per-row caches of scalar values, invalidated by epoch counters.
  std::vector<T> elem_;
  std::vector<uint64_t> elemStamp_;
  std::vector<T> row_;
  std::vector<uint64_t> rowStamp_;
  uint64_t elemEpoch_ = 1, rowEpoch_ = 1;

  int index(const RowStatistic& st) const { return statisticOf_.at(st.node); }

  bool visible(int64_t j) {
    switch (g_.mask) {
      case ir::MaskKind::Full: return true;
      case ir::MaskKind::Causal: return j <= i_;
      case ir::MaskKind::Window: return j <= i_ && static_cast<T>(j) > static_cast<T>(i_) - window_;
      case ir::MaskKind::Expr: {
        j_ = j;
        ++elemEpoch_;
        return eval(g_.maskExpr) != 0;
      }
    }
    return false;
  }

  T constant(NodeId id) {
    ++elemEpoch_;
    return eval(id);
  }

  // online softmax: running max m of e; terms exp(e - m); rescale what is accumulated.
  static T onlineExpTerm(Accumulator<T>& a, T e, std::vector<T>& acc) {
    if (!a.started || e > a.m) {
      T factor = a.started ? std::exp(a.m - e) : 0;
      for (auto& x : acc) x *= factor;
      a.sum *= factor;
      a.m = e;
      a.started = true;
    }
    T t = a.m == -INFINITY ? 0 : std::exp(e - a.m);  // a row of -inf scores so far: 0 (IR.h)
    a.sum += t;
    return t;
  }

  // online power: running max m of |b|; terms (b / m)^p; rescale by (m_old / m_new)^p.
  static T onlinePowerTerm(Accumulator<T>& a, T b, T p, std::vector<T>& acc) {
    T mag = std::fabs(b);
    if (mag > a.m) {
      T factor = a.m > 0 ? std::pow(a.m / mag, p) : 0;
      for (auto& x : acc) x *= factor;
      a.sum *= factor;
      a.m = mag;
    }
    T t = a.m > 0 ? std::pow(b / a.m, p) : std::isnan(b) ? b : 0;  // a NaN b makes the row NaN
    a.sum += std::fabs(t);
    return t;
  }

  void accumulate(const RowStatistic& st) {
    Accumulator<T>& a = values_[static_cast<size_t>(index(st))];
    std::vector<T> none;
    switch (st.kind) {
      case RowStatistic::Kind::Sum: {
        T x = eval(st.operand);
        a.sum += g_.node(st.node).op == Op::Normalize ? std::fabs(x) : x;
        break;
      }
      case RowStatistic::Kind::Mean:
        a.sum += eval(st.operand);
        a.count += 1;
        break;
      // A NaN wins and stays (IR.h); `count` says the row saw a key (a row of -inf has max -inf).
      case RowStatistic::Kind::Max: {
        T x = eval(st.operand);
        a.max = a.max < x || std::isnan(x) ? x : a.max;
        a.count += 1;
        break;
      }
      case RowStatistic::Kind::Min: {
        T x = eval(st.operand);
        a.min = x < a.min || std::isnan(x) ? x : a.min;
        a.count += 1;
        break;
      }
      case RowStatistic::Kind::Count: a.sum += 1; break;
      case RowStatistic::Kind::OnlineExp: onlineExpTerm(a, eval(st.operand) * expScale(st.node), none); break;
      case RowStatistic::Kind::OnlinePower: onlinePowerTerm(a, eval(st.operand), powerOf(st.node), none); break;
      case RowStatistic::Kind::Normaliser: break;  // accumulated with the output
    }
  }

  // normalize(exp2(e - rowmax(e))) is softmax(e ln 2): the online form runs on e ln 2.
  T expScale(NodeId normalize) const {
    NormalizeForm f = normalizeForm(g_, normalize);
    return f.kind == NormalizeForm::Kind::Exp && f.exp2 ? std::log(T(2)) : T(1);
  }

  // The output's normalisation node (the statistic the output accumulates).
  NodeId outputNode() const {
    for (const RowStatistic& st : plan_.statistics)
      if (st.kind == RowStatistic::Kind::Normaliser) return st.node;
    ATTN_INTERNAL_ERROR("online output without a normaliser");
  }

  T powerOf(NodeId normalize) const {
    // normalize(pow(safediv(b, rowmax(..)), p))
    return g_.node(g_.node(g_.node(normalize).operands[0]).operands[1]).value;
  }

  // The value of a finished statistic as its node means it.
  T statisticValue(int s, NodeId id) {
    const RowStatistic& st = plan_.statistics[static_cast<size_t>(s)];
    ATTN_INTERNAL_ASSERT(finished_[static_cast<size_t>(s)], "statistic read before the pass that finishes it");
    const Accumulator<T>& a = values_[static_cast<size_t>(s)];
    switch (st.kind) {
      case RowStatistic::Kind::Sum: {
        if (g_.node(id).op != Op::Normalize) return a.sum;
        T x = eval(st.operand);
        return a.sum == 0 ? 0 : x / a.sum;
      }
      case RowStatistic::Kind::Mean: return a.count == 0 ? 0 : a.sum / a.count;
      case RowStatistic::Kind::Max: return a.count == 0 ? 0 : a.max;
      case RowStatistic::Kind::Min: return a.count == 0 ? 0 : a.min;
      case RowStatistic::Kind::Count: return a.sum;
      case RowStatistic::Kind::OnlineExp: {
        T e = eval(st.operand) * expScale(st.node);
        return a.sum == 0 ? 0 : std::exp(e - a.m) / a.sum;
      }
      case RowStatistic::Kind::OnlinePower: {
        T b = eval(st.operand);
        return a.sum == 0 || a.m == 0 ? 0 : std::pow(b / a.m, powerOf(st.node)) / a.sum;
      }
      case RowStatistic::Kind::Normaliser: break;
    }
    ATTN_INTERNAL_ERROR("unreadable statistic");
  }

  T eval(NodeId id) {
    const Node& n = g_.node(id);
    const bool perRow = n.kind == ValueKind::Constant || n.kind == ValueKind::Row;
    if (perRow && rowStamp_[static_cast<size_t>(id)] == rowEpoch_ && !statisticOf_.count(id))
      return row_[static_cast<size_t>(id)];
    if (!perRow && elemStamp_[static_cast<size_t>(id)] == elemEpoch_) return elem_[static_cast<size_t>(id)];
    T value = compute(id, n);
    if (perRow && !statisticOf_.count(id)) {
      rowStamp_[static_cast<size_t>(id)] = rowEpoch_;
      row_[static_cast<size_t>(id)] = value;
    } else {
      elemStamp_[static_cast<size_t>(id)] = elemEpoch_;
      elem_[static_cast<size_t>(id)] = value;
    }
    return value;
  }

  T compute(NodeId id, const Node& n) {
    if (auto it = statisticOf_.find(id); it != statisticOf_.end()) return statisticValue(it->second, id);
    switch (n.op) {
      case Op::Const: return n.value;
      case Op::RowIndex: return static_cast<T>(i_);
      case Op::KeyIndex: return static_cast<T>(j_);
      case Op::RowCount: return static_cast<T>(n_);
      case Op::KeyCount: return static_cast<T>(lk_);
      case Op::HeadDim: return static_cast<T>(d_);
      case Op::Dot: {
        std::vector<T> a = vec(n.operands[0]), b = vec(n.operands[1]);
        T s = 0;
        for (int64_t c = 0; c < d_; ++c) s += a[static_cast<size_t>(c)] * b[static_cast<size_t>(c)];
        return s;
      }
      default: break;
    }
    ATTN_INTERNAL_ASSERT(ir::isElementwise(n.op), std::string("plan interpreter: cannot evaluate ") + ir::opName(n.op) +
                                                      " outside a statistic");
    T args[3] = {0, 0, 0};
    for (size_t a = 0; a < n.operands.size(); ++a) args[a] = eval(n.operands[a]);
    // x - rowmax(x), softmax's shift, is x - 0 where rowmax(x) is -inf (IR.h).
    if (n.op == Op::Sub && g_.node(n.operands[1]).op == Op::RowMax && g_.node(n.operands[1]).operands[0] == n.operands[0] &&
        args[1] == -INFINITY)
      args[1] = 0;
    return ir::applyScalar(n.op, args);
  }

  std::vector<T> vec(NodeId id) {
    const Node& n = g_.node(id);
    switch (n.op) {
      case Op::Query: return std::vector<T>(qRow_, qRow_ + d_);
      case Op::Key: return std::vector<T>(kRow_, kRow_ + d_);
      case Op::L2Norm: {
        std::vector<T> x = vec(n.operands[0]);
        T norm = 0;
        for (T e : x) norm += e * e;
        norm = std::sqrt(norm);
        for (T& e : x) e = norm == 0 ? 0 : e / norm;
        return x;
      }
      case Op::VecScale: {
        std::vector<T> x = vec(n.operands[0]);
        T s = eval(n.operands[1]);
        for (T& e : x) e *= s;
        return x;
      }
      default: ATTN_INTERNAL_ERROR(std::string("plan interpreter: not a vector op: ") + ir::opName(n.op));
    }
  }
};

}  // namespace

namespace {
template <typename T>
std::vector<T> interpret(const KernelPlan& plan, const T* q, const T* k, const T* v, int64_t Lq, int64_t Lk, int64_t D,
                         int64_t Dv) {
  RowInterpreter<T> rows(plan, q, k, Lk, D);
  std::vector<T> o;
  o.reserve(static_cast<size_t>(Lq * Dv));
  for (int64_t r = 0; r < Lq; ++r) {
    std::vector<T> row = rows.row(r, Lk - Lq + r, v, Dv);
    o.insert(o.end(), row.begin(), row.end());
  }
  return o;
}
}  // namespace

std::vector<double> interpretPlan(const KernelPlan& plan, const double* q, const double* k, const double* v,
                                  int64_t Lq, int64_t Lk, int64_t D, int64_t Dv) {
  return interpret(plan, q, k, v, Lq, Lk, D, Dv);
}

std::vector<long double> interpretPlanExtended(const KernelPlan& plan, const long double* q, const long double* k,
                                               const long double* v, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv) {
  return interpret(plan, q, k, v, Lq, Lk, D, Dv);
}

}  // namespace attn
