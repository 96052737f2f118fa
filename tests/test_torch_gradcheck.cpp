// Gradients of the reference backend (LibTorch autograd through attn's ops) against central
// finite differences, for every stdlib program, in float64.
//
// F(q, k, v) = sum(o * g), g a fixed random tensor; autograd's dF/dq, dF/dk, dF/dv must
// match (F(x + eps e) - F(x - eps e)) / (2 eps), eps = 1e-6, on every element:
//   rel = |auto - fd| / max(|auto|, |fd|, floor) <= 1e-5,
// where floor = 1e-4 * max(1, max |fd| over q, k and v) absorbs the finite difference's own
// rounding noise (about 1e-16 |F| / eps ~ 1e-9 here) on elements whose gradient is ~0.
//
// Non-differentiable points: relu (and relu6, abs in l1norm, relu in the re-weighting) have
// kinks, and rowmax has ties; with random continuous inputs no score sits within eps of a
// kink and no row has a tie, with probability 1, so no element is skipped.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/Attention.h"

// LibTorch brings glog, whose CHECK(cond) aborts the process on failure: doctest's CHECK must
// win, so LibTorch is included first and its CHECK removed before doctest defines its own.
#undef CHECK
#include <doctest/doctest.h>

using namespace attn;

namespace {

std::string gcBaseName(const std::string& path) {
  std::string f = path.substr(path.find_last_of('/') + 1);
  return f.substr(0, f.size() - 5);
}

struct GradResult {
  double worstRel = 0;    // max over elements of the relative error
  double worstAbs = 0;    // max over elements of |auto - fd|
  std::string where;      // the worst element, for the message
  bool finite = true;     // autograd's gradients were finite
};

// Compares autograd with central differences for F = sum(program(q, k, v) * g).
GradResult gradcheck(const Program& program, const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0,
                     const at::Tensor& g) {
  GradResult result;
  // Autograd.
  at::Tensor q = q0.clone().requires_grad_(true);
  at::Tensor k = k0.clone().requires_grad_(true);
  at::Tensor v = v0.clone().requires_grad_(true);
  at::Tensor F = (program(q, k, v) * g).sum();
  F.backward();
  const at::Tensor autoGrad[3] = {q.grad().clone(), k.grad().clone(), v.grad().clone()};
  for (const auto& t : autoGrad) result.finite = result.finite && at::isfinite(t).all().item<bool>();

  // Central finite differences, one element at a time.
  const double eps = 1e-6;
  c10::NoGradGuard noGrad;
  at::Tensor x[3] = {q0.clone().contiguous(), k0.clone().contiguous(), v0.clone().contiguous()};
  at::Tensor fd[3];
  auto evalF = [&] { return (program(x[0], x[1], x[2]) * g).sum().item<double>(); };
  double fdMax = 1.0;
  for (int t = 0; t < 3; ++t) {
    fd[t] = at::zeros_like(x[t]);
    double* px = x[t].data_ptr<double>();
    double* pf = fd[t].data_ptr<double>();
    for (int64_t e = 0; e < x[t].numel(); ++e) {
      const double saved = px[e];
      px[e] = saved + eps;
      const double plus = evalF();
      px[e] = saved - eps;
      const double minus = evalF();
      px[e] = saved;
      pf[e] = (plus - minus) / (2 * eps);
      fdMax = std::max(fdMax, std::abs(pf[e]));
    }
  }
  const double floor = 1e-4 * fdMax;
  const char* names[3] = {"dq", "dk", "dv"};
  for (int t = 0; t < 3; ++t) {
    at::Tensor a = autoGrad[t].contiguous();
    const double* pa = a.data_ptr<double>();
    const double* pf = fd[t].data_ptr<double>();
    for (int64_t e = 0; e < a.numel(); ++e) {
      const double diff = std::abs(pa[e] - pf[e]);
      const double rel = diff / std::max({std::abs(pa[e]), std::abs(pf[e]), floor});
      if (!(rel <= result.worstRel)) {  // NaN propagates as the worst
        result.worstRel = std::isnan(rel) ? INFINITY : rel;
        std::ostringstream os;
        os << names[t] << "[flat " << e << "]: autograd " << pa[e] << ", finite difference " << pf[e];
        result.where = os.str();
      }
      result.worstAbs = std::max(result.worstAbs, diff);
    }
  }
  return result;
}

struct GcShape {
  int64_t lq, lk;
};

}  // namespace

