// The CUDA backend on a GPU (issue 7's correctness): every stdlib program and random
// programs against the reference backend in float64, forward and backward, on lengths 1,
// 37, 501 and 4095 and Lq < Lk: float32 to 1e-4 (every element, relative to the larger of
// the reference's largest value and 1) and bfloat16 to 1e-2 (norm-relative, and no element
// off by more than 5e-2), with head dims that take the tensor cores (64) and that do not (40).
//
// Without a GPU (the dev and CI machines) the suite checks only that the cuda backend says
// so cleanly; on the GPU machine (scripts/gpu/) it is the proof.
#include <ATen/ATen.h>
#include <doctest/doctest.h>
#include <torch/version.h>

#include <cmath>
#include <functional>
#include <cstdlib>
#include <random>

#include "RandomProgram.h"
#include "TestUtil.h"
#include "codegen/cuda/CudaDriver.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

bool haveGpu() { return cuda::Driver::get().available() && at::hasCUDA(); }

// The largest element error relative to the larger of the reference's largest value and 1.
double maxErr(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kCPU).to(at::kDouble), w = want.to(at::kCPU).to(at::kDouble);
  const double scale = std::max(w.abs().max().item<double>(), 1.0);
  return (g - w).abs().max().item<double>() / scale;
}

// |got - want| / max(|want|, sqrt(N)) (Frobenius norms; sqrt(N) is the norm of N ones, the
// floor of 1 per element that maxErr has too, so that a reference that is zero up to rounding,
// like dq and dk at L = 1, is compared absolutely): the usual measure for reduced-precision
// operands (a bf16 operand alone carries 2^-9 relative).
double normErr(const at::Tensor& got, const at::Tensor& want) {
  at::Tensor g = got.to(at::kCPU).to(at::kDouble), w = want.to(at::kCPU).to(at::kDouble);
  const double floor = std::sqrt(static_cast<double>(std::max<int64_t>(w.numel(), 1)));
  return (g - w).norm().item<double>() / std::max(w.norm().item<double>(), floor);
}

// float32: every element within tol of the reference (relative to max(|ref|, 1)); fp16/bf16:
// the norm-relative error within tol, and no element off by more than 5 tol.
double relErr(const at::Tensor& got, const at::Tensor& want) {
  if (got.scalar_type() == at::kFloat) return maxErr(got, want);
  return std::max(normErr(got, want), maxErr(got, want) / 5);
}

struct Shape {
  int64_t lq, lk, d, dv;
};

struct Errors {
  double o = 0, dq = 0, dk = 0, dv = 0;
  bool finite = true;
  double worst() const { return std::max({o, dq, dk, dv}); }
};

using AttentionFn = std::function<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>;

// {o, dq, dk, dv} of f on q, k, v and the gradient dout, all moved to `device` and `dtype`
// (an input without a gradient gets zeros).
std::vector<at::Tensor> forwardBackward(const AttentionFn& f, const at::Tensor& q, const at::Tensor& k,
                                        const at::Tensor& v, const at::Tensor& dout, at::ScalarType dtype,
                                        at::Device device) {
  std::vector<at::Tensor> in;
  for (const at::Tensor& x : {q, k, v}) in.push_back(x.to(device).to(dtype).detach().requires_grad_());
  at::Tensor o = f(in[0], in[1], in[2]);
  o.backward(dout.to(device).to(dtype));
  std::vector<at::Tensor> out{o.detach()};
  for (const at::Tensor& x : in) out.push_back(x.grad().defined() ? x.grad() : at::zeros_like(x));
  return out;
}

// o and the gradients of <o, dout> on the GPU in `dtype` vs the reference (CPU, float64) on
// the same (rounded) inputs.
Errors compareOnGpu(const Program& program, const Shape& s, at::ScalarType dtype, uint64_t seed, int64_t heads = 2) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto randn = [&](int64_t l, int64_t d) { return at::randn({1, heads, l, d}, gen, at::kDouble).to(dtype); };
  at::Tensor q = randn(s.lq, s.d), k = randn(s.lk, s.d), v = randn(s.lk, s.dv), dout = randn(s.lq, s.dv);
  auto on = [&](Backend backend) {
    return [&program, backend](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
      return program(a, b, c, backend);
    };
  };
  const std::vector<at::Tensor> want = forwardBackward(on(Backend::Reference), q, k, v, dout, at::kDouble, at::kCPU);
  Errors e;
  for (const auto& t : want) e.finite = e.finite && at::isfinite(t).all().item<bool>();
  if (!e.finite) return e;
  const std::vector<at::Tensor> got = forwardBackward(on(Backend::Cuda), q, k, v, dout, dtype, at::Device(at::kCUDA, 0));
  CHECK(got[0].is_cuda());
  CHECK((got[0].scalar_type() == dtype));
  e.o = relErr(got[0], want[0]);
  e.dq = relErr(got[1], want[1]);
  e.dk = relErr(got[2], want[2]);
  e.dv = relErr(got[3], want[3]);
  return e;
}

}  // namespace

