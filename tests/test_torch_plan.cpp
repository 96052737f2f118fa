// The schedule proved by execution: every stdlib program run the way its KernelPlan says
// (compiler/PlanInterpreter.h: pass by pass, online statistics, no L×L storage) must give
// the reference backend's output, in float64. A wrong pass count, a statistic read before
// the pass that finishes it, or a wrong rescaling gives different numbers (or an internal
// error).
#include <ATen/ATen.h>
#undef CHECK
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "TestUtil.h"
#include "FiniteDifferences.h"
#include "compiler/PlanInterpreter.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

double relativeError(const std::vector<double>& got, const at::Tensor& want) {
  at::Tensor w = want.contiguous();
  const double* p = w.data_ptr<double>();
  double maxAbs = 0, maxErr = 0;
  for (size_t e = 0; e < got.size(); ++e) {
    maxAbs = std::max(maxAbs, std::fabs(p[e]));
    maxErr = std::max(maxErr, std::fabs(got[e] - p[e]));
  }
  return maxErr / std::max(maxAbs, 1e-300);
}

void compareOnShapes(const Program& program, const KernelPlan& plan, const std::string& what) {
  struct Shape {
    int64_t lq, lk;
  };
  for (Shape s : {Shape{1, 1}, Shape{37, 37}, Shape{5, 37}, Shape{1, 23}}) {
    const int64_t D = 8, Dv = 6;
    at::Tensor q = at::randn({s.lq, D}, at::kDouble), k = at::randn({s.lk, D}, at::kDouble),
               v = at::randn({s.lk, Dv}, at::kDouble);
    at::Tensor want = program(q, k, v);
    std::vector<double> got = interpretPlan(plan, q.data_ptr<double>(), k.data_ptr<double>(), v.data_ptr<double>(),
                                            s.lq, s.lk, D, Dv);
    REQUIRE(got.size() == static_cast<size_t>(want.numel()));
    double err = relativeError(got, want);
    INFO(what, " Lq=", s.lq, " Lk=", s.lk, " relative error ", err);
    CHECK(err < 1e-10);
    // The long double interpreter (the tests' precision oracle) means the same.
    std::vector<long double> qx(q.data_ptr<double>(), q.data_ptr<double>() + q.numel()),
        kx(k.data_ptr<double>(), k.data_ptr<double>() + k.numel()), vx(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
    std::vector<long double> extended = interpretPlanExtended(plan, qx.data(), kx.data(), vx.data(), s.lq, s.lk, D, Dv);
    CHECK(relativeError(std::vector<double>(extended.begin(), extended.end()), want) < 1e-10);
  }
}

}  // namespace

