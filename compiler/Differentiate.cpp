#include "compiler/Differentiate.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "compiler/ScalarOps.h"

namespace attn {

using ir::Node;
using ir::NodeId;
using ir::Op;

std::vector<NodeId> atomicOperands(const ir::Graph& g, NodeId id) {
  NormalizeForm f = normalizeForm(g, id);
  if (f.kind != NormalizeForm::Kind::None) return {f.operand};
  return g.node(id).operands;
}

namespace {

// Ops whose derivative is zero everywhere it exists: they stop gradients.
bool stopsGradient(Op op) {
  switch (op) {
    case Op::Not: case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::And: case Op::Or: case Op::Sign:
      return true;
    default:
      return false;
  }
}

class Differentiator {
 public:
  explicit Differentiator(const KernelPlan& plan) : plan_(plan), g_(plan.graph) {}

  BackwardPlan run() {
    BackwardPlan b;
    const size_t n = g_.size();
    b.carriesGradient.assign(n, false);
    b.adjointPass.assign(n, 0);
    // What the derivative walks: nodes reachable from out through atomic operands.
    std::vector<bool> visible(n, false);
    std::vector<std::vector<NodeId>> users(n);
    std::vector<NodeId> stack{g_.out};
    visible[static_cast<size_t>(g_.out)] = true;
    while (!stack.empty()) {
      NodeId id = stack.back();
      stack.pop_back();
      for (NodeId o : atomicOperands(g_, id)) {
        users[static_cast<size_t>(o)].push_back(id);
        if (!visible[static_cast<size_t>(o)]) {
          visible[static_cast<size_t>(o)] = true;
          stack.push_back(o);
        }
      }
    }
    for (size_t id = 0; id < n; ++id) {
      if (!visible[id]) continue;
      const Node& node = g_.node(static_cast<NodeId>(id));
      bool carries = node.op == Op::Query || node.op == Op::Key;
      if (!stopsGradient(node.op))
        for (NodeId o : atomicOperands(g_, static_cast<NodeId>(id))) carries = carries || b.carriesGradient[static_cast<size_t>(o)];
      b.carriesGradient[id] = carries;
    }

    const NodeId w = outputNormalisation(users);
    std::vector<int> level(n, 0);
    for (NodeId id = static_cast<NodeId>(n) - 1; id >= 0; --id) {
      const size_t x = static_cast<size_t>(id);
      if (!visible[x] || !b.carriesGradient[x]) continue;
      const Node& node = g_.node(id);
      if (isVector(node.kind)) continue;  // q and k get their gradients from the dots
      if (node.kind == ValueKind::Score) {
        int pass = id == g_.out ? 1 : 0;
        for (NodeId u : users[x]) {
          const Node& user = g_.node(u);
          const size_t ux = static_cast<size_t>(u);
          if (ir::isRowReduction(user.op)) pass = std::max(pass, level[ux] + 1);
          else if (normalizeForm(g_, u).kind != NormalizeForm::Kind::None)
            pass = std::max({pass, b.adjointPass[ux], level[ux] + 1});
          else pass = std::max(pass, b.adjointPass[ux]);
        }
        b.adjointPass[x] = std::max(pass, 1);
        if (normalizeForm(g_, id).kind != NormalizeForm::Kind::None) {
          RowAdjoint a;
          a.kind = RowAdjoint::Kind::Normalisation;
          a.node = id;
          // The identity only where the normaliser, as accumulated, is at least 1 (softmax's
          // and the power form's: their largest term is 1). For x / sum|x| the sum can be tiny;
          // then g_j - dO·o (two independently rounded numbers) divided by it is noise, while a
          // row pass sums T from the very g_j the gradient pass uses, and the rounding cancels
          // (one key: w = 1, T = g exactly, gradient exactly 0).
          const NormalizeForm form = normalizeForm(g_, id);
          const bool output = id == w;
          const bool bigPower = form.kind == NormalizeForm::Kind::Power && powerOf(form) > kIdentityMaxPower;
          a.identity = output && (form.kind == NormalizeForm::Kind::Exp ||
                                  (form.kind == NormalizeForm::Kind::Power && !bigPower));
          a.level = a.identity ? 0 : b.adjointPass[x];
          // T summed relative to a shift c (RowAdjoint::Shift), where the weights cannot be
          // negative (sum_j w_j = 1 in the maths): for the output, c = dO·o costs nothing; for a
          // power above kIdentityMaxPower inside the program, c is T summed the plain way one
          // row pass earlier.
          if (!a.identity && (output || bigPower) && nonNegativeWeights(form)) {
            RowAdjoint shift;
            shift.kind = RowAdjoint::Kind::Shift;
            shift.node = id;
            shift.identity = output;
            shift.level = output ? 0 : a.level;
            shifts_.push_back(shift);
            a.shifted = true;
            if (!output) ++a.level;
          }
          level[x] = a.level;
          add(b, a);
        }
      } else if (node.kind == ValueKind::Row) {
        if (normalizeForm(g_, id).kind != NormalizeForm::Kind::None || (ir::isRowReduction(node.op) && !isScoreOperand(id))) {
          b.unsupported = "the derivative of a row reduction or normalisation of a row value ('" +
                          ir::formula(g_, id) + "') is not supported yet";
          continue;
        }
        int lv = 1;
        for (NodeId u : users[x]) {
          const Node& user = g_.node(u);
          if (user.op == Op::VecScale) {
            // dot(s·q, k) sends its adjoint times q·k back to s: summed where the dots'
            // adjoints are known (every dot above s, conservatively).
            for (NodeId d = id + 1; d < static_cast<NodeId>(n); ++d)
              if (g_.node(d).op == Op::Dot) lv = std::max(lv, b.adjointPass[static_cast<size_t>(d)]);
            continue;
          }
          lv = std::max(lv, user.kind == ValueKind::Score ? b.adjointPass[static_cast<size_t>(u)] : level[static_cast<size_t>(u)]);
        }
        level[x] = lv;
        RowAdjoint a;
        a.kind = RowAdjoint::Kind::RowValue;
        a.node = id;
        a.level = lv;
        add(b, a);
      }
    }
    for (const RowAdjoint& a : b.adjoints) b.rowPasses = std::max(b.rowPasses, a.level);
    std::sort(b.adjoints.begin(), b.adjoints.end(),
              [](const RowAdjoint& l, const RowAdjoint& r) { return l.node < r.node; });
    b.adjointOf.clear();
    for (size_t i = 0; i < b.adjoints.size(); ++i) b.adjointOf[b.adjoints[i].node] = static_cast<int>(i);
    // The shifts after every other adjoint (their slots are identity slots like any other).
    for (const RowAdjoint& shift : shifts_) {
      b.shiftOf[shift.node] = static_cast<int>(b.adjoints.size());
      b.adjoints.push_back(shift);
    }
    return b;
  }