// Without a GPU, the cuda backend must refuse cleanly (a suite that runs everywhere).
TEST_SUITE("cuda") {
  TEST_CASE("without a GPU, the cuda backend refuses with a UserError") {
    if (haveGpu()) {
      test::skip("this machine has a GPU: the refusal cannot be seen here");
      return;
    }
    Program p = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    at::Tensor x = at::randn({1, 1, 4, 8});
    CHECK_THROWS_AS(p(x, x, x, Backend::Cuda), UserError);
  }
}

// Every case below needs a GPU: without one it is skipped (and ctest reports the suite as
// skipped, tests/main.cpp), never passed.
#define ATTN_REQUIRE_GPU()                                                                         \
  if (!haveGpu()) {                                                                                \
    test::skip(cuda::Driver::get().available() ? "LibTorch sees no CUDA device" : cuda::Driver::get().whyNot()); \
    return;                                                                                        \
  }

TEST_SUITE("gpu") {
  TEST_CASE("every stdlib program on the GPU equals the reference (float32 1e-4, bfloat16 1e-2), forward and backward") {
    ATTN_REQUIRE_GPU();
    uint64_t seed = 1;
    double worstF32 = 0, worstBf16 = 0;
    int compared = 0;
    for (const std::string& file : test::attnFilesIn(ATTN_STDLIB)) {
      Program program = Program::fromFile(file);
      for (const Shape& s : {Shape{1, 1, 64, 64}, Shape{37, 37, 64, 64}, Shape{501, 501, 64, 64},
                             Shape{37, 501, 64, 64}, Shape{130, 130, 40, 24}}) {
        for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
          Errors e = compareOnGpu(program, s, dtype, seed++);
          if (!e.finite) continue;
          const double tol = dtype == at::kFloat ? 1e-4 : 1e-2;
          INFO(file, " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " dv=", s.dv, " ", std::string(c10::toString(dtype)), ": o ", e.o,
               " dq ", e.dq, " dk ", e.dk, " dv ", e.dv);
          CHECK(e.o <= tol);
          CHECK(e.dq <= tol);
          CHECK(e.dk <= tol);
          CHECK(e.dv <= tol);
          ++compared;
          (dtype == at::kFloat ? worstF32 : worstBf16) = std::max(dtype == at::kFloat ? worstF32 : worstBf16, e.worst());
        }
      }
    }
    MESSAGE(compared, " comparisons; worst relative error float32 ", worstF32, ", bfloat16 ", worstBf16);
    CHECK(compared >= 200);
  }

  // The set that scripts/gpu/round.sh runs under compute-sanitizer (memcheck, racecheck,
  // synccheck): small, so the instrumented run stays short, and awkward, so that partial tiles,
  // Lq != Lk and the float32 kernels all run.
  TEST_CASE("sanitizer set: softmax, LSSA, LSSAR on partial tiles, bf16 and float32") {
    ATTN_REQUIRE_GPU();
    uint64_t seed = 900;
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      Program program = Program::fromFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      for (const Shape& s : {Shape{37, 37, 64, 64}, Shape{130, 130, 64, 64}, Shape{37, 101, 64, 64}, Shape{67, 67, 40, 24}})
        for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
          Errors e = compareOnGpu(program, s, dtype, seed++);
          const double tol = dtype == at::kFloat ? 1e-4 : 1e-2;
          INFO(std::string(name), " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " ", std::string(c10::toString(dtype)), ": o ", e.o, " dq ", e.dq,
               " dk ", e.dk, " dv ", e.dv);
          CHECK(e.finite);
          CHECK(e.worst() <= tol);
        }
    }
  }

  TEST_CASE("softmax, LSSA and LSSAR at L = 4095 on the GPU, and float16") {
    ATTN_REQUIRE_GPU();
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      Program program = Program::fromFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      for (at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
        Errors e = compareOnGpu(program, Shape{4095, 4095, 64, 64}, dtype, 77, 1);
        const double tol = dtype == at::kFloat ? 1e-4 : 1e-2;
        MESSAGE(std::string(name), " L=4095 ", std::string(c10::toString(dtype)), ": o ", e.o, " dq ", e.dq, " dk ", e.dk, " dv ", e.dv);
        CHECK(e.finite);
        CHECK(e.worst() <= tol);
      }
    }
  }

  // An oracle independent of our own tolerances: PyTorch's fused attention (FlashAttention on
  // an H100) on the same bf16 inputs. Both against the float64 reference, norm-relative with
  // no floor; ours may be at most 2x SDPA's error (plus 1e-4 for the rounding of tiny values).
  TEST_CASE("softmax in bf16: our error against float64 is within 2x of PyTorch SDPA's, forward and backward") {
#if TORCH_VERSION_MAJOR >= 2
    ATTN_REQUIRE_GPU();
    Program program = Program::fromFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    const at::Device gpu(at::kCUDA, 0);
    for (int64_t L : {37, 501, 4095}) {
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4242 + L);
      auto randn = [&] { return at::randn({1, 2, L, 64}, gen, at::kDouble).to(at::kBFloat16); };
      at::Tensor q = randn(), k = randn(), v = randn(), dout = randn();
      auto reference = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
        return program(a, b, c, Backend::Reference);
      };
      auto ours = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
        return program(a, b, c, Backend::Cuda);
      };
      auto sdpa = [](const at::Tensor& a, const at::Tensor& b, const at::Tensor& c) {
        return at::scaled_dot_product_attention(a, b, c, {}, 0.0, /*is_causal=*/true);
      };
      const auto want = forwardBackward(reference, q, k, v, dout, at::kDouble, at::kCPU);
      const auto got = forwardBackward(ours, q, k, v, dout, at::kBFloat16, gpu);
      const auto base = forwardBackward(sdpa, q, k, v, dout, at::kBFloat16, gpu);
      const char* names[] = {"o", "dq", "dk", "dv"};
      for (int t = 0; t < 4; ++t) {
        auto err = [&](const at::Tensor& x) {
          at::Tensor a = x.to(at::kCPU).to(at::kDouble), w = want[t];
          return (a - w).norm().item<double>() / std::max(w.norm().item<double>(), 1e-300);
        };
        const double e = err(got[t]), eSdpa = err(base[t]);
        MESSAGE("softmax bf16 L=", L, " ", names[t], ": ours ", e, ", SDPA ", eSdpa);
        CHECK(e <= 2 * eSdpa + 1e-4);
      }
    }
