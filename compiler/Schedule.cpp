#include "compiler/Schedule.h"

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "compiler/ScalarOps.h"

namespace attn {

namespace {

using ir::Node;
using ir::NodeId;
using ir::Op;

// normalize(exp(e - rowmax(e))) or normalize(exp2(e - rowmax(e))): returns e.
NodeId onlineExpOperand(const ir::Graph& g, NodeId id) {
  const Node& n = g.node(id);
  if (n.op != Op::Normalize) return -1;
  const Node& ex = g.node(n.operands[0]);
  if (ex.op != Op::Exp && ex.op != Op::Exp2) return -1;
  const Node& sub = g.node(ex.operands[0]);
  if (sub.op != Op::Sub) return -1;
  const Node& max = g.node(sub.operands[1]);
  if (max.op != Op::RowMax || max.operands[0] != sub.operands[0]) return -1;
  return sub.operands[0];
}

// normalize(safediv(b, rowmax(b)) ^ p) or with rowmax(abs(b)), p a constant: returns b
// (and p through `power`).
NodeId onlinePowerOperand(const ir::Graph& g, NodeId id, NodeId* power) {
  const Node& n = g.node(id);
  if (n.op != Op::Normalize) return -1;
  const Node& pw = g.node(n.operands[0]);
  if (pw.op != Op::Pow || g.node(pw.operands[1]).op != Op::Const) return -1;
  const Node& div = g.node(pw.operands[0]);
  if (div.op != Op::SafeDiv) return -1;
  const Node& max = g.node(div.operands[1]);
  if (max.op != Op::RowMax) return -1;
  NodeId b = div.operands[0];
  NodeId inside = max.operands[0];
  bool matches = inside == b || (g.node(inside).op == Op::Abs && g.node(inside).operands[0] == b);
  if (!matches) return -1;
  if (power) *power = pw.operands[1];
  return b;
}

// Multiplications for x^p with an integer p by repeated squaring (at least 2).
int multipliesForPower(double p) { return static_cast<int>(std::ceil(std::log2(std::max(2.0, std::fabs(p))))) + 1; }

bool isTranscendental(Op op) {
  switch (op) {
    case Op::Exp: case Op::Log: case Op::Exp2: case Op::Log2: case Op::Sqrt: case Op::Rsqrt:
    case Op::Tanh: case Op::Sigmoid: case Op::Gelu: case Op::GeluTanh: case Op::Silu:
      return true;
    default:
      return false;
  }
}

}  // namespace

NormalizeForm normalizeForm(const ir::Graph& g, NodeId id) {
  NormalizeForm f;
  if (g.node(id).op != Op::Normalize) return f;
  NodeId power = -1;
  if (NodeId e = onlineExpOperand(g, id); e >= 0) {
    f.kind = NormalizeForm::Kind::Exp;
    f.operand = e;
    f.exp2 = g.node(g.node(id).operands[0]).op == Op::Exp2;
  } else if (NodeId b = onlinePowerOperand(g, id, &power); b >= 0) {
    f.kind = NormalizeForm::Kind::Power;
    f.operand = b;
    f.power = power;
  } else {
    f.kind = NormalizeForm::Kind::Plain;
    f.operand = g.node(id).operands[0];
  }
  return f;
}

namespace {

class Scheduler {
 public:
  explicit Scheduler(const ir::Graph& g) : g_(g), avail_(g.size(), 0) {}

