// The oracle: every stdlib program against an independent formula written here with ATen
// ops (never through the compiler), evaluated in float64 on materialised [B,H,Lq,Lk]
// matrices exactly as the paper (shared/paper/METHOD.md) and LANGUAGE.md state them.
//
// For each program and each shape, attn's reference backend runs on float32 inputs and on
// float64 inputs (the same values); its output o is compared with the oracle's o_ref by
//   err = max |o - o_ref| / max(max |o_ref|, 1e-30)
// which must be <= 1e-5 (float32 inputs) and <= 1e-10 (float64 inputs).
//
// Row semantics implemented independently here:
//   - query row r of Lq has absolute position i = Lk - Lq + r; the mask is built by a loop;
//   - N_i = number of unmasked keys in row i; row reductions range over unmasked j only;
//   - l1norm(x) = x / sum_j |x_j|, and 0 where that sum is 0;
//   - re-weighting rw_p(A) = l1norm(relu(N ⊙ A - O)^p), O_i = 0 for i < 3, else 1;
//   - o = where(mask, w, 0) @ v.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
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

// ---------------------------------------------------------------------------------------
// The context a formula sees: the materialised score, the mask, i, j, n, L, d and params.
struct OracleCtx {
  at::Tensor q, k;     // float64 [B,H,Lq,D], [B,H,Lk,D]
  at::Tensor s;        // q k^T / sqrt(d), [B,H,Lq,Lk]
  at::Tensor mask;     // bool [1,1,Lq,Lk]
  at::Tensor n;        // float64 [1,1,Lq,1]: unmasked keys per row
  at::Tensor i;        // float64 [1,1,Lq,1]: absolute query positions
  at::Tensor j;        // float64 [1,1,1,Lk]: key positions
  double L = 0, d = 0; // number of keys, head dimension
  std::map<std::string, double> param;
};

enum class OracleMask { Causal, Window };

// The mask, by a plain loop: causal j <= i; window(W) i - W < j <= i.
at::Tensor buildMask(int64_t lq, int64_t lk, OracleMask kind, int64_t W) {
  at::Tensor m = at::zeros({1, 1, lq, lk}, at::kBool);
  auto acc = m.accessor<bool, 4>();
  for (int64_t r = 0; r < lq; ++r) {
    const int64_t i = lk - lq + r;
    for (int64_t j = 0; j < lk; ++j) {
      bool visible = j <= i;
      if (kind == OracleMask::Window) visible = visible && j > i - W;
      acc[0][0][r][j] = visible;
    }
  }
  return m;
}

// Row helpers over unmasked j only.
at::Tensor oRowsum(const OracleCtx& c, const at::Tensor& x) {
  return at::where(c.mask, x, at::zeros({}, x.options())).sum(-1, /*keepdim=*/true);
}
at::Tensor oRowmean(const OracleCtx& c, const at::Tensor& x) { return oRowsum(c, x) / c.n; }
at::Tensor oL1norm(const OracleCtx& c, const at::Tensor& x) {
  at::Tensor den = oRowsum(c, at::abs(x));
  at::Tensor zero = at::zeros({}, x.options());
  return at::where(den == 0, zero, x / at::where(den == 0, at::ones({}, x.options()), den));
}
// softmax over unmasked keys, via ATen's own softmax on a -inf filled matrix (a different
// code path from attn's exp / rowsum).
at::Tensor oSoftmax(const OracleCtx& c, const at::Tensor& x) {
  at::Tensor filled = at::where(c.mask, x, at::full({}, -INFINITY, x.options()));
  return at::softmax(filled, -1);
}
at::Tensor oSigmoid(const at::Tensor& x) { return 1.0 / (1.0 + at::exp(-x)); }
at::Tensor oSoftplus(const at::Tensor& x) { return at::log1p(at::exp(x)); }  // |x| < 700 here
at::Tensor oRelu(const at::Tensor& x) { return at::clamp_min(x, 0.0); }
// METHOD.md eq. 5: R = l1norm(relu(N ⊙ A - O)^p), O_i = 0 for rows i < 3, else 1.
at::Tensor oReweight(const OracleCtx& c, const at::Tensor& A) {
  at::Tensor O = (c.i >= 3).to(at::kDouble);
  return oL1norm(c, at::pow(oRelu(c.n * A - O), c.param.at("p")));
}
// METHOD.md section 2.
at::Tensor oLssa(const OracleCtx& c) {
  at::Tensor qn = c.q / c.q.norm(2, -1, true);
  at::Tensor kn = c.k / c.k.norm(2, -1, true);
  at::Tensor cosine = at::matmul(qn, kn.transpose(-1, -2));
  at::Tensor S = std::log(c.d) * at::log(c.n) * cosine;
  return oL1norm(c, oSoftplus(S));
}

