#include "FiniteDifferences.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <sstream>

#include "compiler/PlanInterpreter.h"

namespace attn::test {

namespace {

// Richardson estimates R(h) and R(2h) of dF/dx at one element (6 evaluations of F).
struct Estimate {
  double fine = 0, coarse = 0;
  bool finite = true;
};

class Differencer {
 public:
  Differencer(const KernelPlan& plan, const HeadInputs& x) : plan_(plan), x_(x) {}

  double F() {
    std::vector<double> o = interpretPlan(plan_, x_.q.data(), x_.k.data(), x_.v.data(), x_.lq, x_.lk, x_.d, x_.dv);
    double f = 0;
    for (size_t e = 0; e < o.size(); ++e) f += o[e] * x_.dout[e];
    return f;
  }

  Estimate estimate(double& element, double h) {
    const double saved = element;
    double d[3];
    bool finite = true;
    for (int s = 0; s < 3; ++s) {
      const double step = h * (1 << s);
      element = saved + step;
      const double plus = F();
      element = saved - step;
      const double minus = F();
      element = saved;
      finite = finite && std::isfinite(plus) && std::isfinite(minus);
      d[s] = (plus - minus) / (2 * step);
    }
    return {(4 * d[0] - d[1]) / 3, (4 * d[1] - d[2]) / 3, finite};
  }

  HeadInputs& inputs() { return x_; }