TEST_SUITE("plan") {
  TEST_CASE("every stdlib program: the plan computes the reference's output") {
    at::manual_seed(11);
    auto files = test::attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 25);
    for (const auto& f : files) {
      Program program = Program::fromFile(f);
      compareOnShapes(program, schedule(program.graph()), f);
    }
  }

  TEST_CASE("overrides, windows, expression masks and multi-pass programs") {
    at::manual_seed(12);
    struct Case {
      std::string source;
      size_t passes;
    };
    std::vector<Case> cases = {
        {"attention a {\n  mask window(4)\n  out softmax(dot(q, k) / sqrt(d))\n}\n", 1},
        {"attention a {\n  mask j <= i && i - j < 6\n  out l1norm(relu(dot(q, k)) * log(n + 1))\n}\n", 2},
        {"attention a {\n  mask causal\n  let a = softmax(dot(q, k))\n  let b = l1norm(relu(n * a - 1) ^ 2)\n"
         "  out l1norm(relu(n * b - 1) ^ 3)\n}\n", 3},
        {"attention a {\n  mask causal\n  let s = dot(q, k)\n  out relu(s - rowmax(s) + 1) + rowmin(s) * 0.1\n}\n", 2},
        {"attention a {\n  mask full\n  let s = dot(q, k)\n  out l1norm(s ^ 3)\n}\n", 1},
        {"attention a {\n  mask causal\n  let s = dot(q, k)\n  out exp(s) / rowsum(exp(s)) - rowmean(s) * 0.01\n}\n", 2},
    };
    for (const auto& c : cases) {
      Program program = Program::fromSource(c.source);
      KernelPlan plan = schedule(program.graph());
      INFO(c.source);
      CHECK(plan.passes.size() == c.passes);
      compareOnShapes(program, plan, c.source);
    }
    CompileOptions p3;
    p3.overrides = {{"p", "3"}};
    Program lssar3 = Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn", p3);
    compareOnShapes(lssar3, schedule(lssar3.graph()), "lssar p=3");
  }

  // The interpreter keeps the IR's NaN and infinity rules (IR.h) like the reference: a NaN
  // in q, a visible or a masked key's k, makes NaN exactly the rows that see it; a row of
  // -inf scores has softmax 0 and rowmax -inf.
  TEST_CASE("NaN and -inf scores: the plan puts NaN and 0 where the reference does") {
    at::manual_seed(13);
    const char* sources[] = {
        "attention a {\n  mask causal\n  out softmax(dot(q, k) / sqrt(d))\n}\n",
        "attention a {\n  mask i - j >= 2 && i - j < 6\n  let a = l1norm(softplus(dot(l2norm(q), l2norm(k)) * 3))\n"
        "  out l1norm(relu(n * a - 0.5) ^ 3)\n}\n",
        "attention a {\n  mask causal\n  let s = dot(q, k)\n  out l1norm(relu(s - rowmax(s) + 1) + max(s, 0) + rowmin(s) * 0 + 1)\n}\n",
        "attention a {\n  mask causal\n  let z = dot(q, k) * 0 + log(0 * j)\n"
        "  out softmax(z) + relu(dot(q, k)) * (rowmax(z) == log(0) ? 1 : 2)\n}\n",
    };
    const int64_t L = 11, D = 4, Dv = 3;
    for (const char* source : sources) {
      Program program = Program::fromSource(source);
      KernelPlan plan = schedule(program.graph());
      for (auto [tensor, row] : std::vector<std::pair<char, int64_t>>{{'-', 0}, {'q', 5}, {'q', 0}, {'k', 2}, {'k', 9}}) {
        at::Tensor q = at::randn({L, D}, at::kDouble), k = at::randn({L, D}, at::kDouble), v = at::randn({L, Dv}, at::kDouble);
        if (tensor == 'q') q[row][0] = NAN;
        if (tensor == 'k') k[row][0] = NAN;
        at::Tensor want = program(q, k, v).contiguous();
        std::vector<double> got = interpretPlan(plan, q.data_ptr<double>(), k.data_ptr<double>(), v.data_ptr<double>(), L, L, D, Dv);
        INFO(source, " NaN in ", std::string(1, tensor), "[", row, "]");
        const double* w = want.data_ptr<double>();
        size_t differ = 0, nans = 0, far = 0;
        for (size_t e = 0; e < got.size(); ++e) {
          differ += std::isnan(got[e]) != std::isnan(w[e]);
          nans += std::isnan(w[e]);
          if (!std::isnan(w[e]) && !(std::fabs(got[e] - w[e]) <= 1e-10 * std::max(1.0, std::fabs(w[e])))) ++far;
        }
        CHECK(differ == 0);
        CHECK(far == 0);
        if (row == 5 || row == 2) CHECK(nans > 0);  // row 5 and key 2 are seen by some row
      }
    }
  }

  // The gradient suites skip shapes where double rounding decides o (test::illConditioned):
  // the detector must flag such a shape and pass a well-conditioned one of the same program.
  TEST_CASE("the ill-conditioning detector: tanh near -1 at every key of a row, normalised") {
    Program program = Program::fromSource(R"(attention r {
  let y = dot(q, k) ^ 2
  let a = l1norm(tanh(y - rowsum(y)))
  out l1norm(relu(a - rowmin(a)))
})");
    KernelPlan plan = schedule(program.graph());
    test::HeadInputs x{1, 3, 1, 2, {1.0}, {2.8, 2.7, 2.75}, {0.3, -1.2, 0.8, 0.5, -0.7, 1.9}, {1, 1}};
    // y - rowsum(y) is about -15 at every key: 1 + tanh is 2e-13, kept to 3 digits in double.
    const std::string why = test::illConditioned(plan, x);
    CHECK_MESSAGE(why.find("long double") != std::string::npos, "reason: '", why, "'");
    x.k = {0.5, 0.3, 0.4};
    CHECK_MESSAGE(test::illConditioned(plan, x).empty(), test::illConditioned(plan, x));
    // Differences the inputs' last bits decide, blown up: q·k is 0.1 + 0.2, 0.3 + 0 and
    // 0.15 + 0.15 (equal to within 3e-17, which double and long double round differently).
    Program tie = Program::fromSource(R"(attention r {
  let y = dot(q, k)
  out l1norm(exp(1e16 * (y - rowmean(y))))
})");
    KernelPlan tiePlan = schedule(tie.graph());
    test::HeadInputs t{1, 3, 2, 1, {1, 1}, {0.1, 0.2, 0.3, 0, 0.15, 0.15}, {1, -1, 2}, {1}};
    CHECK_FALSE(test::illConditioned(tiePlan, t).empty());
    // Two keys whose y = (z - rowmean(z))^2 are equal in the maths, so y - rowmax(y) is 0 or
    // an ulp, normalised (ATTN_TEST_SEED=1796328296 gradients3 program 89): double and long
    // double happened to round alike, and two 1e-13 moves did not flip the ulp's sign.
    Program equalSquares = Program::fromSource(R"(attention r {
  mask (i + j >= 9 || i - j < 3) && j * 2 <= i + 1
  let s = dot(l2norm(q), l2norm(k)) * 3
  let z = max(s, -0.41)
  let y = (z - rowmean(z)) ^ 2
  let r = rowmax(y)
  out l1norm(silu(y - r))
})");
    KernelPlan squaresPlan = schedule(equalSquares.graph());
    test::HeadInputs u{4, 7, 2, 3, {0.14380613537138109, -0.19280413056805593, -0.26782937076314361, -0.43452726187715413, 0.20178734966796386, 1.9807940074738668, -1.4985488585359594, -0.90573183517452416},
                       {0.68560552609988679, 0.46431038879512909, 0.067759312847146702, -0.023935671055279779, 1.6468705001680342, -0.8539315897102514, -1.9493974762085018, -1.0220175654055179, 1.0254849314374008, -1.5392826371539088, 1.0665060734708225, 1.0432874979364952, 0.84234655702500916, -0.094633827210343996},
                       {0.63614975949201236, -1.5377187871706535, 1.0324683439074096, 0.52690821693043122, 0.42743686009480814, -0.70817291545006322, -0.78355949813320525, 0.15062142357230657, 0.31819193326426282, 0.32025911574156168, 0.57615801009861178, -0.58127404311986852, 0.56916969051137034, 0.044464068252028123, 0.28755271135772914, -0.58031713302498267, -0.70037805201638581, -1.2431863538022407, -1.5249888347131162, 0.37949890521825286, 0.97409369931580159},
                       {-0.40932021716595701, -0.8633375964705613, 0.07413153128326623, 1.4877710782966107, -0.73001117095441759, -0.13038661771068152, -0.75883413990706061, -0.50035458190546844, -0.5056785313050437, -0.30825598691797002, -1.8550153339377404, 0.53888175554868489}};
    CHECK_FALSE(test::illConditioned(squaresPlan, u).empty());
  }

  // Finite differences beside a kink of relu(x)^3 (C^2): found by the fuzzer, where
  // R(h) and R(2h) agreed on a value 6e-8 off (2.6e-6 of the scale). The inputs and the
  // exact gradient (8.3332810e-09, torch autograd in float64, and the differences converged
  // at h = 1e-6) are that case's.
  TEST_CASE("finite differences beside a kink of relu(x)^3: re-measured converged where a gradient misses the bar") {
    Program program = Program::fromSource(R"(fn f0(x, y) = pow(abs(x) + 1, 0.25) * x ^ 4 + y
attention r {
  let t1 = sqrt(exp(tanh(pow(1 + (dot(q, l2norm(k)) / sqrt(d)) ^ 2, 0.25)) * 3))
  let t4 = softmax(dot(q, l2norm(k) * f0(0.75, d)))
  out l1norm(relu(n * t4 - 1.13) ^ 3) * (relu(rowmin(clamp(t1, -1, 3))) + 1e-1)
})");
    KernelPlan plan = schedule(program.graph());
    test::HeadInputs x{2, 5, 2, 3,
                       {-2.1313240967573681, 0.91374290647767598, -1.4542416181512368, 1.3674849960385755},
                       {0.41203821226153964, 1.4592879227327566, 0.35783920065469338, 0.020899510091477912,
                        -0.072722588200952162, -0.78501373560638754, 0.57156562011055445, -0.67404664344136467,
                        -0.11953290776756857, 2.3319517474236142},
                       {-1.3395535706989801, -0.49492745377571196, 1.8601998589386561, -1.2125273748658134,
                        0.91000965334754069, 0.16990881024832827, 1.2668616877647141, -0.49143903239346493,
                        -0.78722272912049118, -1.4590381600841844, -0.73690278007348065, -0.1661131394133861,
                        -0.61483819246044935, -1.8713741196621965, -0.73947039583391438},
                       {-1.5746935058537737, 0.36710636013535897, -0.31144257748839138, 1.3220761534806789,
                        0.39677203079796719, -0.20177680508868803}};
    const double exact = 8.333281e-09;
    test::FdGradients fd = test::finiteDifferences(plan, x);
    REQUIRE(fd.trustedK[0]);
    // A gradient equal to the differences except at dk[0], where it is exact.
    std::vector<double> dq = fd.dq, dk = fd.dk, dv = fd.dv;
    dk[0] = exact;
    const double before = test::compareWithFd(fd, dq, dk, dv).max();
    INFO("first measure dk[0] = ", fd.dk[0], ", error ", before);
    CHECK(before > 1e-6);  // the weakness this guards against
    test::FdGradients refined = fd;
    CHECK(test::refineWhereDifferent(plan, x, refined, dq, dk, dv, 1e-6) == 1);
    CHECK(refined.trustedK[0]);
    CHECK(test::compareWithFd(refined, dq, dk, dv).max() <= 1e-7);
    // A wrong gradient stays wrong against the converged differences.
    std::vector<double> wrong = dk;
    wrong[0] = exact + 1e-5;  // 4e-4 of dk's scale (0.0237: 1e-2 of the largest gradient, dv's)
    test::FdGradients again = fd;
    test::refineWhereDifferent(plan, x, again, dq, wrong, dv, 1e-6);
    CHECK(test::compareWithFd(again, dq, wrong, dv).max() > 1e-4);
  }
}