// The weights w_ij of every stdlib program, by the paper's formula (stdlib/README.md).
at::Tensor oracleWeights(const std::string& program, const OracleCtx& c) {
  const at::Tensor& s = c.s;
  auto P = [&](const char* name) { return c.param.at(name); };
  if (program == "softmax") return oSoftmax(c, s);
  if (program == "inverse") return -oSoftmax(c, s);
  if (program == "recentred" || program == "recentred_l1") {
    at::Tensor a = oSoftmax(c, s);
    at::Tensor shift = at::where(c.i < 3, at::zeros({}, s.options()), oRowmean(c, a));
    at::Tensor centred = a - shift;
    return program == "recentred" ? centred : oL1norm(c, centred);
  }
  if (program == "raw_score") return s;
  if (program == "exp_nonorm") return at::exp(s);
  if (program == "l1norm_score") return oL1norm(c, s);
  if (program == "phi_relu" || program == "relu_li") return oL1norm(c, oRelu(s));
  if (program == "phi_relu2") return oL1norm(c, oRelu(s) * oRelu(s));
  if (program == "phi_relu6") return oL1norm(c, at::clamp(s, 0.0, 6.0));
  if (program == "phi_gelu") return oL1norm(c, at::gelu(s));  // exact erf GELU
  if (program == "phi_sigmoid" || program == "sigmoid_l1") return oL1norm(c, oSigmoid(s));
  if (program == "phi_softplus") return oL1norm(c, oSoftplus(s));
  if (program == "phi_mish") return oL1norm(c, s * at::tanh(oSoftplus(s)));
  if (program == "phi_exp") return at::exp(s) / oRowsum(c, at::exp(s));  // literally, no shift
  if (program == "sigmoid_ramapuram") return oSigmoid(s - std::log(c.L));
  if (program == "sigmoid_ramapuram_b") return oSigmoid(s - at::log(c.n));
  if (program == "sigmoid_ramapuram_l1") return oL1norm(c, oSigmoid(s - at::log(c.n)));
  if (program == "relu_wortsman") return oRelu(s) / c.L;
  if (program == "relu_shen") return oRelu(s);
  if (program == "lssa") return oLssa(c);
  if (program == "softmax_rw") return oReweight(c, oSoftmax(c, s));
  if (program == "sigmoid_ramapuram_l1_rw") return oReweight(c, oL1norm(c, oSigmoid(s - at::log(c.n))));
  if (program == "sigmoid_l1_rw") return oReweight(c, oL1norm(c, oSigmoid(s)));
  if (program == "lssar") return oReweight(c, oLssa(c));
  if (program == "sliding_window") return oSoftmax(c, s);  // the window is in the mask
  if (program == "softcap") return oSoftmax(c, P("cap") * at::tanh(s / P("cap")));
  if (program == "ssmax") return oSoftmax(c, P("scale") * at::log(c.n) * s);
  if (program == "alibi") return oSoftmax(c, s - P("slope") * (c.i - c.j));
  FAIL("no oracle formula for stdlib program '" << program << "': add one to tests/test_torch_oracle.cpp");
  return {};
}

// Every stdlib program: its params' defaults (as the paper/README give them, restated here
// independently) and the --set overrides the oracle also runs.
struct ProgramSpec {
  std::map<std::string, double> defaults;
  std::vector<std::vector<ParamOverride>> settings;  // {} = the defaults
  OracleMask mask = OracleMask::Causal;
};