 private:
  const KernelPlan& plan_;
  HeadInputs x_;
};

}  // namespace

FdGradients finiteDifferences(const KernelPlan& plan, const HeadInputs& inputs) {
  Differencer diff(plan, inputs);
  HeadInputs& x = diff.inputs();
  std::vector<double>* tensors[3] = {&x.q, &x.k, &x.v};
  FdGradients out;
  std::vector<double>* grads[3] = {&out.dq, &out.dk, &out.dv};
  std::vector<bool>* trusted[3] = {&out.trustedQ, &out.trustedK, &out.trustedV};
  auto baseStep = [](double value) { return 1e-3 * std::max(1.0, std::fabs(value)); };

  // First estimates at the largest step; the scale is the largest self-consistent one.
  std::vector<Estimate> first[3];
  double scale = 0;
  for (int t = 0; t < 3; ++t) {
    std::vector<double>& values = *tensors[t];
    first[t].resize(values.size());
    for (size_t e = 0; e < values.size(); ++e) {
      Estimate est = diff.estimate(values[e], baseStep(values[e]));
      first[t][e] = est;
      const double size = std::max(std::fabs(est.fine), std::fabs(est.coarse));
      if (est.finite && std::fabs(est.fine - est.coarse) <= 1e-3 * size) scale = std::max(scale, std::fabs(est.fine));
    }
  }
  if (!(scale > 0)) scale = 1;
  const double agree = 1.5e-7 * scale;

  for (int t = 0; t < 3; ++t) {
    std::vector<double>& values = *tensors[t];
    grads[t]->assign(values.size(), 0.0);
    trusted[t]->assign(values.size(), false);
    for (size_t e = 0; e < values.size(); ++e) {
      ++out.elements;
      Estimate est = first[t][e];
      double h = baseStep(values[e]);
      for (int attempt = 0; attempt < 4; ++attempt) {
        if (attempt > 0) {
          h /= 8;
          est = diff.estimate(values[e], h);
        }
        if (!est.finite) {
          out.finite = false;
          break;
        }
        if (std::fabs(est.fine - est.coarse) <= agree) {
          (*grads[t])[e] = est.fine;
          (*trusted[t])[e] = true;
          break;
        }
      }
      if (!(*trusted[t])[e]) ++out.untrusted;
    }
  }
  return out;
}

namespace {
using Extended = std::vector<long double>;
Extended extended(const std::vector<double>& x) { return Extended(x.begin(), x.end()); }
}  // namespace

std::string illConditioned(const KernelPlan& plan, const HeadInputs& x) {
  const std::vector<double> o = interpretPlan(plan, x.q.data(), x.k.data(), x.v.data(), x.lq, x.lk, x.d, x.dv);
  double scale = 0;
  for (double e : o) scale = std::max(scale, std::fabs(e));
  scale = std::max(scale, 1e-12);
  std::ostringstream why;
  why.precision(3);
  // Double rounding decides o: the long double interpreter disagrees beyond what a
  // well-conditioned program's rounding (1e-16 times a modest condition number) explains.
  const Extended ox = interpretPlanExtended(plan, extended(x.q).data(), extended(x.k).data(), extended(x.v).data(),
                                            x.lq, x.lk, x.d, x.dv);
  double precision = 0;
  for (size_t e = 0; e < o.size(); ++e)
    precision = std::max(precision, std::fabs(static_cast<double>(ox[e] - static_cast<long double>(o[e]))));
  if (!(precision <= kPrecisionBar * scale)) {
    why << "o in double differs from o in long double by " << precision / scale << " of its scale";
    return why.str();
  }
  // A tie or a sign the last bit of an input decides (rounding noise normalised): inputs
  // moved by 1e-13 relative move o by far more than 1e-7 of its scale. The perturbations
  // come from their own generator, so that the caller's inputs do not depend on this check.
  std::mt19937_64 rng(0x1c0ffee);
  std::normal_distribution<double> normal;
  // Six moves, 1e-13 to 1e-11: an ulp whose sign decides o (two values equal in the maths)
  // keeps its sign under one move with probability about 1/2.
  for (int trial = 0; trial < 6; ++trial) {
    const double size = trial < 2 ? 1e-13 : trial < 4 ? 1e-12 : 1e-11;
    HeadInputs y = x;
    for (std::vector<double>* t : {&y.q, &y.k, &y.v})
      for (double& e : *t) e *= 1 + size * normal(rng);
    const std::vector<double> moved = interpretPlan(plan, y.q.data(), y.k.data(), y.v.data(), x.lq, x.lk, x.d, x.dv);
    double moves = 0;
    for (size_t e = 0; e < moved.size(); ++e)
      moves = std::max(moves, std::isnan(moved[e]) != std::isnan(o[e]) ? INFINITY : std::fabs(moved[e] - o[e]));
    if (!(moves <= 1e-7 * scale)) {
      why << "inputs moved by " << size << " move o by " << moves / scale << " of its scale";
      return why.str();
    }
  }
  return "";
}

double float32Bar(const ir::Graph& g) {
  double p = 1;
  for (ir::NodeId id : ir::liveNodes(g)) {
    const ir::Node& n = g.node(id);
    if (n.op == ir::Op::Pow && g.node(n.operands[1]).op == ir::Op::Const)
      p = std::max(p, std::fabs(g.node(n.operands[1]).value));
  }
  return p > 16 ? 1e-3 : 1e-4;
}

double GradientError::max() const { return std::max({dq, dk, dv}); }

// Inputs are about N(0, 1): a gradient that is 0 in the maths (one key: dk) comes out as
// rounding noise near 1e-16 in any backend, and the differences' own noise is near 1e-13;
// both are measured against this.
constexpr double kAbsoluteFloor = 1e-6;

namespace {
// compareWithFd's scale per tensor (dq, dk, dv).
std::array<double, 3> scalesOf(const FdGradients& fd) {
  const std::vector<double>* want[3] = {&fd.dq, &fd.dk, &fd.dv};
  const std::vector<bool>* trusted[3] = {&fd.trustedQ, &fd.trustedK, &fd.trustedV};
  double maxOf[3] = {0, 0, 0};
  for (int t = 0; t < 3; ++t)
    for (size_t e = 0; e < want[t]->size(); ++e)
      if ((*trusted[t])[e]) maxOf[t] = std::max(maxOf[t], std::fabs((*want[t])[e]));
  const double overall = std::max({maxOf[0], maxOf[1], maxOf[2]});
  std::array<double, 3> scale{};
  for (int t = 0; t < 3; ++t) scale[static_cast<size_t>(t)] = std::max({maxOf[t], 1e-2 * overall, kAbsoluteFloor});
  return scale;
}
}  // namespace

int refineWhereDifferent(const KernelPlan& plan, const HeadInputs& x, FdGradients& fd, const std::vector<double>& dq,
                         const std::vector<double>& dk, const std::vector<double>& dv, double bar) {
  const std::vector<double>* got[3] = {&dq, &dk, &dv};
  std::vector<double>* want[3] = {&fd.dq, &fd.dk, &fd.dv};
  std::vector<bool>* trusted[3] = {&fd.trustedQ, &fd.trustedK, &fd.trustedV};
  const std::array<double, 3> scale = scalesOf(fd);
  // F in long double: its noise divided by steps down to h/32768 stays far below the bar.
  std::vector<long double> in[3] = {{x.q.begin(), x.q.end()}, {x.k.begin(), x.k.end()}, {x.v.begin(), x.v.end()}};
  const std::vector<long double> dout(x.dout.begin(), x.dout.end());
  auto F = [&] {
    const std::vector<long double> o =
        interpretPlanExtended(plan, in[0].data(), in[1].data(), in[2].data(), x.lq, x.lk, x.d, x.dv);
    long double f = 0;
    for (size_t e = 0; e < o.size(); ++e) f += o[e] * dout[e];
    return f;
  };
  int refined = 0;
  for (int t = 0; t < 3; ++t) {
    if (got[t]->size() != want[t]->size()) continue;
    const double agree = 1.5e-7 * scale[static_cast<size_t>(t)];
    for (size_t e = 0; e < want[t]->size() && refined < kMaxRefined; ++e) {
      if (!(*trusted[t])[e]) continue;
      const double g = (*got[t])[e];
      if (!std::isfinite(g) || std::fabs(g - (*want[t])[e]) <= bar * scale[static_cast<size_t>(t)]) continue;
      ++refined;
      long double& element = in[t][e];
      const long double saved = element;
      const double h0 = 1e-3 * std::max(1.0, std::fabs(static_cast<double>(saved)));
      // Richardson R at h0/8, h0/64, ...: trusted at the first two successive steps that agree.
      auto richardson = [&](double h) {
        long double d[2];
        for (int s = 0; s < 2; ++s) {
          const long double step = h * (1 << s);
          element = saved + step;
          const long double plus = F();
          element = saved - step;
          const long double minus = F();
          element = saved;
          d[s] = (plus - minus) / (2 * step);
        }
        return static_cast<double>((4 * d[0] - d[1]) / 3);
      };
      double previous = richardson(h0 / 8);
      bool found = false;
      for (int level = 2; level <= 5 && !found; ++level) {
        const double next = richardson(h0 / std::pow(8.0, level));
        if (std::isfinite(next) && std::fabs(next - previous) <= agree) {
          (*want[t])[e] = next;
          found = true;
        }
        previous = next;
      }
      if (!found) {
        (*trusted[t])[e] = false;
        ++fd.untrusted;
      }
    }
  }
  return refined;
}

GradientError compareWithFd(const FdGradients& fd, const std::vector<double>& dq, const std::vector<double>& dk,
                            const std::vector<double>& dv) {
  const std::vector<double>* got[3] = {&dq, &dk, &dv};
  const std::vector<double>* want[3] = {&fd.dq, &fd.dk, &fd.dv};
  const std::vector<bool>* trusted[3] = {&fd.trustedQ, &fd.trustedK, &fd.trustedV};
  const char* names[3] = {"dq", "dk", "dv"};
  const std::array<double, 3> scales = scalesOf(fd);
  GradientError r;
  double* errs[3] = {&r.dq, &r.dk, &r.dv};
  double worst = -1;
  for (int t = 0; t < 3; ++t) {
    const double scale = scales[static_cast<size_t>(t)];
    if (got[t]->size() != want[t]->size()) {
      *errs[t] = INFINITY;
      r.worst = std::string(names[t]) + ": wrong size";
      worst = INFINITY;
      continue;
    }
    for (size_t e = 0; e < want[t]->size(); ++e) {
      const double g = (*got[t])[e];
      if (!(*trusted[t])[e] && std::isfinite(g)) continue;
      double err = std::isfinite(g) ? std::fabs(g - (*want[t])[e]) / scale : INFINITY;
      *errs[t] = std::max(*errs[t], err);
      if (err > worst) {
        worst = err;
        std::ostringstream os;
        os.precision(10);
        os << names[t] << "[" << e << "] = " << g << ", finite differences " << (*want[t])[e] << " (scale " << scale
           << ")";
        r.worst = os.str();
      }
    }
  }
  return r;
}

}  // namespace attn::test
