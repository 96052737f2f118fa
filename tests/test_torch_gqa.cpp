// Grouped-query attention (GQA; MQA when k and v have one head): q [B, Hq, L, D] with
// k, v [B, Hkv, L, *], Hq = G·Hkv, query head h reading key/value head h / G.
//  - The reference backend against independent formulas: k and v repeated G times
//    (repeat_interleave, i.e. copies) through its plain path, with dk, dv summed over each
//    group; and softmax written out in ATen.
//  - The CPU backend against the reference, every stdlib program, forward and backward,
//    float64 to 1e-9 and float32 to 1e-4 (of max(|reference|, 1), as the gpu suite), groups
//    1, 2 and 8, L = 1, 37, 501, batch 2 (so
//    that the flattened batch·head index is checked too), with one thread and with more
//    threads than key heads (the driver's two ways of summing dk, dv over a group).
//  - The errors: H_q not a multiple of H_kv, k and v disagreeing on heads.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#undef CHECK
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "TestUtil.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

// The largest error relative to the largest reference value, floored: float64 at 0.01;
// float32 at 1, the inputs' scale (as the gpu suite): with one key (L = 1) dq and dk are 0 in
// exact arithmetic and float32 rounding noise of the inputs' size (1e-7..1e-5: one-key
// softmax is dO·v - dO·o with o = v rounded; an l1 normaliser of a tiny relu(s)^2; summed
// over 8 query heads for MQA's dk), which no floor of 0.01 separates from a bug.
double relErr(const at::Tensor& x, const at::Tensor& ref, double floor = 1e-2) {
  at::Tensor a = x.to(at::kDouble), b = ref.to(at::kDouble);
  double scale = std::max(b.abs().max().item<double>(), floor);
  return (a - b).abs().max().item<double>() / scale;
}

struct Inputs {
  at::Tensor q, k, v, dout;
};

Inputs randomInputs(int64_t B, int64_t hq, int64_t hkv, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                    at::Generator& gen) {
  return {at::randn({B, hq, lq, d}, gen, at::kDouble), at::randn({B, hkv, lk, d}, gen, at::kDouble),
          at::randn({B, hkv, lk, dv}, gen, at::kDouble), at::randn({B, hq, lq, dv}, gen, at::kDouble)};
}

struct Outputs {
  at::Tensor o, dq, dk, dv;
  bool finite() const {
    for (const at::Tensor* t : {&o, &dq, &dk, &dv})
      if (!at::isfinite(*t).all().item<bool>()) return false;
    return true;
  }
};

// o and the gradients of <o, dout> on `backend`, the inputs converted to `dtype`.
Outputs run(const Program& program, const Inputs& in, at::ScalarType dtype, Backend backend) {
  at::Tensor q = in.q.to(dtype).detach().requires_grad_(), k = in.k.to(dtype).detach().requires_grad_(),
             v = in.v.to(dtype).detach().requires_grad_();
  at::Tensor o = program(q, k, v, backend);
  o.backward(in.dout.to(dtype));
  auto grad = [](const at::Tensor& t) { return t.grad().defined() ? t.grad() : at::zeros_like(t); };
  return {o.detach(), grad(q), grad(k), grad(v)};
}

double worst(const Outputs& got, const Outputs& want, double floor = 1e-2) {
  return std::max({relErr(got.o, want.o, floor), relErr(got.dq, want.dq, floor), relErr(got.dk, want.dk, floor),
                   relErr(got.dv, want.dv, floor)});
}

// The query-head count of each group size: G = 1 (plain), 2, 8 (MQA: one key head).
struct Grouping {
  int64_t hq, hkv;
};
const Grouping kGroupings[] = {{2, 2}, {4, 2}, {8, 1}};

// ATTN_NUM_THREADS for the scope of one comparison.
struct Threads {
  explicit Threads(const char* n) { setenv("ATTN_NUM_THREADS", n, 1); }
  ~Threads() { unsetenv("ATTN_NUM_THREADS"); }
};

}  // namespace