const std::map<std::string, ProgramSpec>& programSpecs() {
  static const std::map<std::string, ProgramSpec> specs = [] {
    std::map<std::string, ProgramSpec> m;
    for (const char* name : {"softmax", "inverse", "recentred", "recentred_l1", "raw_score", "exp_nonorm",
                             "l1norm_score", "phi_relu", "phi_relu2", "phi_relu6", "phi_gelu", "phi_sigmoid",
                             "phi_softplus", "phi_mish", "phi_exp", "sigmoid_ramapuram", "sigmoid_ramapuram_b",
                             "sigmoid_ramapuram_l1", "sigmoid_l1", "relu_wortsman", "relu_li", "relu_shen",
                             "lssa"})
      m[name] = ProgramSpec{{}, {{}}};
    for (const char* name : {"softmax_rw", "sigmoid_ramapuram_l1_rw", "sigmoid_l1_rw", "lssar"})
      m[name] = ProgramSpec{{{"p", 15}}, {{}, {{"p", "3"}}, {{"p", "1"}}}};
    m["sliding_window"] = ProgramSpec{{{"W", 256}}, {{}, {{"W", "8"}}, {{"W", "1"}}}, OracleMask::Window};
    m["softcap"] = ProgramSpec{{{"cap", 50.0}}, {{}, {{"cap", "1.5"}}}};
    m["ssmax"] = ProgramSpec{{{"scale", 0.43}}, {{}, {{"scale", "1.7"}}}};
    m["alibi"] = ProgramSpec{{{"slope", 0.0625}}, {{}, {{"slope", "0.5"}}}};
    return m;
  }();
  return specs;
}

std::string baseName(const std::string& path) {
  std::string f = path.substr(path.find_last_of('/') + 1);
  return f.substr(0, f.size() - 5);
}

std::string describe(const std::vector<ParamOverride>& overrides) {
  std::string out;
  for (const auto& o : overrides) out += " " + o.name + "=" + o.value;
  return out.empty() ? " (defaults)" : out;
}

// The oracle's output for one program, in float64.
at::Tensor oracleOutput(const std::string& program, const std::vector<ParamOverride>& overrides,
                        const at::Tensor& q32, const at::Tensor& k32, const at::Tensor& v32) {
  const ProgramSpec& spec = programSpecs().at(program);
  OracleCtx c;
  c.q = q32.to(at::kDouble);
  c.k = k32.to(at::kDouble);
  at::Tensor v = v32.to(at::kDouble);
  const int64_t lq = c.q.size(2), lk = c.k.size(2);
  c.d = static_cast<double>(c.q.size(3));
  c.L = static_cast<double>(lk);
  c.param = spec.defaults;
  for (const auto& o : overrides) c.param[o.name] = std::stod(o.value);
  const int64_t W = c.param.count("W") ? static_cast<int64_t>(c.param.at("W")) : 0;
  c.mask = buildMask(lq, lk, spec.mask, W);
  c.n = c.mask.to(at::kDouble).sum(-1, true);
  c.i = at::arange(lk - lq, lk, at::kDouble).view({1, 1, lq, 1});
  c.j = at::arange(0, lk, at::kDouble).view({1, 1, 1, lk});
  c.s = at::matmul(c.q, c.k.transpose(-1, -2)) / std::sqrt(c.d);
  at::Tensor w = oracleWeights(program, c);
  w = at::where(c.mask, w.expand_as(c.s), at::zeros({}, at::kDouble));
  return at::matmul(w, v);
}

// max |o - ref| / max(max |ref|, 1e-30), in float64; NaN counts as infinitely wrong.
struct Err {
  double abs = 0, rel = 0;
};
Err relErr(const at::Tensor& o, const at::Tensor& ref) {
  at::Tensor a = o.to(at::kDouble), b = ref.to(at::kDouble);
  Err e;
  if (!at::isfinite(a).all().item<bool>() && at::isfinite(b).all().item<bool>()) {
    e.abs = e.rel = INFINITY;
    return e;
  }
  e.abs = (a - b).abs().max().item<double>();
  e.rel = e.abs / std::max(b.abs().max().item<double>(), 1e-30);
  return e;
}

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

