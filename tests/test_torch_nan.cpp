// NaN and inf in the inputs, against the rule of IR.h and docs/LANGUAGE-NOTES.md: a NaN that
// a row can see (in q_i, in a visible k_j or v_j, or arising in the row's arithmetic) gives
// NaN in that row's output (for v_j: in the columns where v_j is NaN), and nothing else; a
// row that sees no key stays 0. Every backend is checked against the rule, computed here
// from the mask alone, and the entries the rule leaves alone against the same backend on
// the input without the NaN. Also: l2norm at extreme scales (1e20, 1e-30), where the maths
// is scale-invariant but |x|^2 overflows or underflows float32.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#undef CHECK
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "runtime/Attention.h"

using namespace attn;

namespace {

struct MaskCase {
  const char* text;  // the mask statement
  std::function<bool(int64_t, int64_t)> sees;
};

const std::vector<MaskCase>& masks() {
  static const std::vector<MaskCase> m = {
      {"mask causal", [](int64_t i, int64_t j) { return j <= i; }},
      {"mask window(3)", [](int64_t i, int64_t j) { return j <= i && j > i - 3; }},
      {"mask full", [](int64_t, int64_t) { return true; }},
      // rows 0 and 1 see no key at all
      {"mask i - j >= 2 && i - j < 6", [](int64_t i, int64_t j) { return i - j >= 2 && i - j < 6; }},
  };
  return m;
}

// Bodies covering each way a NaN travels: online softmax, l2norm + l1norm, the online power,
// a direct output, row statistics as values, the elementwise ops that used to drop a NaN
// (relu, relu6, sign, max, min, clamp), a softmax used as a value.
struct Body {
  std::string name, text;
  // Every score of a row reaches its gradient through a smooth normaliser, so a NaN the
  // row sees must make its dq NaN. (Elsewhere a NaN may meet a derivative that is a
  // selection, relu's or max's, and stop: only "nothing else" is asserted there.)
  bool smooth;
};

const std::vector<Body>& bodies() {
  static const std::vector<Body> b = {
      {"softmax", "out softmax(dot(q, k) / sqrt(d))", true},
      {"lssa", "let s = log(d) * log(n + 1) * dot(l2norm(q), l2norm(k))\n  out l1norm(softplus(s))", true},
      {"lssar", "let a = l1norm(softplus(dot(l2norm(q), l2norm(k)) * 3))\n  out l1norm(relu(n * a - 0.5) ^ 3)", true},
      {"direct", "out relu(dot(q, k)) / (n + 1)", false},
      {"row values", "let s = dot(q, k)\n  out l1norm(relu(s - rowmean(s)) + rowmax(s) - rowmin(s) + 0.25)", false},
      {"elementwise", "let s = dot(q, k)\n  out l1norm(relu6(s) + abs(sign(s)) + max(s, 0) + min(s, 1) + clamp(s, -1, 1) + 3)",
       false},
      {"softmax value", "let s = dot(q, k)\n  out l1norm(softmax(s) + 0.1)", true},
  };
  return b;
}

Program compile(const std::string& body, const MaskCase& mask) {
  return Program::fromSource("attention t {\n  " + std::string(mask.text) + "\n  " + body + "\n}\n");
}

// Where the poison goes: tensor 'q', 'k' or 'v', its row, and column 0.
struct Poison {
  char tensor;
  int64_t row;
};

struct Run {
  at::Tensor o, dq, dk, dv;
};

Run run(const Program& p, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& dout,
        Backend backend) {
  at::Tensor qq = q.detach().requires_grad_(), kk = k.detach().requires_grad_(), vv = v.detach().requires_grad_();
  at::Tensor o = p(qq, kk, vv, backend);
  o.backward(dout);
  auto grad = [](const at::Tensor& t) { return t.grad().defined() ? t.grad() : at::zeros_like(t); };
  return {o.detach(), grad(qq), grad(kk), grad(vv)};
}

// Entries where `expected` says NaN must be NaN; everywhere else the value must equal `clean`
// (the same backend on the input without the poison) to `tol` of clean's largest value.
void checkTensor(const std::string& what, const at::Tensor& got, const at::Tensor& clean, const at::Tensor& mustBeNan,
                 const at::Tensor& mayBeNan, double tol) {
  at::Tensor g = got.to(at::kDouble).flatten(), c = clean.to(at::kDouble).flatten();
  at::Tensor must = mustBeNan.flatten(), may = mayBeNan.flatten().logical_or(must);
  at::Tensor nan = at::isnan(g);
  const int64_t missing = must.logical_and(nan.logical_not()).sum().item<int64_t>();
  const int64_t leaked = may.logical_not().logical_and(at::isfinite(g).logical_not()).sum().item<int64_t>();
  CHECK_MESSAGE(missing == 0, what << ": " << missing << " entries the rule makes NaN are not");
  CHECK_MESSAGE(leaked == 0, what << ": " << leaked << " entries the NaN cannot reach are not finite");
  at::Tensor keep = may.logical_not();
  if (keep.any().item<bool>()) {
    double scale = std::max(c.masked_select(keep).abs().max().item<double>(), 1e-3);
    double err = (g - c).masked_select(keep).abs().max().item<double>() / scale;
    CHECK_MESSAGE(err <= tol, what << ": entries the NaN cannot reach changed by " << err << " (relative)");
  }
}

// The NaN rule for one program, mask, poison and backend.
void checkRule(const Body& body, const Program& p, const MaskCase& mask, const Poison& poison, double value,
               at::ScalarType dtype, Backend backend) {
  const std::string& name = body.name;
  const int64_t L = 11, D = 4, Dv = 3;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234 + poison.row);
  at::Tensor q = at::randn({1, 1, L, D}, gen, at::kDouble).to(dtype), k = at::randn({1, 1, L, D}, gen, at::kDouble).to(dtype),
             v = at::randn({1, 1, L, Dv}, gen, at::kDouble).to(dtype), dout = at::randn({1, 1, L, Dv}, gen, at::kDouble).to(dtype);
  at::Tensor qp = q.clone(), kp = k.clone(), vp = v.clone();
  (poison.tensor == 'q' ? qp : poison.tensor == 'k' ? kp : vp)[0][0][poison.row][0] = value;

