// The CPU backend without LibTorch: compiled kernels agree with the plan interpreter, and
// the disk cache of compiled kernels is used by a later compile, detects a truncated, a
// corrupted and a foreign entry, a FIFO and a link (a warning naming the file), an older
// attn's entry (a note), and rebuilds it.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>

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

  TEST_CASE("disk cache: a second compile loads the object; damaged, stale, FIFO and linked entries are rebuilt") {
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

    // Each damaged entry is one warning line naming the file and what is wrong, and is
    // rebuilt byte for byte; an older attn's entry is a note. The planted file is made by
    // `plant` (ofstream for contents, or a FIFO, or a link).
    auto damage = [&](const std::string& what, const std::function<void()>& plant, const std::string& severity,
                      const std::string& expected) {
      CAPTURE(what);
      std::filesystem::remove(path);
      plant();
      cpu::clearMemoryCache();
      std::shared_ptr<const cpu::CpuKernels> k;
      const auto start = std::chrono::steady_clock::now();
      std::string err = test::captureStderr([&] { k = cpu::compile(plan, false); });
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));  // no hang on a FIFO
      CAPTURE(err);
      CHECK(k->origin == "compiled");
      CHECK(err.rfind("attn: " + severity + ": the CPU kernel cache entry " + path + " ", 0) == 0);
      CHECK(err.find(expected) != std::string::npos);
      const std::string ending = "; rebuilding it\n";
      CHECK((err.size() > ending.size() && err.compare(err.size() - ending.size(), ending.size(), ending) == 0));
      CHECK(std::count(err.begin(), err.end(), '\n') == 1);  // one line
      CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(path)));
      CHECK(test::readFile(path) == entry);  // rebuilt, whole again
      cpu::clearMemoryCache();
      CHECK(cpu::compile(plan, false)->origin == "disk");
    };
    auto contents = [&](const std::string& bytes) {
      return [&, bytes] {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << bytes;
      };
    };
    damage("truncated", contents(entry.substr(0, entry.size() - 17)), "warning", "is truncated");
    std::string flipped = entry;
    flipped[flipped.size() - 40] = static_cast<char>(flipped[flipped.size() - 40] ^ 0x5a);
    damage("a flipped byte", contents(flipped), "warning", "checksum mismatch");
    std::string foreign = entry;
    const size_t keyAt = entry.find("\nkey ") + 6;
    foreign[keyAt] = foreign[keyAt] == 'a' ? 'b' : 'a';
    damage("another key's entry", contents(foreign), "warning", "another key");
    damage("empty", contents(""), "warning", "is empty");
    std::string newer = entry;
    newer.replace(0, 11, "ATTNCACHE 9");
    damage("another format version", contents(newer), "note", "cache format version 9");
    damage("an older attn's entry", contents("attn-cpu-kernel 2\nkey\n0123 4\nobj!"), "note",
           "was written by an older attn (attn-cpu-kernel 2)");
    damage("a FIFO", [&] { REQUIRE(::mkfifo(path.c_str(), 0600) == 0); }, "warning", "is a FIFO");
    damage("a link to /dev/zero", [&] { std::filesystem::create_symlink("/dev/zero", path); }, "warning",
           "is a symbolic link");
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
