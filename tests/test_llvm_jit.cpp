// The LLVM JIT: generated IR in, correct native code out, vectorised for the host, in
// milliseconds; malformed IR is an internal error naming the line.
#include <doctest/doctest.h>

#include <chrono>
#include <random>

#include "codegen/llvm/LlvmJit.h"
#include "compiler/Diagnostics.h"

namespace {

// dot(a, b, n) = sum a[k] * b[k] with fast-math reassociation allowed, so that LLVM may
// vectorise the reduction.
std::string dotIr(const std::string& name) {
  return "define float @" + name + R"((ptr noalias %a, ptr noalias %b, i64 %n) {
entry:
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %done, label %loop
loop:
  %k = phi i64 [ 0, %entry ], [ %k1, %loop ]
  %acc = phi float [ 0.0, %entry ], [ %acc1, %loop ]
  %pa = getelementptr inbounds float, ptr %a, i64 %k
  %pb = getelementptr inbounds float, ptr %b, i64 %k
  %x = load float, ptr %pa
  %y = load float, ptr %pb
  %xy = fmul reassoc contract float %x, %y
  %acc1 = fadd reassoc contract float %acc, %xy
  %k1 = add nuw i64 %k, 1
  %more = icmp ult i64 %k1, %n
  br i1 %more, label %loop, label %done
done:
  %r = phi float [ 0.0, %entry ], [ %acc1, %loop ]
  ret float %r
}
)";
}

}  // namespace

TEST_SUITE("llvm") {
  TEST_CASE("a JIT-compiled loop computes the right values, vectorised for the host") {
    auto jit = attn::llvmjit::Jit::create();
    MESSAGE("LLVM JIT host: ", jit->host());
    std::string optimised;
    auto t0 = std::chrono::steady_clock::now();
    auto* dot = reinterpret_cast<float (*)(const float*, const float*, int64_t)>(
        jit->compile(dotIr("attn_test_dot"), "attn_test_dot", &optimised));
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("JIT compile of a small loop at O3: ", ms, " ms");
    REQUIRE(reinterpret_cast<void*>(dot) != nullptr);
    // The loop vectorizer ran with the host's vector width.
    CHECK(optimised.find(" x float>") != std::string::npos);

    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (int64_t n : {0, 1, 37, 501, 4096}) {
      std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
      double want = 0;
      for (int64_t k = 0; k < n; ++k) {
        a[static_cast<size_t>(k)] = normal(rng);
        b[static_cast<size_t>(k)] = normal(rng);
        want += static_cast<double>(a[static_cast<size_t>(k)]) * b[static_cast<size_t>(k)];
      }
      float got = dot(a.data(), b.data(), n);
      INFO("n = ", n);
      CHECK(got == doctest::Approx(want).epsilon(1e-4).scale(1.0));
    }
  }

  TEST_CASE("several modules in one JIT; malformed IR is an internal error with its line") {
    auto jit = attn::llvmjit::Jit::create();
    auto* first = reinterpret_cast<float (*)(const float*, const float*, int64_t)>(
        jit->compile(dotIr("first_dot"), "first_dot"));
    auto* second = reinterpret_cast<float (*)(const float*, const float*, int64_t)>(
        jit->compile(dotIr("second_dot"), "second_dot"));
    float a[3] = {1, 2, 3}, b[3] = {4, 5, 6};
    CHECK(first(a, b, 3) == 32.0f);
    CHECK(second(a, b, 2) == 14.0f);
    try {
      jit->compile("define float @broken() {\nentry:\n  ret float %nothing\n}\n", "broken");
      FAIL("malformed IR was accepted");
    } catch (const attn::InternalError& e) {
      std::string what = e.what();
      CHECK(what.find("generated LLVM IR does not parse") != std::string::npos);
      CHECK(what.find("generated.ll:3:") != std::string::npos);
    }
  }
}