  // What the rule says, from the mask: P = the rows that can see the poison.
  std::vector<char> poisoned(static_cast<size_t>(L), 0);
  at::Tensor sees = at::zeros({L, L}, at::kBool);
  for (int64_t i = 0; i < L; ++i) {
    bool any = false;
    for (int64_t j = 0; j < L; ++j) {
      sees[i][j] = mask.sees(i, j);
      any = any || mask.sees(i, j);
    }
    if (poison.tensor == 'q') poisoned[static_cast<size_t>(i)] = i == poison.row && any;
    else poisoned[static_cast<size_t>(i)] = mask.sees(i, poison.row);
  }
  at::Tensor rows = at::zeros({L}, at::kBool);
  for (int64_t i = 0; i < L; ++i) rows[i] = poisoned[static_cast<size_t>(i)] != 0;
  // Keys a poisoned row sees (their dk, dv may take the NaN back), and the poisoned key.
  at::Tensor reachedKeys = sees.logical_and(rows.unsqueeze(1)).any(0);
  if (poison.tensor != 'q') reachedKeys[poison.row] = true;

  at::Tensor oMust = rows.unsqueeze(1).expand({L, Dv}).clone();
  if (poison.tensor == 'v') oMust.slice(1, 1).fill_(false);  // only v's column 0 is NaN
  const bool isNan = std::isnan(value);
  at::Tensor none = at::zeros({L, Dv}, at::kBool);

