// The GPT-2 runtime: RoPE and NTK scaling against hand-computed values, the model's loss and
// gradients against an independent float64 recompute written here with plain ATen ops, the
// learning-rate schedule, deterministic training that resumes exactly, and evaluation.
#include <ATen/ATen.h>
#undef CHECK
#include <doctest/doctest.h>
#include <torch/nn/module.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "TestUtil.h"
#include "runtime/model/Gpt2.h"
#include "runtime/train/Evaluate.h"
#include "runtime/train/Trainer.h"

using namespace attn;

namespace {

std::map<std::string, at::Tensor> parameters(model::Gpt2& m) {
  std::map<std::string, at::Tensor> out;
  for (auto& item : m.impl().named_parameters()) out[item.key()] = item.value();
  return out;
}

at::Tensor layerNorm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  at::Tensor mean = x.mean(-1, true);
  at::Tensor var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / at::sqrt(var + 1e-5) * w + b;
}

at::Tensor geluTanh(const at::Tensor& x) {
  return 0.5 * x * (1 + at::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x.pow(3))));
}

// RoPE by its definition: pairs (p, p + d/2) rotated by t · 10000^(-2p/d).
at::Tensor rope(const at::Tensor& x) {
  const int64_t T = x.size(2), d = x.size(3), half = d / 2;
  at::Tensor out = x.clone();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t p = 0; p < half; ++p) {
      double angle = static_cast<double>(t) * std::pow(10000.0, -2.0 * static_cast<double>(p) / static_cast<double>(d));
      at::Tensor a = x.select(2, t).select(2, p), b = x.select(2, t).select(2, p + half);
      out.select(2, t).select(2, p).copy_(a * std::cos(angle) - b * std::sin(angle));
      out.select(2, t).select(2, p + half).copy_(b * std::cos(angle) + a * std::sin(angle));
    }
  return out;
}

// GPT-2 with causal softmax attention, from the parameters, by the textbook formulas.
at::Tensor recomputeLoss(std::map<std::string, at::Tensor>& P, const model::Gpt2Config& c, const at::Tensor& x,
                         const at::Tensor& y) {
  const int64_t B = x.size(0), T = x.size(1), H = c.heads, hd = c.headDim();
  at::Tensor h = P.at("wte.weight").index_select(0, x.reshape({-1})).view({B, T, c.width});
  at::Tensor causal = at::ones({T, T}, at::kBool).tril();
  for (int64_t l = 0; l < c.layers; ++l) {
    std::string n = "h" + std::to_string(l) + ".";
    at::Tensor a = layerNorm(h, P.at(n + "ln_1.weight"), P.at(n + "ln_1.bias"));
    at::Tensor qkv = at::matmul(a, P.at(n + "c_attn.weight").t()) + P.at(n + "c_attn.bias");
    auto heads = [&](int64_t part) {
      return qkv.narrow(-1, part * c.width, c.width).view({B, T, H, hd}).permute({0, 2, 1, 3});
    };
    at::Tensor q = rope(heads(0)), k = rope(heads(1)), v = heads(2);
    at::Tensor s = at::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(hd));
    s = s.masked_fill(causal.logical_not(), -INFINITY);
    at::Tensor att = at::softmax(s, -1);
    at::Tensor o = at::matmul(att, v).permute({0, 2, 1, 3}).reshape({B, T, c.width});
    h = h + at::matmul(o, P.at(n + "attn_proj.weight").t()) + P.at(n + "attn_proj.bias");
    at::Tensor m = layerNorm(h, P.at(n + "ln_2.weight"), P.at(n + "ln_2.bias"));
    m = geluTanh(at::matmul(m, P.at(n + "c_fc.weight").t()) + P.at(n + "c_fc.bias"));
    h = h + at::matmul(m, P.at(n + "mlp_proj.weight").t()) + P.at(n + "mlp_proj.bias");
  }
  h = layerNorm(h, P.at("ln_f.weight"), P.at("ln_f.bias"));
  at::Tensor logits = at::matmul(h, P.at("wte.weight").t());
  at::Tensor logp = at::log_softmax(logits, -1);
  return -logp.gather(-1, y.unsqueeze(-1)).mean();
}

