// The CPU backend (JIT-compiled kernels) against the reference backend: forward o and the
// derived backward's dq, dk, dv, for every stdlib program and random programs, on awkward
// shapes (1, 37, 130, 501; Lq < Lk; d = 16 .. 128), in float64 (to 1e-9: the same maths)
// and float32 (to 1e-4 of a float64 reference). Errors are relative to the largest value:
//   err(x, ref) = max |x - ref| / max(max |ref|, 0.01)
// (the floor: with one key, dq and dk are exactly 0 in the maths and rounding noise here).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#undef CHECK
#include <doctest/doctest.h>

#ifdef ATTN_HAVE_LLVM

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "RandomProgram.h"
#include "TestUtil.h"
#include "codegen/llvm/CpuBackend.h"
#include "runtime/Attention.h"

using namespace attn;

namespace {

double relErr(const at::Tensor& x, const at::Tensor& ref) {
  at::Tensor a = x.to(at::kDouble), b = ref.to(at::kDouble);
  double scale = std::max(b.abs().max().item<double>(), 1e-2);
  return (a - b).abs().max().item<double>() / scale;
}

struct Case {
  int64_t lq, lk, d, dv;
};

struct Result {
  double o = 0, dq = 0, dk = 0, dv = 0;
  bool finite = true;
  double worst() const { return std::max({o, dq, dk, dv}); }
};

// o and the gradients of <o, dout> from `backend` (inputs of `dtype`) vs the float64 reference.
Result compare(const Program& program, const Case& c, at::ScalarType dtype, at::Generator& gen, int64_t B = 1,
               int64_t H = 2) {
  at::Tensor q = at::randn({B, H, c.lq, c.d}, gen, at::kDouble), k = at::randn({B, H, c.lk, c.d}, gen, at::kDouble),
             v = at::randn({B, H, c.lk, c.dv}, gen, at::kDouble), dout = at::randn({B, H, c.lq, c.dv}, gen, at::kDouble);
  auto run = [&](Backend backend, at::ScalarType t, std::vector<at::Tensor>& grads) {
    at::Tensor qq = q.to(t).detach().requires_grad_(), kk = k.to(t).detach().requires_grad_(),
               vv = v.to(t).detach().requires_grad_();
    at::Tensor o = program(qq, kk, vv, backend);
    o.backward(dout.to(t));
    grads = {qq.grad(), kk.grad(), vv.grad()};
    for (size_t g = 0; g < 3; ++g)  // a program may not depend on q or k at all
      if (!grads[g].defined()) grads[g] = at::zeros_like(g == 0 ? qq : g == 1 ? kk : vv);
    return o.detach();
  };
  std::vector<at::Tensor> want, got;
  at::Tensor oWant = run(Backend::Reference, at::kDouble, want);
  Result r;
  for (const auto& t : want) r.finite = r.finite && at::isfinite(t).all().item<bool>();
  r.finite = r.finite && at::isfinite(oWant).all().item<bool>();
  if (!r.finite) return r;
  at::Tensor oGot = run(Backend::Cpu, dtype, got);
  r.o = relErr(oGot, oWant);
  r.dq = relErr(got[0], want[0]);
  r.dk = relErr(got[1], want[1]);
  r.dv = relErr(got[2], want[2]);
  return r;
}

std::string describe(const Case& c) {
  return "Lq=" + std::to_string(c.lq) + " Lk=" + std::to_string(c.lk) + " d=" + std::to_string(c.d) +
         " dv=" + std::to_string(c.dv);
}

}  // namespace

TEST_SUITE("cpu") {
  TEST_CASE("every stdlib program: cpu float64 equals the reference, forward and backward") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
    const std::vector<Case> cases{{1, 1, 16, 16}, {37, 37, 32, 32}, {13, 130, 64, 64}, {130, 130, 80, 16}};
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program program = Program::fromFile(path);
      for (const Case& c : cases) {
        Result r = compare(program, c, at::kDouble, gen);
        if (!r.finite) continue;
        INFO(path, " ", describe(c), " o ", r.o, " dq ", r.dq, " dk ", r.dk, " dv ", r.dv);
        CHECK(r.worst() < 1e-9);
      }
    }
  }

  TEST_CASE("every stdlib program: cpu float32 within 1e-4 of the float64 reference") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(12);
    const std::vector<Case> cases{{1, 1, 16, 16}, {37, 37, 128, 128}, {130, 501, 64, 64}, {501, 501, 80, 80}};
    for (const std::string& path : test::attnFilesIn(ATTN_STDLIB)) {
      Program program = Program::fromFile(path);
      for (const Case& c : cases) {
        Result r = compare(program, c, at::kFloat, gen);
        if (!r.finite) continue;
        INFO(path, " ", describe(c), " o ", r.o, " dq ", r.dq, " dk ", r.dk, " dv ", r.dv);
        // With one key dq and dk are 0 in exact arithmetic and only rounding noise divided by
        // the program's (possibly tiny) normaliser here: compare o and dv only.
        CHECK((c.lk == 1 ? std::max(r.o, r.dv) : r.worst()) < 1e-4);
      }
    }
  }

  TEST_CASE("random programs: cpu float64 equals the reference, forward and backward") {
    std::mt19937_64 rng(20261125);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(13);
    int compared = 0;
    for (int p = 0; p < 60; ++p) {
      std::string text = test::randomProgram(rng);
      Program program = Program::fromSource(text);
      for (const Case& c : {Case{37, 37, 16, 8}, Case{5, 70, 32, 16}}) {
        Result r = compare(program, c, at::kDouble, gen);
        if (!r.finite) continue;
        ++compared;
        INFO(text, "\n", describe(c), " o ", r.o, " dq ", r.dq, " dk ", r.dk, " dv ", r.dv);
        CHECK(r.worst() < 1e-8);
      }
    }
    CHECK(compared > 80);
  }
}

#endif