 private:
  const KernelPlan& plan_;
  const ir::Graph& g_;
  std::vector<RowAdjoint> shifts_;

  double powerOf(const NormalizeForm& form) const { return g_.node(form.power).value; }

  // Are the weights of normalisation `form` >= 0 wherever defined (sum_j w_j = 1, not only
  // sum_j |w_j| = 1)?
  bool nonNegativeWeights(const NormalizeForm& form) const {
    switch (form.kind) {
      case NormalizeForm::Kind::Plain: return ir::isNonNegative(g_, form.operand);
      case NormalizeForm::Kind::Power: {
        const double p = powerOf(form);
        const bool even = std::fmod(p, 2.0) == 0;
        return even || ir::isNonNegative(g_, form.operand);
      }
      default: return true;
    }
  }

  bool isScoreOperand(NodeId reduction) const {
    return g_.node(g_.node(reduction).operands[0]).kind == ValueKind::Score;
  }

  static void add(BackwardPlan& b, const RowAdjoint& a) {
    b.adjointOf[a.node] = static_cast<int>(b.adjoints.size());
    b.adjoints.push_back(a);
  }

  // The normalisation that is the output itself, up to constant factors (o = c sum_j w v),
  // when nothing else uses it: its T is dO·o. -1 otherwise.
  NodeId outputNormalisation(const std::vector<std::vector<NodeId>>& users) const {
    NodeId w = g_.out;
    for (;;) {
      const Node& n = g_.node(w);
      NodeId next = -1;
      if (n.op == Op::Neg) next = n.operands[0];
      else if (n.op == Op::Mul && g_.node(n.operands[0]).op == Op::Const) next = n.operands[1];
      else if (n.op == Op::Mul && g_.node(n.operands[1]).op == Op::Const) next = n.operands[0];
      if (next < 0) break;
      if (users[static_cast<size_t>(next)].size() != 1) return -1;
      w = next;
    }
    if (normalizeForm(g_, w).kind == NormalizeForm::Kind::None) return -1;
    if (g_.node(w).kind != ValueKind::Score) return -1;
    return w;
  }
};

}  // namespace

BackwardPlan differentiate(const KernelPlan& plan) { return Differentiator(plan).run(); }

std::string describeBackward(const KernelPlan& plan, const BackwardPlan& b) {
  const ir::Graph& g = plan.graph;
  std::ostringstream os;
  const int passes = b.rowPasses + 1;
  os << "backward: " << passes << (passes == 1 ? " pass" : " passes") << " over the keys";
  if (!b.unsupported.empty()) {
    os << "; not derivable yet: " << b.unsupported << "\n";
    return os.str();
  }
  os << "\n";
  auto name = [&](const RowAdjoint& a) {
    std::string f = ir::formula(g, a.node);
    if (a.kind == RowAdjoint::Kind::Normalisation)
      return std::string(a.shifted ? "T - c = sum_j w (adj(w) - c)" : "T = sum_j adj(w) w") + " for w = " + f;
    if (a.kind == RowAdjoint::Kind::Shift)
      return std::string(a.identity ? "c" : "c = sum_j adj(w) w (T, the next sum's shift)") + " for w = " + f;
    return "adjoint of the row value " + f;
  };
  for (const RowAdjoint& a : b.adjoints)
    if (a.identity) os << "  no pass:   " << name(a) << " = dO·o (the FlashAttention identity)\n";
  for (int p = 1; p <= b.rowPasses; ++p) {
    os << "  pass " << p << ":    sums";
    bool first = true;
    for (const RowAdjoint& a : b.adjoints)
      if (a.level == p) {
        os << (first ? " " : "; ") << name(a);
        first = false;
      }
    os << "\n";
  }
  os << "  pass " << passes << ":    dq (each query over its keys), dk and dv (each key over its queries)\n";
  return os.str();
}

}  // namespace attn