TEST_SUITE("gradcheck") {
  TEST_CASE("every stdlib program: autograd gradients equal central finite differences (float64)") {
    const std::vector<GcShape> shapes = {{1, 1}, {5, 5}, {9, 9}, {3, 7}};
    const int64_t B = 1, H = 2, D = 4, DV = 3;
    uint64_t seed = 2024;
    int programs = 0;
    for (const auto& path : test::attnFilesIn(ATTN_STDLIB)) {
      const std::string name = gcBaseName(path);
      std::vector<std::vector<ParamOverride>> settings = {{}};
      if (name == "lssar" || name == "softmax_rw" || name == "sigmoid_l1_rw" || name == "sigmoid_ramapuram_l1_rw")
        settings.push_back({{"p", "3"}});
      if (name == "sliding_window") settings.push_back({{"W", "2"}});  // the default 256 is causal at L <= 9
      ++programs;
      for (const auto& overrides : settings) {
        CompileOptions options;
        options.overrides = overrides;
        Program program = Program::fromFile(path, options);
        std::string label = name;
        for (const auto& o : overrides) label += " " + o.name + "=" + o.value;
        double worst = 0, worstAbs = 0;
        for (const GcShape& sh : shapes) {
          auto gen = at::make_generator<at::CPUGeneratorImpl>(seed++);
          at::Tensor q = at::randn({B, H, sh.lq, D}, gen, at::kDouble);
          at::Tensor k = at::randn({B, H, sh.lk, D}, gen, at::kDouble);
          at::Tensor v = at::randn({B, H, sh.lk, DV}, gen, at::kDouble);
          at::Tensor g = at::randn({B, H, sh.lq, DV}, gen, at::kDouble);
          GradResult r = gradcheck(program, q, k, v, g);
          CHECK_MESSAGE(r.finite, label << " Lq=" << sh.lq << " Lk=" << sh.lk << ": autograd gave a non-finite gradient");
          CHECK_MESSAGE(r.worstRel <= 1e-5, label << " Lq=" << sh.lq << " Lk=" << sh.lk << ": max rel err "
                                                 << r.worstRel << " at " << r.where);
          worst = std::max(worst, r.worstRel);
          worstAbs = std::max(worstAbs, r.worstAbs);
        }
        MESSAGE(label << ": max abs err " << worstAbs << ", max rel err " << worst);
      }
    }
    CHECK(programs >= 31);
  }

  TEST_CASE("backward through the API: o.backward(dout) fills q.grad, k.grad, v.grad of the inputs' dtype") {
    Program p = Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    for (auto dtype : {at::kFloat, at::kDouble}) {
      at::Tensor q = at::randn({1, 2, 6, 4}, gen, dtype).requires_grad_(true);
      at::Tensor k = at::randn({1, 2, 6, 4}, gen, dtype).requires_grad_(true);
      at::Tensor v = at::randn({1, 2, 6, 3}, gen, dtype).requires_grad_(true);
      at::Tensor o = p(q, k, v);
      o.backward(at::ones_like(o));
      for (const at::Tensor* t : {&q, &k, &v}) {
        REQUIRE(t->grad().defined());
        CHECK((t->grad().scalar_type() == dtype));
        CHECK(t->grad().sizes() == t->sizes());
        CHECK(at::isfinite(t->grad()).all().item<bool>());
      }
    }
  }
}