  KernelPlan run() {
    KernelPlan plan;
    plan.graph = g_;
    // The output: peel constant factors, then recognise the accumulation form.
    NodeId w = g_.out;
    double scale = 1;
    for (;;) {
      const Node& n = g_.node(w);
      if (n.op == Op::Neg) {
        scale = -scale;
        w = n.operands[0];
      } else if (n.op == Op::Mul && g_.node(n.operands[0]).op == Op::Const) {
        scale *= g_.node(n.operands[0]).value;
        w = n.operands[1];
      } else if (n.op == Op::Mul && g_.node(n.operands[1]).op == Op::Const) {
        scale *= g_.node(n.operands[1]).value;
        w = n.operands[0];
      } else {
        break;
      }
    }
    OutputAccumulation& out = plan.output;
    out.scale = scale;
    NodeId power = -1;
    if (NodeId e = onlineExpOperand(g_, w); e >= 0) {
      out.form = OutputAccumulation::Form::OnlineExp;
      out.value = e;
    } else if (NodeId b = onlinePowerOperand(g_, w, &power); b >= 0) {
      out.form = OutputAccumulation::Form::OnlinePower;
      out.value = b;
      out.power = power;
    } else if (g_.node(w).op == Op::Normalize) {
      out.form = OutputAccumulation::Form::DeferredDivision;
      out.value = g_.node(w).operands[0];
    } else {
      out.form = OutputAccumulation::Form::Direct;
      out.value = w;
    }
    const int passes = avail(out.value);
    if (out.form != OutputAccumulation::Form::Direct)
      addStatistic(RowStatistic::Kind::Normaliser, w, out.value, passes);
    plan.statistics = statistics_;
    plan.passes.resize(static_cast<size_t>(passes));
    for (int p = 1; p <= passes; ++p) {
      KeyPass& kp = plan.passes[static_cast<size_t>(p - 1)];
      kp.index = p;
      std::vector<NodeId> roots;
      for (size_t s = 0; s < statistics_.size(); ++s) {
        if (statistics_[s].pass != p) continue;
        kp.produces.push_back(statistics_[s]);
        if (statistics_[s].operand >= 0) roots.push_back(statistics_[s].operand);
      }
      if (p == passes) {
        kp.accumulatesOutput = true;
        roots.push_back(out.value);
      }
      std::set<int> reads;
      std::set<NodeId> seen;
      for (NodeId r : roots) walk(r, reads, seen, kp.cost);
      kp.reads.assign(reads.begin(), reads.end());
      for (const auto& st : kp.produces) kp.cost.otherFlops += statisticCost(st, kp.cost);
      if (p == passes) addOutputCost(out, kp.cost);
    }
    for (size_t s = 0; s < plan.statistics.size(); ++s) plan.savedForBackward.push_back(static_cast<int>(s));
    return plan;
  }

 private:
  const ir::Graph& g_;
  std::vector<int> avail_;  // the first pass in which a node's value is known (0: not computed yet)
  std::vector<RowStatistic> statistics_;
  std::map<NodeId, int> statisticOf_;  // node -> index into statistics_

  int addStatistic(RowStatistic::Kind kind, NodeId node, NodeId operand, int pass) {
    auto it = statisticOf_.find(node);
    if (it != statisticOf_.end()) return it->second;
    RowStatistic st;
    st.kind = kind;
    st.node = node;
    st.operand = operand;
    st.pass = pass;
    statistics_.push_back(st);
    int index = static_cast<int>(statistics_.size()) - 1;
    statisticOf_.emplace(node, index);
    return index;
  }

  // The first pass in which node `id`'s value is available for every key (or, for a row
  // value, at every key of that pass). Registers the statistics it needs.
  int avail(NodeId id) {
    int& slot = avail_.at(static_cast<size_t>(id));
    if (slot > 0) return slot;
    slot = compute(id);
    return slot;
  }

  int compute(NodeId id) {
    const Node& n = g_.node(id);
    switch (n.op) {
      case Op::RowCount:
        if (g_.mask == ir::MaskKind::Expr) {
          addStatistic(RowStatistic::Kind::Count, id, -1, 1);
          return 2;
        }
        return 1;
      case Op::RowSum: case Op::RowMax: case Op::RowMin: case Op::RowMean: {
        int p = avail(n.operands[0]);
        RowStatistic::Kind kind = n.op == Op::RowMax    ? RowStatistic::Kind::Max
                                  : n.op == Op::RowMin  ? RowStatistic::Kind::Min
                                  : n.op == Op::RowMean ? RowStatistic::Kind::Mean
                                                        : RowStatistic::Kind::Sum;
        addStatistic(kind, id, n.operands[0], p);
        return p + 1;
      }
      case Op::Normalize: {
        NodeId power = -1;
        if (NodeId e = onlineExpOperand(g_, id); e >= 0) {
          int p = avail(e);
          addStatistic(RowStatistic::Kind::OnlineExp, id, e, p);
          return p + 1;
        }
        if (NodeId b = onlinePowerOperand(g_, id, &power); b >= 0) {
          int p = avail(b);
          addStatistic(RowStatistic::Kind::OnlinePower, id, b, p);
          return p + 1;
        }
        int p = avail(n.operands[0]);
        addStatistic(RowStatistic::Kind::Sum, id, n.operands[0], p);  // sum of |x|
        return p + 1;
      }
      default: {
        int p = 1;
        for (NodeId o : n.operands) p = std::max(p, avail(o));
        return p;
      }
    }
  }

