// Numerical robustness of the reference backend: inputs chosen so that the naive formula
// fails (overflow of LSSAR's power at long rows, overflow of a user-written exp / rowsum),
// rows whose normaliser is exactly 0, and reduced-precision inputs.
//
// Errors are relative to the largest magnitude of the reference:
//   max |o - ref| / max(max |ref|, 1e-30).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

#include "TestUtil.h"
#include "runtime/Attention.h"

// LibTorch brings glog, whose CHECK(cond) aborts the process on failure: doctest's CHECK must
// win, so LibTorch is included first and its CHECK removed before doctest defines its own.
#undef CHECK
#include <doctest/doctest.h>

using namespace attn;

namespace {

double numRelErr(const at::Tensor& o, const at::Tensor& ref) {
  at::Tensor a = o.to(at::kDouble), b = ref.to(at::kDouble);
  if (!at::isfinite(a).all().item<bool>()) return INFINITY;
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

bool allFinite(const at::Tensor& t) { return at::isfinite(t).all().item<bool>(); }

std::string stdlibPath(const std::string& name) { return std::string(ATTN_STDLIB) + "/" + name + ".attn"; }

std::string numBaseName(const std::string& path) {
  std::string f = path.substr(path.find_last_of('/') + 1);
  return f.substr(0, f.size() - 5);
}

// Every query points along one random direction u, plus noise; keys point the other way,
// except the "needle" keys, which point along u: rows get one or a few dominant weights.
std::pair<at::Tensor, at::Tensor> peakedQueriesAndKeys(int64_t L, int64_t D, std::initializer_list<int64_t> needles,
                                                       at::Generator& gen) {
  at::Tensor u = at::randn({D}, gen, at::kDouble);
  u = u / u.norm();
  at::Tensor q = 8 * u + 0.3 * at::randn({1, 1, L, D}, gen, at::kDouble);
  at::Tensor sign = at::full({1, 1, L, 1}, -1.0, at::kDouble);
  for (int64_t needle : needles) sign[0][0][needle].fill_(1.0);
  at::Tensor k = 8 * sign * u + 0.3 * at::randn({1, 1, L, D}, gen, at::kDouble);
  return {q, k};
}

}  // namespace

TEST_SUITE("numerics") {
  TEST_CASE("LSSAR (p = 15) at L = 4096 with peaked rows: finite, equal to float64; the naive float32 formula overflows") {
    const int64_t L = 4096, D = 64;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4096);
    // Every query points along one direction u; most keys point the other way, and a few
    // "needle" keys (positions 0, 1500, 3000) point along u. LSSA's score for a needle is
    // about +log(64) log(n) ~ +32, for the other keys about -32, so a row holds one (or,
    // after 1500 and 3000, two or three) dominant weight: N·a ~ N / (number of needles),
    // e.g. ~1500 on row 1499, and (1500 - 1)^15 ~ 4e47 overflows float32 (max 3.4e38).
    auto [q, k] = peakedQueriesAndKeys(L, D, {0, 1500, 3000}, gen);
    at::Tensor v = at::randn({1, 1, L, D}, gen, at::kDouble);
    at::Tensor q32 = q.to(at::kFloat), k32 = k.to(at::kFloat), v32 = v.to(at::kFloat);

    // The naive float32 formula, written here: relu(n * a - O)^15 overflows on this input.
    {
      at::Tensor i = at::arange(0, L, at::kFloat).view({1, 1, L, 1});
      at::Tensor j = at::arange(0, L, at::kFloat).view({1, 1, 1, L});
      at::Tensor mask = j <= i;
      at::Tensor n = mask.to(at::kFloat).sum(-1, true);
      at::Tensor qn = q32 / q32.norm(2, -1, true), kn = k32 / k32.norm(2, -1, true);
      at::Tensor s = std::log(64.0f) * at::log(n) * at::matmul(qn, kn.transpose(-1, -2));
      at::Tensor sp = at::where(mask, at::log1p(at::exp(s)), at::zeros({}, at::kFloat));
      at::Tensor a = sp / sp.sum(-1, true);
      at::Tensor O = (i >= 3).to(at::kFloat);
      at::Tensor r = at::where(mask, at::pow(at::relu(n * a - O), 15), at::zeros({}, at::kFloat));
      at::Tensor w = r / r.sum(-1, true);
      at::Tensor o = at::matmul(w, v32);
      CHECK_MESSAGE(at::isinf(r).any().item<bool>(), "the test input is not hard: the naive power did not overflow");
      CHECK_MESSAGE(!allFinite(o), "the naive float32 LSSAR output was finite; the input must make it overflow");
      MESSAGE("naive float32 LSSAR: " << at::isinf(r).sum().item<int64_t>() << " infinite powers, "
                                      << at::isnan(o).any(-1).sum().item<int64_t>() << " NaN output rows of " << L);
    }

    Program lssar = Program::fromFile(stdlibPath("lssar"));
    at::Tensor o32 = lssar(q32, k32, v32);
    at::Tensor o64 = lssar(q32.to(at::kDouble), k32.to(at::kDouble), v32.to(at::kDouble));
    REQUIRE((o32.scalar_type() == at::kFloat));
    CHECK(allFinite(o32));
    CHECK(allFinite(o64));
    const double err = numRelErr(o32, o64);
    MESSAGE("LSSAR L=4096 float32 vs float64: rel err " << err);
    CHECK(err <= 1e-4);
    // The rows really are peaked: row 1499's output is (nearly) v of the needle at 0.
    CHECK(numRelErr(o64[0][0][1499], v[0][0][0]) <= 1e-6);
  }