  Run got = run(p, qp, kp, vp, dout, backend), clean = run(p, q, k, v, dout, backend);
  const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
  std::string what = name + ", " + mask.text + ", " + (isNan ? "NaN" : "inf") + " in " + poison.tensor + "[" +
                     std::to_string(poison.row) + "] (" + backendName(backend) + ", " + c10::toString(dtype) + ")";
  // With inf, whether a row that sees it is inf, NaN or (an -inf score) finite depends on
  // the program: only "nothing else" is asserted.
  checkTensor(what + " o", got.o[0][0], clean.o[0][0], isNan ? oMust : none, rows.unsqueeze(1).expand({L, Dv}), tol);
  at::Tensor dqMust = isNan && body.smooth ? rows.unsqueeze(1).expand({L, D}).clone() : at::zeros({L, D}, at::kBool);
  // The gradient at the poisoned entry's own row is a derivative at a NaN point: it may be
  // NaN even where the output does not depend on it (a row that sees no key, l2norm's share).
  at::Tensor dqMay = rows.clone();
  if (poison.tensor == 'q') dqMay[poison.row] = true;
  checkTensor(what + " dq", got.dq[0][0], clean.dq[0][0], dqMust, dqMay.unsqueeze(1).expand({L, D}), tol);
  checkTensor(what + " dk", got.dk[0][0], clean.dk[0][0], at::zeros({L, D}, at::kBool),
              reachedKeys.unsqueeze(1).expand({L, D}), tol);
  at::Tensor dvMay = poison.tensor == 'v' ? at::zeros({L, Dv}, at::kBool) : reachedKeys.unsqueeze(1).expand({L, Dv});
  checkTensor(what + " dv", got.dv[0][0], clean.dv[0][0], at::zeros({L, Dv}, at::kBool), dvMay, tol);
}

void checkNanRule(Backend backend) {
  const std::vector<Poison> poisons = {{'q', 5}, {'q', 0}, {'k', 2}, {'k', 8}, {'v', 2}, {'v', 8}};
  for (const Body& body : bodies())
    for (const MaskCase& mask : masks()) {
      Program p = compile(body.text, mask);
      for (const Poison& poison : poisons)
        for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
          checkRule(body, p, mask, poison, NAN, dtype, backend);
          checkRule(body, p, mask, poison, INFINITY, dtype, backend);
        }
    }
}

// LSSA with q and k scaled by `scale`: the same o as unscaled (l2norm is scale-invariant),
// dq and dk divided by the scale.
void checkL2NormScale(Backend backend, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20);
  const int64_t L = 37, D = 16;
  at::Tensor q = at::randn({1, 2, L, D}, gen, at::kDouble), k = at::randn({1, 2, L, D}, gen, at::kDouble),
             v = at::randn({1, 2, L, D}, gen, at::kDouble), dout = at::randn({1, 2, L, D}, gen, at::kDouble);
  Program lssa = Program::fromFile(std::string(ATTN_STDLIB) + "/lssa.attn");
  Program lssar = Program::fromFile(std::string(ATTN_STDLIB) + "/lssar.attn");
  for (const Program* p : {&lssa, &lssar}) {
    Run ref = run(*p, q, k, v, dout, Backend::Reference);  // float64, unscaled
    for (double scale : {1e20, 1e-30, 1e30, 1e-19}) {
      CAPTURE(p->name());
      CAPTURE(scale);
      CAPTURE(backendName(backend));
      CAPTURE(c10::toString(dtype));
      Run got = run(*p, (q * scale).to(dtype), (k * scale).to(dtype), v.to(dtype), dout.to(dtype), backend);
      auto err = [](const at::Tensor& x, const at::Tensor& want) -> double {
        at::Tensor a = x.to(at::kDouble);
        if (!at::isfinite(a).all().item<bool>()) return INFINITY;
        return (a - want).abs().max().item<double>() / want.abs().max().item<double>();
      };
      const double tol = dtype == at::kDouble ? 1e-10 : 2e-4;
      CHECK(err(got.o, ref.o) <= tol);
      CHECK(err(got.dq * scale, ref.dq) <= tol);
      CHECK(err(got.dk * scale, ref.dk) <= tol);
      CHECK(err(got.dv, ref.dv) <= tol);
    }
  }
}