TEST_SUITE("gqa") {
  TEST_CASE("reference: GQA equals k and v repeated over the group, dk and dv summed over it") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1801);
    int compared = 0;
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program program = Program::fromFile(path);
      for (const Grouping& g : kGroupings) {
        const int64_t G = g.hq / g.hkv;
        for (int64_t L : {1, 37}) {
          Inputs in = randomInputs(2, g.hq, g.hkv, L, L, 16, 8, gen);
          Outputs got = run(program, in, at::kDouble, Backend::Reference);
          Inputs repeated = in;
          repeated.k = in.k.repeat_interleave(G, 1);  // copies: head h of them is in.k's head h / G
          repeated.v = in.v.repeat_interleave(G, 1);
          Outputs want = run(program, repeated, at::kDouble, Backend::Reference);
          want.dk = want.dk.view({2, g.hkv, G, L, 16}).sum(2);
          want.dv = want.dv.view({2, g.hkv, G, L, 8}).sum(2);
          if (!want.finite()) continue;
          INFO(path, " Hq=", g.hq, " Hkv=", g.hkv, " L=", L);
          REQUIRE(got.dk.sizes() == in.k.sizes());
          REQUIRE(got.dv.sizes() == in.v.sizes());
          CHECK(worst(got, want) < 1e-12);
          ++compared;
        }
      }
    }
    CHECK(compared > 150);
  }

  TEST_CASE("reference: GQA softmax equals the formula written out in ATen") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1802);
    Program softmax = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    for (const Grouping& g : kGroupings) {
      const int64_t G = g.hq / g.hkv, L = 37, D = 16;
      Inputs in = randomInputs(2, g.hq, g.hkv, L, L, D, 8, gen);
      // Per query head h, the keys and values of head h / G, chosen by index (no repeat).
      at::Tensor kvHead = at::arange(g.hq, at::kLong).div(G, "floor");
      at::Tensor k = in.k.index_select(1, kvHead), v = in.v.index_select(1, kvHead);
      at::Tensor s = at::matmul(in.q, k.transpose(-1, -2)) / std::sqrt(double(D));
      at::Tensor causal = at::ones({L, L}, at::kBool).tril();
      at::Tensor w = at::softmax(s.masked_fill(causal.logical_not(), -INFINITY), -1);
      at::Tensor want = at::matmul(w, v);
      INFO("Hq=", g.hq, " Hkv=", g.hkv);
      CHECK(relErr(softmax(in.q, in.k, in.v, Backend::Reference), want) < 1e-12);
    }
  }

#ifdef ATTN_HAVE_LLVM
  TEST_CASE("cpu equals the reference under GQA: every stdlib program, float64 and float32, G = 1, 2, 8") {
    struct Shape {
      int64_t lq, lk, d, dv;
    };
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1803);
    int compared = 0;
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program program = Program::fromFile(path);
      for (const Grouping& g : kGroupings) {
        // One head dimension (suite cpu covers others): kernels compiled once per precision.
        for (const Shape& sh : {Shape{1, 1, 16, 16}, Shape{37, 37, 16, 16}, Shape{13, 130, 16, 16}}) {
          Inputs in = randomInputs(2, g.hq, g.hkv, sh.lq, sh.lk, sh.d, sh.dv, gen);
          Outputs want = run(program, in, at::kDouble, Backend::Reference);
          if (!want.finite()) continue;
          // One thread: the driver sums each group's dk, dv in one task per key head. Many:
          // over key chunks, then dq over row blocks.
          for (const char* threads : {"1", "16"}) {
            Threads scope(threads);
            Outputs f64 = run(program, in, at::kDouble, Backend::Cpu);
            Outputs f32 = run(program, in, at::kFloat, Backend::Cpu);
            INFO(path, " Hq=", g.hq, " Hkv=", g.hkv, " Lq=", sh.lq, " Lk=", sh.lk, " threads=", std::string(threads));
            CHECK(worst(f64, want) < 1e-9);
            CHECK(worst(f32, want, 1.0) < 1e-4);
            ++compared;
          }
        }
      }
    }
    CHECK(compared > 400);
  }

  TEST_CASE("cpu equals the reference under GQA at L = 501 (softmax, LSSA, LSSAR, sliding window)") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1804);
    for (const char* name : {"softmax", "lssa", "lssar", "sliding_window"}) {
      Program program = Program::fromFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      for (const Grouping& g : {Grouping{4, 2}, Grouping{8, 1}}) {
        Inputs in = randomInputs(1, g.hq, g.hkv, 501, 501, 64, 64, gen);
        Outputs want = run(program, in, at::kDouble, Backend::Reference);
        REQUIRE(want.finite());
        Outputs f64 = run(program, in, at::kDouble, Backend::Cpu);
        Outputs f32 = run(program, in, at::kFloat, Backend::Cpu);
        INFO(name, " Hq=", g.hq, " Hkv=", g.hkv);
        CHECK(worst(f64, want) < 1e-9);
        CHECK(worst(f32, want, 1.0) < 1e-4);
      }
    }
  }

#endif

  TEST_CASE("errors: H_q not a multiple of H_kv, k and v with different head counts") {
    Program softmax = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    auto message = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Backend b) {
      try {
        softmax(q, k, v, b);
      } catch (const UserError& e) {
        return std::string(e.what());
      }
      return std::string("(no error)");
    };
    at::Tensor q3 = at::randn({2, 3, 5, 4}), k2 = at::randn({2, 2, 5, 4}), v2 = at::randn({2, 2, 5, 4});
    // Checked before any backend runs: the same message whichever is asked for.
    for (Backend b : {Backend::Reference, Backend::Cpu, Backend::Cuda}) {
      CHECK(message(q3, k2, v2, b) ==
            "q's heads (H_q = 3) must be a multiple of k and v's (H_kv = 2): grouped-query attention shares each "
            "key/value head among H_q / H_kv query heads; got [2, 3, 5, 4], [2, 2, 5, 4], [2, 2, 5, 4]");
      CHECK(message(at::randn({2, 4, 5, 4}), k2, at::randn({2, 1, 5, 4}), b) ==
            "k and v must have the same number of heads; got [2, 2, 5, 4] and [2, 1, 5, 4]");
      // More key heads than query heads is not a grouping either.
      CHECK(message(at::randn({2, 1, 5, 4}), k2, v2, b).find("q's heads (H_q = 1) must be a multiple of k and v's (H_kv = 2)") == 0);
    }
  }
}