model::Gpt2Config micro() {
  model::Gpt2Config c;
  c.name = "micro";
  c.layers = 2;
  c.heads = 2;
  c.width = 8;
  c.vocab = 13;
  c.seqLen = 7;
  return c;
}

Program softmax() { return Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn"); }

// Tokens with structure a model can learn: a repeating pattern with noise.
train::TokenData patternData(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  train::TokenData d;
  for (int64_t t = 0; t < n; ++t) d.train.push_back(static_cast<uint16_t>((t * 7 + (rng() % 5 == 0 ? rng() % 3 : 0)) % vocab));
  for (int doc = 0; doc < 4; ++doc) {
    std::vector<uint16_t> v;
    for (int64_t t = 0; t < 300 + doc * 100; ++t) v.push_back(static_cast<uint16_t>((t * 7) % vocab));
    d.validation.push_back(v);
  }
  return d;
}

std::map<std::string, double> lossBySpec(const train::EvalResult& r) {
  std::map<std::string, double> out;
  for (const auto& l : r.lengths) out[l.spec] = l.loss;
  return out;
}

std::vector<double> lossesOf(const std::string& logPath) {
  std::ifstream in(logPath);
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line).at("train_loss").get<double>());
  return out;
}

}  // namespace

TEST_SUITE("model") {
  TEST_CASE("RoPE tables, rotation and NTK scaling against hand-computed values") {
    auto [cos, sin] = model::ropeTables(3, 4, 10000);
    REQUIRE(cos.sizes() == at::IntArrayRef({3, 2}));
    // angle(t, p) = t * 10000^(-2p/4): p = 0 -> t, p = 1 -> t / 100
    CHECK(cos[2][0].item<double>() == doctest::Approx(std::cos(2.0)).epsilon(1e-6));
    CHECK(sin[2][1].item<double>() == doctest::Approx(std::sin(0.02)).epsilon(1e-6));
    CHECK(cos[0][1].item<double>() == 1.0);
    at::Tensor x = at::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).view({1, 1, 1, 4}).expand({1, 1, 3, 4}).contiguous();
    at::Tensor r = model::applyRope(x, cos, sin);
    // position 1: (1, 3) rotated by 1 rad, (2, 4) by 0.01 rad
    CHECK(r[0][0][1][0].item<double>() == doctest::Approx(1 * std::cos(1.0) - 3 * std::sin(1.0)).epsilon(1e-6));
    CHECK(r[0][0][1][2].item<double>() == doctest::Approx(3 * std::cos(1.0) + 1 * std::sin(1.0)).epsilon(1e-6));
    CHECK(r[0][0][1][1].item<double>() == doctest::Approx(2 * std::cos(0.01) - 4 * std::sin(0.01)).epsilon(1e-6));
    CHECK(r[0][0][0][3].item<double>() == 4.0);  // position 0 is not rotated
    // Relative positions only: <rope(q, t1), rope(k, t2)> depends on t1 - t2.
    auto [c16, s16] = model::ropeTables(16, 8, 10000);
    at::Tensor q = at::randn({1, 1, 1, 8}, at::kDouble).expand({1, 1, 16, 8}).contiguous();
    at::Tensor k = at::randn({1, 1, 1, 8}, at::kDouble).expand({1, 1, 16, 8}).contiguous();
    at::Tensor rq = model::applyRope(q, c16, s16), rk = model::applyRope(k, c16, s16);
    double d1 = (rq[0][0][5] * rk[0][0][2]).sum().item<double>(), d2 = (rq[0][0][12] * rk[0][0][9]).sum().item<double>();
    CHECK(d1 == doctest::Approx(d2).epsilon(1e-5));
    // NTK: base * alpha^(d / (d - 2)); values computed by hand (Python, float64).
    CHECK(model::ntkBase(10000, 4, 64) == doctest::Approx(41829.36592889948).epsilon(1e-12));
    CHECK(model::ntkBase(10000, 16, 32) == doctest::Approx(192484.00577313866).epsilon(1e-12));
    CHECK(model::ntkBase(10000, 1, 64) == 10000);
    CHECK(model::ntkBase(10000, 0.5, 64) == 10000);
  }

  TEST_CASE("loss and gradients equal an independent float64 recompute (reference and cpu backends)") {
    for (Backend backend : {Backend::Reference, Backend::Cpu}) {
      at::manual_seed(3);
      model::Gpt2 m(micro(), softmax(), backend);
      m.impl().to(at::kDouble);
      at::Tensor x = at::randint(0, 13, {3, 7}, at::kLong), y = at::randint(0, 13, {3, 7}, at::kLong);
      at::Tensor loss = m.loss(x, y);
      loss.backward();
      auto P = parameters(m);
      std::map<std::string, at::Tensor> detached;
      for (auto& [name, t] : P) detached[name] = t.detach().clone().requires_grad_(true);
      at::Tensor want = recomputeLoss(detached, micro(), x, y);
      want.backward();
      INFO(backendName(backend));
      CHECK(loss.item<double>() == doctest::Approx(want.item<double>()).epsilon(1e-12));
      CHECK(std::fabs(loss.item<double>() - std::log(13.0)) < 0.5);  // near uniform at initialisation
      for (auto& [name, t] : P) {
        double scale = std::max(detached[name].grad().abs().max().item<double>(), 1e-12);
        double err = (t.grad() - detached[name].grad()).abs().max().item<double>() / scale;
        INFO(name, " relative gradient error ", err);
        CHECK(err < 1e-9);
      }
    }
  }

  TEST_CASE("NTK scaling in the model: dynamic = none up to the training length, = static at the length") {
    model::Gpt2Config c = micro();
    c.seqLen = 8;
    c.width = 16;  // head_dim 8: every pair but the first feels the base
    at::manual_seed(5);
    model::Gpt2 m(c, softmax(), Backend::Reference);
    m.impl().to(at::kDouble);
    c10::NoGradGuard noGrad;
    at::Tensor shortIn = at::randint(0, 13, {1, 8}, at::kLong), longIn = at::randint(0, 13, {1, 32}, at::kLong);
    auto logits = [&](model::RopeScaling scaling, int64_t evalLength, const at::Tensor& x) {
      m.setRopeScaling(scaling, evalLength);
      return m.forward(x);
    };
    at::Tensor none8 = logits(model::RopeScaling::None, 0, shortIn);
    CHECK(at::equal(logits(model::RopeScaling::NtkDynamic, 0, shortIn), none8));   // alpha = 1
    at::Tensor dyn32 = logits(model::RopeScaling::NtkDynamic, 0, longIn);
    at::Tensor static32 = logits(model::RopeScaling::NtkStatic, 32, longIn);
    CHECK(at::allclose(dyn32, static32, 0, 1e-12));                                 // both alpha = 4
    CHECK_FALSE(at::allclose(dyn32, logits(model::RopeScaling::None, 0, longIn), 0, 1e-6));
    // Static scaling for 32 changes the short sequence too (its base is fixed by evalLength).
    CHECK_FALSE(at::allclose(logits(model::RopeScaling::NtkStatic, 32, shortIn), none8, 0, 1e-6));
    // The first position is never rotated: its logits do not depend on the scaling.
    CHECK(at::allclose(dyn32.select(1, 0), logits(model::RopeScaling::None, 0, longIn).select(1, 0), 0, 1e-12));
  }

  TEST_CASE("learning rate: linear warmup, cosine to min_lr_ratio, 124m is the llm.c recipe") {
    train::TrainOptions o;
    o.config = "tiny";
    o.steps = 100;
    o.lr = 1e-3;
    o.warmup = 10;
    o.attnFile = "x";
    o = train::resolveDefaults(o);
    CHECK(train::learningRate(o, 0) == doctest::Approx(1e-4));
    CHECK(train::learningRate(o, 9) == doctest::Approx(1e-3));
    CHECK(train::learningRate(o, 10) == doctest::Approx(1e-3));
    CHECK(train::learningRate(o, 99) == doctest::Approx(1e-4));
    CHECK(train::learningRate(o, 54) == doctest::Approx(1e-4 + 0.5 * 9e-4 * (1 + std::cos(M_PI * 44.0 / 89.0))));
    train::TrainOptions gpt2;
    gpt2.config = "124m";
    gpt2 = train::resolveDefaults(gpt2);
    CHECK(gpt2.batchTokens == 524288);
    CHECK(gpt2.microBatch * gpt2.seqLen * 8 == 524288);
    CHECK(gpt2.lr == 6e-4);
    CHECK(gpt2.warmup == 700);
    CHECK(gpt2.steps == 18865);
    gpt2.batchTokens = 1000;
    CHECK_THROWS_AS(train::resolveDefaults(gpt2), UserError);
  }

  TEST_CASE("training is deterministic, its loss falls, and a resumed run gives the same next losses") {
    const std::string file = std::string(ATTN_STDLIB) + "/softmax.attn";
    train::TokenData data = patternData(5000, 50, 1);
    auto options = [&](const std::string& out) {
      train::TrainOptions o;
      o.config = "tiny";
      o.attnFile = file;
      o.backend = "cpu";
      o.steps = 8;
      o.seqLen = 32;
      o.vocab = 64;
      o.microBatch = 4;
      o.batchTokens = 256;  // two micro-batches accumulated per step
      o.lr = 3e-3;
      o.warmup = 2;
      o.quiet = true;
      o.out = out;
      return o;
    };
    const std::string a = test::tempDir() + "/run_a", b = test::tempDir() + "/run_b";
    train::train(options(a), data);
    std::vector<double> full = lossesOf(a + "/log.jsonl");
    REQUIRE(full.size() == 8);
    CHECK(full.back() < full.front() - 0.5);
    train::TrainOptions first = options(b);
    first.stopAfter = 5;
    train::train(first, data);
    CHECK(lossesOf(b + "/log.jsonl").size() == 5);
    train::TrainOptions rest = options(b);
    rest.resume = true;
    train::train(rest, data);
    std::vector<double> resumed = lossesOf(b + "/log.jsonl");
    REQUIRE(resumed.size() == 8);
    for (size_t s = 0; s < 8; ++s) {
      INFO("step ", s);
      CHECK(resumed[s] == full[s]);
    }
    // Evaluation of the run (first-window: lengths with long enough documents only; the
    // protocols themselves are suite "eval").
    train::EvalOptions e;
    e.checkpoint = a;
    e.protocol = "first-window";
    e.lengths = {"1x", "2x", "8x", "32x"};
    auto table = lossBySpec(train::evaluate(e, data));
    CHECK(table.count("1x") == 1);
    CHECK(table.count("8x") == 1);    // 256 + 1 tokens: documents of 300.. tokens
    CHECK(table.count("32x") == 0);   // 1024 + 1: none that long
    CHECK(std::isfinite(table["2x"]));
    CHECK(table["1x"] < std::log(64.0));
    // Another program at evaluation: LSSAR on an LSSA-trained... here softmax-trained model.
    e.attnFile = std::string(ATTN_STDLIB) + "/lssar.attn";
    auto other = lossBySpec(train::evaluate(e, data));
    CHECK(other.count("1x") == 1);
    CHECK(other["1x"] != table["1x"]);
  }
}