// q used both through l2norm and directly, so the runtime cannot rescale its rows: the
// kernels' own inverse norms and the l2norm's gradient share must hold at the scale c
// (|q|^2 and 1/|q|^3 over- or underflow there). The program weights the direct dot by 1/c,
// so at q * c it equals, with weight 1, the program at q: o the same, dq divided by c.
void checkL2NormMixed(Backend backend) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  const int64_t L = 37, D = 16;
  at::Tensor q = at::randn({1, 2, L, D}, gen, at::kDouble), k = at::randn({1, 2, L, D}, gen, at::kDouble),
             v = at::randn({1, 2, L, D}, gen, at::kDouble), dout = at::randn({1, 2, L, D}, gen, at::kDouble);
  auto program = [](const std::string& weight) {
    return Program::fromSource("attention t {\n  mask causal\n  out l1norm(softplus(3 * dot(l2norm(q), l2norm(k)) + " +
                               weight + " * dot(q, k)))\n}\n");
  };
  Run ref = run(program("1"), q, k, v, dout, Backend::Reference);
  struct Case {
    at::ScalarType dtype;
    double scale;
    const char* weight;  // 1 / scale (1e200 as a product: a literal must be a float32, a folded constant not)
  };
  for (const Case& c : {Case{at::kFloat, 1e18, "1e-18"}, Case{at::kFloat, 1e-18, "1e18"},
                        Case{at::kDouble, 1e200, "1e-200"}, Case{at::kDouble, 1e-200, "(1e25 * 1e25 * 1e25 * 1e25 * 1e25 * 1e25 * 1e25 * 1e25)"}}) {
    CAPTURE(backendName(backend));
    CAPTURE(c10::toString(c.dtype));
    CAPTURE(c.scale);
    Run got = run(program(c.weight), (q * c.scale).to(c.dtype), k.to(c.dtype), v.to(c.dtype), dout.to(c.dtype), backend);
    auto err = [](const at::Tensor& x, const at::Tensor& want) -> double {
      at::Tensor a = x.to(at::kDouble);
      if (!at::isfinite(a).all().item<bool>()) return INFINITY;
      return (a - want).abs().max().item<double>() / want.abs().max().item<double>();
    };
    const double tol = c.dtype == at::kDouble ? 1e-10 : 2e-4;
    CHECK(err(got.o, ref.o) <= tol);
    CHECK(err(got.dq.to(at::kDouble) * c.scale, ref.dq) <= tol);
    CHECK(err(got.dk, ref.dk) <= tol);
    CHECK(err(got.dv, ref.dv) <= tol);
  }
}

