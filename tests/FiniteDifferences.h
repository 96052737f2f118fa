// Gradients by float64 central finite differences, the oracle the gradient tests compare
// every backend with (reference, CPU, the CUDA kernels' host emulation).
//
// F(q, k, v) = sum_r,c o_rc · dout_rc for one head, o computed by the plan interpreter
// (compiler/PlanInterpreter.h): double precision, the plan's meaning pass by pass, and no
// code shared with the kernels or with autograd (the random suite checks that it equals
// the reference's forward on the same inputs). F's rounding noise divided by the step is
// below the estimates' agreement bar wherever o in double equals o in long double to
// kPrecisionBar (shapes where it does not are ill-conditioned: illConditioned below).
//
// For each element x: D(h) = (F(x + h) - F(x - h)) / 2h at h, 2h and 4h, and Richardson's
// R(h) = (4 D(h) - D(2h)) / 3 and R(2h) (error O(h^4); R(2h)'s is 16 times R(h)'s). The
// estimate is R(h) when |R(h) - R(2h)| <= 1.5e-7 · scale (so R(h) is within about 1e-8 of
// the scale; scale = the largest self-consistent estimate of the head), trying
// h = 1e-3 · max(1, |x|), then h/8, h/64, h/512. Near a kink (relu, abs, max/min/clamp, a
// rowmax changing hands, a conditional's jump) the estimates disagree by the size of the
// kink until 4h is closer than the kink; an element where no step agrees is *untrusted*:
// it sits on a kink, where the derivative is not defined or FD cannot measure it, and it
// is reported and not compared.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/Schedule.h"

namespace attn::test {

/// One head's tensors, row-major: q [lq, d], k [lk, d], v [lk, dv], dout [lq, dv].
struct HeadInputs {
  int64_t lq = 0, lk = 0, d = 0, dv = 0;
  std::vector<double> q, k, v, dout;
};

struct FdGradients {
  std::vector<double> dq, dk, dv;
  /// Per element of dq, dk, dv: false on a kink (see above), not to be compared.
  std::vector<bool> trustedQ, trustedK, trustedV;
  int elements = 0, untrusted = 0;
  bool finite = true;  ///< every F evaluated was finite
};

/// F's gradient with respect to q, k and v by central differences (see above).
FdGradients finiteDifferences(const KernelPlan& plan, const HeadInputs& x);

/// o in double and in long double may differ by this much of o's scale on a shape that is
/// not ill-conditioned.
constexpr double kPrecisionBar = 1e-10;

/// Why o is ill-conditioned at these inputs, or "" when it is not. Ill-conditioned: double
/// rounding decides o (the plan interpreter in double and in long double differ by more than
/// kPrecisionBar of o's scale: a normalisation of differences of nearly equal values, such
/// as tanh near -1 at every key of a row), or a tie or sign the inputs' last bits decide
/// (inputs moved by 1e-13 to 1e-11 relative, six times, move o by more than 1e-7 of its scale: rounding noise
/// normalised, |y - rowmean(y)| of a row whose values are equal in the maths). No two correct
/// double implementations need agree there, and a gradient cannot be judged: the gradient
/// suites and the whole-compiler fuzzer skip and count such shapes.
std::string illConditioned(const KernelPlan& plan, const HeadInputs& x);

/// A gradient against the finite differences, relative to the gradient's scale:
/// err = max over trusted elements |got - fd| / scale, scale = max(max |fd| over that
/// tensor's trusted elements, 1e-2 · the same over dq, dk and dv together, 1e-6) (the
/// floors: with one key, dq and dk are 0 in the maths and rounding noise in any backend).
/// A non-finite gradient element is an infinite error.
struct GradientError {
  double dq = 0, dk = 0, dv = 0;
  std::string worst;  ///< the worst element, for messages
  double max() const;
};
/// The float32 bar of the gradient tests, relative to the gradient's scale: 1e-4, and 1e-3
/// (the cap) for a program with an integer power above 16. A power p multiplies the relative
/// float32 rounding of its base by p in the weights, and of the adjoints' rounding in the
/// chain rule; the cpu backend then reaches 2e-4..6e-4 on some programs where the
/// reference's float32 gets 3e-5 (docs/TESTING.md: a known gap).
double float32Bar(const ir::Graph& graph);

/// The Richardson check can pass beside a kink of a C^2 function (relu(x)^3 with x within a
/// step of 0: the estimate is then off by about h^2 times the third derivative there, 1e-7
/// of the scale, while R(h) and R(2h) agree). Where `dq`, `dk` or `dv` differ from `fd` by
/// more than `bar` of the scale, this re-measures the element in long double at h/8, h/64,
/// ... h/32768 and keeps the first value two successive steps agree on (else marks it
/// untrusted): a wrong gradient stays wrong against the converged differences, a right one
/// beside such a kink no longer fails. At most kMaxRefined elements; returns how many were
/// re-measured.
constexpr int kMaxRefined = 24;
int refineWhereDifferent(const KernelPlan& plan, const HeadInputs& x, FdGradients& fd, const std::vector<double>& dq,
                         const std::vector<double>& dk, const std::vector<double>& dv, double bar);

GradientError compareWithFd(const FdGradients& fd, const std::vector<double>& dq, const std::vector<double>& dk,
                            const std::vector<double>& dv);

}  // namespace attn::test