  // Counts the per-element work of computing `id` in a pass, stopping at statistics
  // (read, not recomputed) and at values that are per row or constant.
  void walk(NodeId id, std::set<int>& reads, std::set<NodeId>& seen, PassCost& cost) {
    if (!seen.insert(id).second) return;
    const Node& n = g_.node(id);
    if (auto it = statisticOf_.find(id); it != statisticOf_.end()) {
      reads.insert(it->second);
      // A normalised score value (x / sum, exp(e - m) / l, (b / m)^p / l) reads its row
      // statistic and recomputes the scores it normalises.
      if (n.kind == ValueKind::Score) {
        const RowStatistic& st = statistics_[static_cast<size_t>(it->second)];
        walk(st.operand, reads, seen, cost);
        if (st.kind == RowStatistic::Kind::OnlineExp) cost.transcendentals += 1;
        if (st.kind == RowStatistic::Kind::OnlinePower) cost.otherFlops += powerMultiplies(st.node);
        cost.otherFlops += 2;
      }
      return;
    }
    for (NodeId o : n.operands) walk(o, reads, seen, cost);
    if (n.kind != ValueKind::Score) return;
    if (n.op == Op::Dot) {
      ++cost.dotProducts;
    } else if (n.op == Op::Pow) {
      const Node& e = g_.node(n.operands[1]);
      if (e.op == Op::Const && e.value == std::floor(e.value) && std::fabs(e.value) <= 64) {
        cost.otherFlops += multipliesForPower(e.value);
      } else {
        cost.transcendentals += 2;  // exp(p · log(x))
      }
    } else if (n.op == Op::Softplus || n.op == Op::Mish) {
      cost.transcendentals += n.op == Op::Mish ? 3 : 2;
      cost.otherFlops += 2;
    } else if (isTranscendental(n.op)) {
      cost.transcendentals += 1;
      cost.otherFlops += n.op == Op::Sigmoid || n.op == Op::Silu || n.op == Op::Gelu ? 2 : 0;
    } else if (n.op != Op::KeyIndex) {
      cost.otherFlops += 1;
    }
  }

  int statisticCost(const RowStatistic& st, PassCost& cost) const {
    switch (st.kind) {
      case RowStatistic::Kind::OnlineExp:
        cost.transcendentals += 1;  // exp(e - m)
        return 3;                   // max, subtract, add
      case RowStatistic::Kind::OnlinePower:
        return 4 + powerMultiplies(st.node);  // max, divide, add, the power
      case RowStatistic::Kind::Normaliser:
        return 0;  // counted with the output
      default:
        return 1;
    }
  }

  int powerMultiplies(NodeId normalize) const {
    NodeId power = -1;
    onlinePowerOperand(g_, normalize, &power);
    if (power < 0) return 1;
    double p = g_.node(power).value;
    return multipliesForPower(p);
  }