struct Shape {
  int64_t lq, lk, d;
};

std::string shapeText(const Shape& s) {
  std::ostringstream os;
  os << "Lq=" << s.lq << " Lk=" << s.lk << " d=" << s.d;
  return os.str();
}

}  // namespace

TEST_SUITE("oracle") {
  TEST_CASE("every stdlib program has an oracle formula") {
    std::set<std::string> seen;
    for (const auto& path : test::attnFilesIn(ATTN_STDLIB)) {
      const std::string name = baseName(path);
      seen.insert(name);
      CHECK_MESSAGE(programSpecs().count(name) == 1,
                    "stdlib/" << name << ".attn has no oracle: add it to tests/test_torch_oracle.cpp");
    }
    CHECK(seen.size() >= 31);
    for (const auto& [name, spec] : programSpecs())
      CHECK_MESSAGE(seen.count(name) == 1, "the oracle names a program that stdlib does not have: " << name);
  }

  TEST_CASE("every stdlib program matches its independent float64 formula (float32 and float64 inputs)") {
    const std::vector<Shape> shapes = {{1, 1, 16},   {37, 37, 16}, {130, 130, 16}, {5, 37, 16}, {1, 64, 16},
                                       {1, 1, 64},   {37, 37, 64}, {130, 130, 64}, {5, 37, 64}, {1, 64, 64}};
    const int64_t B = 2, H = 3;
    uint64_t seed = 1234;
    for (const auto& path : test::attnFilesIn(ATTN_STDLIB)) {
      const std::string name = baseName(path);
      if (!programSpecs().count(name)) continue;  // reported by the test above
      for (const auto& overrides : programSpecs().at(name).settings) {
        CompileOptions options;
        options.overrides = overrides;
        Program program = Program::fromFile(path, options);
        double worst32 = 0, worst64 = 0, worstAbs32 = 0, worstAbs64 = 0;
        for (const Shape& sh : shapes) {
          auto gen = seeded(seed++);
          const int64_t dv = sh.d / 2 + 3;  // Dv != D on purpose
          at::Tensor q = at::randn({B, H, sh.lq, sh.d}, gen, at::kDouble);
          at::Tensor k = at::randn({B, H, sh.lk, sh.d}, gen, at::kDouble);
          at::Tensor v = at::randn({B, H, sh.lk, dv}, gen, at::kDouble);
          // float32 inputs: the oracle sees exactly the float32 values, widened.
          at::Tensor q32 = q.to(at::kFloat), k32 = k.to(at::kFloat), v32 = v.to(at::kFloat);
          at::Tensor ref32 = oracleOutput(name, overrides, q32, k32, v32);
          at::Tensor o32 = program(q32, k32, v32, Backend::Reference);
          REQUIRE((o32.scalar_type() == at::kFloat));
          REQUIRE(o32.sizes() == ref32.sizes());
          Err e32 = relErr(o32, ref32);
          CHECK_MESSAGE(e32.rel <= 1e-5, name << describe(overrides) << " " << shapeText(sh)
                                             << " float32: max abs err " << e32.abs << ", rel " << e32.rel);
          // float64 inputs.
          at::Tensor ref64 = oracleOutput(name, overrides, q, k, v);
          at::Tensor o64 = program(q, k, v, Backend::Reference);
          REQUIRE((o64.scalar_type() == at::kDouble));
          Err e64 = relErr(o64, ref64);
          CHECK_MESSAGE(e64.rel <= 1e-10, name << describe(overrides) << " " << shapeText(sh)
                                              << " float64: max abs err " << e64.abs << ", rel " << e64.rel);
          worst32 = std::max(worst32, e32.rel);
          worst64 = std::max(worst64, e64.rel);
          worstAbs32 = std::max(worstAbs32, e32.abs);
          worstAbs64 = std::max(worstAbs64, e64.abs);
        }
        MESSAGE(name << describe(overrides) << ": float32 max abs " << worstAbs32 << " rel " << worst32
                     << " | float64 max abs " << worstAbs64 << " rel " << worst64);
      }
    }
  }

  TEST_CASE("decode offset: with Lq < Lk and a causal mask, query row r sees exactly keys 0..Lk-Lq+r") {
    // v = the identity (Dv = Lk) makes o = w: row r of o is the weight row of query r.
    const int64_t lq = 5, lk = 37, d = 16;
    auto gen = seeded(77);
    at::Tensor q = at::randn({2, 3, lq, d}, gen, at::kDouble);
    at::Tensor k = at::randn({2, 3, lk, d}, gen, at::kDouble);
    at::Tensor v = at::eye(lk, at::kDouble).expand({2, 3, lk, lk}).contiguous();
    Program softmaxProgram = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    at::Tensor w = softmaxProgram(q, k, v);
    for (int64_t r = 0; r < lq; ++r) {
      const int64_t last = lk - lq + r;
      at::Tensor row = w.select(2, r);  // [B,H,Lk]
      CHECK_MESSAGE((row.narrow(-1, 0, last + 1) > 0).all().item<bool>(), "row " << r << " misses a key <= " << last);
      if (last + 1 < lk)
        CHECK_MESSAGE((row.narrow(-1, last + 1, lk - last - 1) == 0).all().item<bool>(),
                      "row " << r << " sees a key after " << last);
      CHECK(((row.sum(-1) - 1).abs() < 1e-12).all().item<bool>());
    }

    // i and n themselves: `out i + 0 * j` and `out n + 0 * j` with v = identity give o = i and n
    // on the visible keys.
    Program pi = Program::fromSource("attention probe_i {\n  mask causal\n  out i + 0 * j\n}\n");
    Program pn = Program::fromSource("attention probe_n {\n  mask causal\n  out n + 0 * j\n}\n");
    at::Tensor oi = pi(q, k, v), on = pn(q, k, v);
    for (int64_t r = 0; r < lq; ++r) {
      const int64_t i = lk - lq + r;
      CHECK(oi[0][0][r][0].item<double>() == static_cast<double>(i));
      CHECK(on[0][0][r][i].item<double>() == static_cast<double>(i + 1));
      if (i + 1 < lk) CHECK(on[0][0][r][i + 1].item<double>() == 0.0);
    }

    // A window in decode: row r sees i - W < j <= i with i its absolute position.
    CompileOptions w8;
    w8.overrides = {{"W", "8"}};
    Program window = Program::fromFile(std::string(ATTN_STDLIB) + "/sliding_window.attn", w8);
    at::Tensor ww = window(q, k, v);
    for (int64_t r = 0; r < lq; ++r) {
      const int64_t i = lk - lq + r;
      for (int64_t j = 0; j < lk; ++j) {
        const bool visible = j <= i && j > i - 8;
        const double x = ww[1][2][r][j].item<double>();
        CHECK_MESSAGE((visible ? x > 0 : x == 0), "window row " << r << " (i=" << i << ") key " << j << ": " << x);
      }
    }
  }

  TEST_CASE("decode equals the last rows of the full computation, for every stdlib program") {
    // Row i's weights depend only on q_i and the keys (masked): the last Lq rows of a full
    // Lk x Lk call must equal a decode call with only those queries.
    const int64_t lq = 5, lk = 37, d = 16;
    auto gen = seeded(99);
    at::Tensor q = at::randn({2, 3, lk, d}, gen, at::kDouble);
    at::Tensor k = at::randn({2, 3, lk, d}, gen, at::kDouble);
    at::Tensor v = at::randn({2, 3, lk, 11}, gen, at::kDouble);
    for (const auto& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program p = Program::fromFile(path);
      at::Tensor full = p(q, k, v).narrow(2, lk - lq, lq);
      at::Tensor dec = p(q.narrow(2, lk - lq, lq).contiguous(), k, v);
      Err e = relErr(dec, full);
      CHECK_MESSAGE(e.rel <= 1e-12, baseName(path) << ": decode vs full, rel " << e.rel);
    }
  }
}