#else
    test::skip("at::scaled_dot_product_attention needs LibTorch >= 2 (this build has " TORCH_VERSION ")");
#endif
  }

  TEST_CASE("exact math (ATTN_CUDA_EXACT_MATH=1): the tensor-core kernels still equal the reference") {
    ATTN_REQUIRE_GPU();
    struct ExactMath {
      ExactMath() { ::setenv("ATTN_CUDA_EXACT_MATH", "1", 1); }
      ~ExactMath() { ::unsetenv("ATTN_CUDA_EXACT_MATH"); }
    } exact;
    uint64_t seed = 700;
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      Program program = Program::fromFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      for (const Shape& s : {Shape{37, 37, 64, 64}, Shape{501, 501, 64, 64}}) {
        Errors e = compareOnGpu(program, s, at::kBFloat16, seed++);
        MESSAGE(std::string(name), " exact math L=", s.lq, " bf16: o ", e.o, " dq ", e.dq, " dk ", e.dk, " dv ", e.dv);
        CHECK(e.finite);
        CHECK(e.worst() <= 1e-2);
      }
    }
  }

  TEST_CASE("random programs on the GPU equal the reference") {
    ATTN_REQUIRE_GPU();
    std::mt19937_64 rng(20261130);
    int compared = 0;
    for (int p = 0; p < 12; ++p) {
      std::string text = test::randomProgram(rng);
      Program program = Program::fromSource(text);
      for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
        Errors e = compareOnGpu(program, Shape{37, 70, 32, 16}, dtype, 500 + p);
        if (!e.finite) continue;
        ++compared;
        const double tol = dtype == at::kFloat ? 1e-4 : 1e-2;
        INFO(text, "\n", std::string(c10::toString(dtype)), ": o ", e.o, " dq ", e.dq, " dk ", e.dk, " dv ", e.dv);
        CHECK(e.worst() <= tol);
      }
    }
    CHECK(compared >= 12);
  }
}