  void addOutputCost(const OutputAccumulation& out, PassCost& cost) const {
    cost.outputProduct = true;
    switch (out.form) {
      case OutputAccumulation::Form::Direct: break;
      case OutputAccumulation::Form::DeferredDivision: cost.otherFlops += 2; break;  // |x|, add
      case OutputAccumulation::Form::OnlineExp:
        cost.transcendentals += 1;
        cost.otherFlops += 3;
        break;
      case OutputAccumulation::Form::OnlinePower: {
        double p = g_.node(out.power).value;
        cost.otherFlops += 4 + multipliesForPower(p);
        break;
      }
    }
  }
};

std::string shortExpression(const ir::Graph& g, NodeId id) {
  const Node& n = g.node(id);
  return n.label.empty() ? ir::formula(g, id) : n.label;
}

std::string describeStatistic(const ir::Graph& g, const RowStatistic& st) {
  std::string x = st.operand >= 0 ? shortExpression(g, st.operand) : "";
  switch (st.kind) {
    case RowStatistic::Kind::Sum:
      return g.node(st.node).op == Op::Normalize ? "sum |" + x + "|" : "sum " + x;
    case RowStatistic::Kind::Mean: return "mean " + x;
    case RowStatistic::Kind::Max: return "max " + x;
    case RowStatistic::Kind::Min: return "min " + x;
    case RowStatistic::Kind::Count: return "count of unmasked keys (n)";
    case RowStatistic::Kind::OnlineExp: return "running max m of " + x + ", and sum exp(" + x + " - m)";
    case RowStatistic::Kind::OnlinePower: {
      NodeId power = -1;
      onlinePowerOperand(g, st.node, &power);
      std::ostringstream p;
      p << g.node(power).value;
      return "running max m of " + x + ", and sum (" + x + " / m)^" + p.str();
    }
    case RowStatistic::Kind::Normaliser: {
      // Described as the statistic it is, by the output's form.
      RowStatistic as = st;
      NodeId power = -1;
      as.kind = onlineExpOperand(g, st.node) >= 0              ? RowStatistic::Kind::OnlineExp
                : onlinePowerOperand(g, st.node, &power) >= 0 ? RowStatistic::Kind::OnlinePower
                                                              : RowStatistic::Kind::Sum;
      return describeStatistic(g, as) + " (the output's normaliser)";
    }
  }
  return "?";
}

}  // namespace

KernelPlan schedule(const ir::Graph& graph) { return Scheduler(graph).run(); }

std::string describePlan(const KernelPlan& plan) {
  const ir::Graph& g = plan.graph;
  std::ostringstream os;
  os << "plan " << g.name << ": " << plan.passes.size() << (plan.passes.size() == 1 ? " pass" : " passes")
     << " over the keys; no L x L matrix is stored\n";
  for (const auto& kp : plan.passes) {
    os << "  pass " << kp.index << ":\n";
    for (int r : kp.reads) os << "    reads     statistic " << r + 1 << '\n';
    for (const auto& st : kp.produces) {
      int index = 0;
      for (size_t s = 0; s < plan.statistics.size(); ++s)
        if (plan.statistics[s].node == st.node) index = static_cast<int>(s) + 1;
      os << "    produces  statistic " << index << ": " << describeStatistic(g, st) << '\n';
    }
    if (kp.accumulatesOutput) {
      const OutputAccumulation& out = plan.output;
      std::string x = shortExpression(g, out.value);
      os << "    output    ";
      if (out.scale != 1) os << out.scale << " * ";
      switch (out.form) {
        case OutputAccumulation::Form::Direct: os << "o = sum w v, w = " << x; break;
        case OutputAccumulation::Form::DeferredDivision:
          os << "o = sum x v / sum |x|, x = " << x << " (division deferred to the end)";
          break;
        case OutputAccumulation::Form::OnlineExp:
          os << "o = sum exp(e - m) v / sum exp(e - m), e = " << x << " (online softmax, running max m)";
          break;
        case OutputAccumulation::Form::OnlinePower:
          os << "o = sum (b/m)^p v / sum (b/m)^p, b = " << x << ", p = " << g.node(out.power).value
             << " (running max m)";
          break;
      }
      os << '\n';
    }
    const PassCost& c = kp.cost;
    os << "    cost      per score element: " << c.dotProducts << " dot product" << (c.dotProducts == 1 ? "" : "s")
       << " (2d flops each)" << (c.outputProduct ? " + output 2Dv flops" : "") << ", " << c.transcendentals
       << " transcendental, " << c.otherFlops << " other\n";
  }
  os << "  saved for backward: o";
  if (!plan.savedForBackward.empty()) {
    os << ", and per row: ";
    for (size_t s = 0; s < plan.savedForBackward.size(); ++s)
      os << (s ? ", " : "") << "statistic " << plan.savedForBackward[s] + 1;
  }
  os << "; scores are recomputed from q and k\n";
  return os.str();
}

}  // namespace attn