  TEST_CASE("a user-written exp(s) / rowsum(exp(s)) with scores ~200 is finite and equals softmax") {
    const int64_t L = 96, D = 32;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(200);
    // q, k entries ~ N(0, 200): scores q.k / sqrt(d) have a standard deviation of 200.
    at::Tensor q = at::randn({2, 2, L, D}, gen, at::kFloat) * std::sqrt(200.0);
    at::Tensor k = at::randn({2, 2, L, D}, gen, at::kFloat) * std::sqrt(200.0);
    at::Tensor v = at::randn({2, 2, L, D}, gen, at::kFloat);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(D));
    MESSAGE("max |score| " << s.abs().max().item<double>());
    // Naively, exp of these scores overflows float32.
    CHECK(at::isinf(at::exp(s)).any().item<bool>());

    Program user = Program::fromSource(
        "attention user_softmax {\n"
        "  mask causal\n"
        "  let s = dot(q, k) / sqrt(d)\n"
        "  out exp(s) / rowsum(exp(s))\n"
        "}\n");
    Program softmax = Program::fromFile(stdlibPath("softmax"));
    at::Tensor o = user(q, k, v);
    at::Tensor ref = softmax(q, k, v);
    CHECK(allFinite(o));
    const double err = numRelErr(o, ref);
    MESSAGE("user exp/rowsum vs softmax (float32): rel err " << err);
    CHECK(err <= 1e-5);
    // And both equal the float64 softmax of the same values up to float32's rounding of
    // scores of magnitude ~600 (a relative 6e-8 of 600 is 4e-5 in the exponent).
    at::Tensor mask = at::arange(L).view({1, L}) <= at::arange(L).view({L, 1});
    at::Tensor s64 = at::matmul(q.to(at::kDouble), k.to(at::kDouble).transpose(-1, -2)) / std::sqrt(double(D));
    at::Tensor w64 = at::softmax(at::where(mask, s64, at::full({}, -INFINITY, at::kDouble)), -1);
    const double err64 = numRelErr(o, at::matmul(w64, v.to(at::kDouble)));
    MESSAGE("user exp/rowsum (float32) vs float64 softmax: rel err " << err64);
    CHECK(err64 <= 1e-3);
    // Backward is finite too, for the user's program and the stdlib's softmax (a masked
    // score far above its row's maximum must not overflow exp in the gradient either).
    for (const Program* p : {&user, &softmax}) {
      at::Tensor qg = q.clone().requires_grad_(true), kg = k.clone().requires_grad_(true);
      (*p)(qg, kg, v).sum().backward();
      CHECK_MESSAGE(allFinite(qg.grad()), p->name() << ": dq has " << at::isnan(qg.grad()).sum().item<int64_t>()
                                                   << " NaN of " << qg.grad().numel());
      CHECK_MESSAGE(allFinite(kg.grad()), p->name() << ": dk has " << at::isnan(kg.grad()).sum().item<int64_t>()
                                                   << " NaN of " << kg.grad().numel());
    }
  }

  TEST_CASE("a row whose weights are all zero gives o = 0 exactly, and finite gradients") {
    const int64_t L = 12, D = 8;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    // Keys have positive entries; queries of the first 7 rows negative entries (every score
    // of those rows < 0, relu gives 0 everywhere, the normaliser is 0), the rest positive.
    at::Tensor k = at::randn({2, 3, L, D}, gen, at::kDouble).abs() + 0.1;
    at::Tensor q = at::randn({2, 3, L, D}, gen, at::kDouble).abs() + 0.1;
    q.narrow(2, 0, 7).neg_();
    at::Tensor v = at::randn({2, 3, L, 5}, gen, at::kDouble);
    Program p = Program::fromSource("attention zero_rows {\n  mask causal\n  out l1norm(relu(dot(q, k)))\n}\n");
    for (auto dtype : {at::kFloat, at::kDouble}) {
      at::Tensor qd = q.to(dtype).clone().requires_grad_(true), kd = k.to(dtype).clone().requires_grad_(true),
                 vd = v.to(dtype).clone().requires_grad_(true);
      at::Tensor o = p(qd, kd, vd);
      CHECK(allFinite(o));
      CHECK((o.narrow(2, 0, 7) == 0).all().item<bool>());
      CHECK((o.narrow(2, 7, L - 7).abs().sum(-1) > 0).all().item<bool>());
      o.sum().backward();
      CHECK(allFinite(qd.grad()));
      CHECK(allFinite(kd.grad()));
      CHECK(allFinite(vd.grad()));
      CHECK((qd.grad().narrow(2, 0, 7) == 0).all().item<bool>());
    }
    // The stdlib's relu attention on the same input: the same rows are 0.
    for (const char* name : {"relu_li", "phi_relu"}) {
      at::Tensor o = Program::fromFile(stdlibPath(name))(q, k, v);
      CHECK(allFinite(o));
      CHECK_MESSAGE((o.narrow(2, 0, 7) == 0).all().item<bool>(), std::string(name));
    }
    // A row with no key at all (row 0 of `mask j < i`): o = 0 for any weights, and the
    // row reductions over nothing (rowmax in softmax) give no NaN.
    for (const char* out : {"softmax(dot(q, k))", "l1norm(sigmoid(dot(q, k)))", "dot(q, k) - rowmax(dot(q, k))",
                            "rowmean(dot(q, k)) + rowmin(dot(q, k)) + 0 * j"}) {
      Program strict = Program::fromSource(std::string("attention strict {\n  mask j < i\n  out ") + out + "\n}\n");
      at::Tensor o = strict(q, k, v);
      CHECK_MESSAGE(allFinite(o), std::string(out));
      CHECK_MESSAGE((o.narrow(2, 0, 1) == 0).all().item<bool>(), std::string(out));
    }
  }

  TEST_CASE("float16 and bfloat16 inputs give outputs of their dtype within 1e-2 of the float32 result") {
    const int64_t L = 64, D = 32;
    for (const auto& path : test::attnFilesIn(ATTN_STDLIB)) {
      const std::string name = numBaseName(path);
      Program p = Program::fromFile(path);
      auto gen = at::make_generator<at::CPUGeneratorImpl>(16);
      at::Tensor q = at::randn({1, 2, L, D}, gen, at::kFloat);
      at::Tensor k = at::randn({1, 2, L, D}, gen, at::kFloat);
      at::Tensor v = at::randn({1, 2, L, D}, gen, at::kFloat);
      for (auto dtype : {at::kHalf, at::kBFloat16}) {
        // The same values in both runs: the low-precision inputs, widened for float32.
        at::Tensor ql = q.to(dtype), kl = k.to(dtype), vl = v.to(dtype);
        at::Tensor o = p(ql, kl, vl);
        at::Tensor ref = p(ql.to(at::kFloat), kl.to(at::kFloat), vl.to(at::kFloat));
        CHECK((o.scalar_type() == dtype));
        CHECK(allFinite(o));
        const double err = numRelErr(o, ref);
        CHECK_MESSAGE(err <= 1e-2, name << " " << c10::toString(dtype) << ": rel err " << err);
      }
    }
  }

  TEST_CASE("LSSAR backward at L = 1024 with peaked rows: finite, float32 gradients equal float64's") {
    const int64_t L = 1024, D = 64;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1024);
    // The construction of the L = 4096 case: N·a ~ 1000 on rows after the needle at 0, so
    // the naive power (and its derivative, 15 x^14) overflows float32.
    auto [q, k] = peakedQueriesAndKeys(L, D, {0, 600}, gen);
    at::Tensor v = at::randn({1, 1, L, D}, gen, at::kDouble);
    at::Tensor g = at::randn({1, 1, L, D}, gen, at::kDouble);
    Program lssar = Program::fromFile(stdlibPath("lssar"));
    at::Tensor grads[2][3];
    int slot = 0;
    for (auto dtype : {at::kFloat, at::kDouble}) {
      at::Tensor qd = q.to(at::kFloat).to(dtype).clone().requires_grad_(true);
      at::Tensor kd = k.to(at::kFloat).to(dtype).clone().requires_grad_(true);
      at::Tensor vd = v.to(at::kFloat).to(dtype).clone().requires_grad_(true);
      at::Tensor o = lssar(qd, kd, vd);
      (o * g.to(dtype)).sum().backward();
      grads[slot][0] = qd.grad();
      grads[slot][1] = kd.grad();
      grads[slot][2] = vd.grad();
      ++slot;
    }
    const char* names[3] = {"dq", "dk", "dv"};
    for (int t = 0; t < 3; ++t) {
      CHECK_MESSAGE(allFinite(grads[0][t]), std::string(names[t]) << " (float32) is not finite");
      const double err = numRelErr(grads[0][t], grads[1][t]);
      MESSAGE("LSSAR L=1024 " << std::string(names[t]) << " float32 vs float64: rel err " << err);
      CHECK(err <= 1e-3);
    }
  }

  TEST_CASE("gradients stay finite when a masked position computes inf or NaN") {
    // LANGUAGE.md: meaning is exact "forward and backward"; masked (i, j) pairs do not exist.
    // A value that is inf or NaN only at masked positions (or only in a row with no key)
    // must not reach dq, dk or dv. The forward already masks it; autograd multiplies the zero
    // gradient of a masked position by the inf/NaN factor (0 * inf = NaN) unless the
    // backend guards against it.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
    const int64_t L = 6, D = 4;
    at::Tensor q = at::randn({1, 2, L, D}, gen, at::kDouble);
    at::Tensor k = at::randn({1, 2, L, D}, gen, at::kDouble);
    at::Tensor v = at::randn({1, 2, L, 3}, gen, at::kDouble);
    const struct {
      const char* what;
      const char* source;
    } cases[] = {
        // sqrt(i - j + 1) is NaN for j > i + 1 (masked by causal)
        {"causal, sqrt(i - j + 1) factor", "attention a {\n  mask causal\n  out softmax(dot(q, k) * sqrt(i - j + 1))\n}\n"},
        // 1 / (i - j + 1) is inf at j = i + 1 (masked by causal)
        {"causal, 1 / (i - j + 1) factor", "attention a {\n  mask causal\n  out softmax(dot(q, k) / (i - j + 1))\n}\n"},
        // row 0 of `mask j < i` has no key: n = 0 and log(n) = -inf there (LSSA-style scaling)
        {"strictly causal, log(n) factor",
         "attention a {\n  mask j < i\n  out l1norm(softplus(log(n) * dot(l2norm(q), l2norm(k))))\n}\n"},
    };
    for (const auto& c : cases) {
      Program p = Program::fromSource(c.source);
      at::Tensor qd = q.clone().requires_grad_(true), kd = k.clone().requires_grad_(true),
                 vd = v.clone().requires_grad_(true);
      at::Tensor o = p(qd, kd, vd);
      CHECK_MESSAGE(allFinite(o), std::string(c.what) << ": forward not finite");
      o.sum().backward();
      CHECK_MESSAGE(allFinite(qd.grad()), std::string(c.what) << ": dq has " << at::isnan(qd.grad()).sum().item<int64_t>()
                                                 << " NaN of " << qd.grad().numel());
      CHECK_MESSAGE(allFinite(kd.grad()), std::string(c.what) << ": dk has " << at::isnan(kd.grad()).sum().item<int64_t>()
                                                 << " NaN of " << kd.grad().numel());
      CHECK_MESSAGE(allFinite(vd.grad()), std::string(c.what) << ": dv not finite");
    }
  }

  TEST_CASE("re-weighted programs: a future key that dominates leaves float32 gradients finite") {
    // Every query points along u, every key against u except the last one, which points
    // along u. For rows i < L - 1 that key is masked (j > i), but its value there, N·a ~ 1e6
    // over a row maximum of relu(N·a - 1) ~ 0.5, makes (b / rowmax(b))^15 overflow float32 at
    // that masked position. The forward masks it; the gradients must not turn it into NaN.
    // This is ordinary causal training data: a key that later queries attend to strongly.
    const int64_t L = 64, D = 64;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1024);
    at::Tensor u = at::randn({D}, gen, at::kDouble);
    u = u / u.norm();
    at::Tensor q = (8 * u + 0.3 * at::randn({1, 1, L, D}, gen, at::kDouble)).to(at::kFloat);
    at::Tensor sign = at::full({1, 1, L, 1}, -1.0, at::kDouble);
    sign[0][0][L - 1].fill_(1.0);
    at::Tensor k = (8 * sign * u + 0.3 * at::randn({1, 1, L, D}, gen, at::kDouble)).to(at::kFloat);
    at::Tensor v = at::randn({1, 1, L, D}, gen, at::kFloat);
    for (const char* name : {"lssar", "softmax_rw", "sigmoid_l1_rw", "sigmoid_ramapuram_l1_rw"}) {
      Program p = Program::fromFile(stdlibPath(name));
      at::Tensor grads[2][2];
      int slot = 0;
      for (auto dtype : {at::kFloat, at::kDouble}) {
        at::Tensor qd = q.to(dtype).clone().requires_grad_(true), kd = k.to(dtype).clone().requires_grad_(true);
        at::Tensor o = p(qd, kd, v.to(dtype));
        CHECK_MESSAGE(allFinite(o), std::string(name) << " " << c10::toString(dtype) << ": forward not finite");
        o.sum().backward();
        grads[slot][0] = qd.grad();
        grads[slot][1] = kd.grad();
        ++slot;
      }
      for (int t = 0; t < 2; ++t) {
        const at::Tensor& g32 = grads[0][t];
        CHECK_MESSAGE(allFinite(grads[1][t]), std::string(name) << ": float64 gradient not finite");
        CHECK_MESSAGE(allFinite(g32), std::string(name) << (t ? " dk" : " dq") << " (float32) has "
                                                        << at::isnan(g32).sum().item<int64_t>() << " NaN of "
                                                        << g32.numel());
        if (allFinite(g32)) CHECK(numRelErr(g32, grads[1][t]) <= 1e-3);
      }
    }
  }
}
