// The CPU backend without LibTorch: compiled kernels agree with the plan interpreter, and
// the disk cache of compiled kernels is used by a later compile, detects a truncated, a
// corrupted and a foreign entry (a warning naming the file), and rebuilds it.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "TestUtil.h"
#include "codegen/llvm/CpuBackend.h"
#include "compiler/Diagnostics.h"
#include "compiler/PlanInterpreter.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"

using namespace attn;

namespace {

KernelPlan planOf(const std::string& name) {
  DiagnosticEngine diags;
  auto plan = compileToPlan(std::string(ATTN_STDLIB) + "/" + name + ".attn", {}, diags);
  REQUIRE(plan);
  return *plan;
}

KernelPlan planOfSource(const std::string& text) {
  DiagnosticEngine diags;
  ast::Module module = parseModule(std::make_shared<SourceFile>("e.attn", text), diags);
  auto checked = compileModule(module, {}, diags);
  REQUIRE(checked);
  return schedule(lowerAndOptimise(*checked));
}

// A cache directory of this test's own.
struct FreshCache {
  FreshCache() {
    static int counter = 0;
    dir = test::tempDir() + "/cache" + std::to_string(counter++);
    old = std::getenv("ATTN_CACHE_DIR") ? std::getenv("ATTN_CACHE_DIR") : "";
    ::setenv("ATTN_CACHE_DIR", dir.c_str(), 1);
    cpu::clearMemoryCache();
  }
  ~FreshCache() { ::setenv("ATTN_CACHE_DIR", old.c_str(), 1); }
  std::string dir, old;
};

}  // namespace

TEST_SUITE("llvm") {
  TEST_CASE("cpu kernels equal the plan interpreter (float64) for softmax, lssa, lssar, recentred") {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> normal;
    for (const char* name : {"softmax", "lssa", "lssar", "recentred", "sliding_window", "exp2"}) {
      KernelPlan plan = std::string(name) == "exp2" ? planOfSource("attention e {\n  mask causal\n  let s = dot(q, k) / 4\n"
                                                                   "  out exp2(s) / rowsum(exp2(s))\n}\n")
                                                    : planOf(name);
      auto kernels = cpu::compile(plan, /*f64=*/true);
      cpu::Shape s;
      s.heads = 2;
      s.lq = 37;
      s.lk = 101;
      s.d = 24;
      s.dv = 7;
      std::vector<double> q(static_cast<size_t>(s.heads * s.lq * s.d)), k(static_cast<size_t>(s.heads * s.lk * s.d)),
          v(static_cast<size_t>(s.heads * s.lk * s.dv));
      for (auto* x : {&q, &k, &v})
        for (double& e : *x) e = normal(rng);
      std::vector<double> o(static_cast<size_t>(s.heads * s.lq * s.dv)),
          stats(static_cast<size_t>(s.heads * s.lq * std::max(kernels->source.statSlots, 1)));
      cpu::forward<double>(*kernels, s, q.data(), k.data(), v.data(), o.data(), stats.data());
      for (int64_t h = 0; h < s.heads; ++h) {
        std::vector<double> want = interpretPlan(plan, q.data() + h * s.lq * s.d, k.data() + h * s.lk * s.d,
                                                 v.data() + h * s.lk * s.dv, s.lq, s.lk, s.d, s.dv);
        double err = 0, scale = 1e-30;
        for (size_t e = 0; e < want.size(); ++e) {
          err = std::max(err, std::fabs(o[static_cast<size_t>(h * s.lq * s.dv) + e] - want[e]));
          scale = std::max(scale, std::fabs(want[e]));
        }
        INFO(name, " head ", h, " err ", err / scale);
        CHECK(err / scale < 1e-12);
      }
    }
  }

  TEST_CASE("disk cache: a second compile loads the object; truncated, corrupted, foreign entries are rebuilt") {
    FreshCache cache;
    KernelPlan plan = planOf("lssar");
    auto first = cpu::compile(plan, false);
    CHECK(first->origin == "compiled");
    const std::string path = cpu::cacheEntryPath(plan, false);
    CHECK(path.rfind(cache.dir + "/cpu/lssar-f32-", 0) == 0);
    std::string entry = test::readFile(path);
    REQUIRE(entry.size() > 100);

    cpu::clearMemoryCache();
    auto second = cpu::compile(plan, false);
    CHECK(second->origin == "disk");
    CHECK(second->milliseconds < first->milliseconds);

    auto damage = [&](const std::string& content, const std::string& expected) {
      {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << content;
      }
      cpu::clearMemoryCache();
      std::shared_ptr<const cpu::CpuKernels> k;
      std::string err = test::captureStderr([&] { k = cpu::compile(plan, false); });
      INFO(expected, ": ", err);
      CHECK(k->origin == "compiled");
      CHECK(err.find("attn: warning: the kernel cache entry " + path + " is damaged") != std::string::npos);
      CHECK(err.find(expected) != std::string::npos);
      CHECK(test::readFile(path) == entry);  // rebuilt, whole again
      cpu::clearMemoryCache();
      CHECK(cpu::compile(plan, false)->origin == "disk");
    };
    damage(entry.substr(0, entry.size() - 17), "truncated");
    std::string flipped = entry;
    flipped[flipped.size() - 40] = static_cast<char>(flipped[flipped.size() - 40] ^ 0x5a);
    damage(flipped, "checksum does not match");
    std::string foreign = entry;
    foreign.replace(entry.find('\n') + 1, 4, "xxxx");
    damage(foreign, "key does not match");
    damage("", "not a kernel cache entry");
  }

  TEST_CASE("an unwritable cache directory is not an error: the kernels still compile and run") {
    FreshCache cache;
    ::setenv("ATTN_CACHE_DIR", "/proc/attn-cannot-write-here", 1);
    cpu::clearMemoryCache();
    auto k = cpu::compile(planOf("softmax"), false);
    CHECK((k->forward != nullptr));
    CHECK((k->gradient != nullptr));
  }
}