// Rows whose visible scores are all -inf, and constants folded beyond float32, on `backend`
// against values worked out by hand.
void checkInfinities(Backend backend) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const int64_t L = 9, D = 4;
  at::Tensor q = at::randn({1, 1, L, D}, gen, at::kDouble), k = at::randn({1, 1, L, D}, gen, at::kDouble),
             v = at::randn({1, 1, L, D}, gen, at::kDouble);
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    CAPTURE(backendName(backend));
    CAPTURE(c10::toString(dtype));
    at::Tensor qt = q.to(dtype), kt = k.to(dtype), vt = v.to(dtype);
    // log(0 * j) is -inf everywhere: softmax of a row of -inf is 0 (its shift is taken as
    // 0, so every exp is 0: a zero normaliser), online and as a value.
    for (const char* out : {"out softmax(z)", "out l1norm(softmax(z) + relu(dot(q, k)))"}) {
      CAPTURE(out);
      Program p = Program::fromSource(std::string("attention t {\n  mask causal\n  let z = dot(q, k) * 0 + log(0 * j)\n  ") +
                                      out + "\n}\n");
      at::Tensor o = p(qt, kt, vt, backend).to(at::kDouble);
      REQUIRE(at::isfinite(o).all().item<bool>());
      if (std::string(out) == "out softmax(z)") CHECK(o.abs().max().item<double>() == 0);
      else CHECK(at::allclose(o, Program::fromSource("attention t {\n  mask causal\n  out l1norm(relu(dot(q, k)))\n}\n")(
                                      q, k, v, Backend::Reference), 1e-5, 1e-6));
    }
    // rowmax of a row of -inf is -inf (not 0, which is a row without keys): every weight
    // here is relu(s) times 1.
    Program m = Program::fromSource(
        "attention t {\n  mask causal\n  let z = dot(q, k) * 0 + log(0 * j)\n"
        "  out relu(dot(q, k)) * (rowmax(z) == log(0) && rowmin(-z) == -log(0) ? 1 : 2)\n}\n");
    Program plain = Program::fromSource("attention t {\n  mask causal\n  out relu(dot(q, k))\n}\n");
    CHECK(at::allclose(m(qt, kt, vt, backend).to(at::kDouble), plain(q, k, v, Backend::Reference), 1e-5, 1e-6));
    // 1e30 * 1e30 folds to 1e60: +inf in float32, so big * 0 is NaN in every score of a
    // row; in float64 it is 1e60 and the masked-by-hand softmax is the causal one.
    Program big = Program::fromSource(
        "attention t {\n  let big = 1e30 * 1e30\n  out softmax(dot(q, k) - big * (j > i ? 1 : 0))\n}\n");
    at::Tensor o = big(qt, kt, vt, backend);
    if (dtype == at::kFloat) {
      CHECK(at::isnan(o).all().item<bool>());
    } else {
      Program causal = Program::fromSource("attention t {\n  mask causal\n  out softmax(dot(q, k))\n}\n");
      CHECK(at::allclose(o, causal(q, k, v, Backend::Reference), 1e-10, 1e-12));
    }
  }
}

}  // namespace

TEST_SUITE("numerics") {
  TEST_CASE("rows of -inf scores and constants beyond float32: reference backend") { checkInfinities(Backend::Reference); }

  TEST_CASE("NaN rule, reference backend: q, visible and masked k and v, causal / window / full / expression masks") {
    checkNanRule(Backend::Reference);
  }

  TEST_CASE("l2norm at scales 1e20 and 1e-30 (float32 |x|^2 overflows, underflows): reference backend") {
    checkL2NormScale(Backend::Reference, at::kFloat);
    checkL2NormScale(Backend::Reference, at::kDouble);
  }

  TEST_CASE("l2norm of a q also used directly, at scales 1e+-18 (float32) and 1e+-200 (float64): reference backend") {
    checkL2NormMixed(Backend::Reference);
  }
}

#ifdef ATTN_HAVE_LLVM
TEST_SUITE("cpu") {
  TEST_CASE("rows of -inf scores and constants beyond float32: cpu backend") { checkInfinities(Backend::Cpu); }

  TEST_CASE("NaN rule, cpu backend: q, visible and masked k and v, causal / window / full / expression masks") {
    checkNanRule(Backend::Cpu);
  }

  TEST_CASE("l2norm at scales 1e20 and 1e-30 (float32 |x|^2 overflows, underflows): cpu backend") {
    checkL2NormScale(Backend::Cpu, at::kFloat);
    checkL2NormScale(Backend::Cpu, at::kDouble);
  }

  TEST_CASE("l2norm of a q also used directly, at scales 1e+-18 (float32) and 1e+-200 (float64): cpu backend") {
    checkL2NormMixed(Backend::Cpu);
  }
}
#endif
