// The CUDA code generator, checked without a GPU:
//   - every stdlib program and a batch of random programs compile with NVRTC for sm_80
//     and sm_90, and ptxas assembles every kernel with no register spills;
//   - the generated CUDA C++ computes the right numbers: its scalar kernels compiled as
//     host C++ (the prelude makes that possible) run through the CPU backend's driver and
//     equal the CPU backend's own kernels — float64 to 1e-9, float32 to 1e-4 — forward and
//     backward, on awkward shapes;
//   - golden files of the generated source for softmax, LSSA and LSSAR;
//   - an NVRTC error names the generated source and its line.
#include <doctest/doctest.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <regex>

#include "GoldenFile.h"
#include "RandomProgram.h"
#include "TestUtil.h"
#include "codegen/cuda/CudaBackend.h"
#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/Skeleton.h"
#include "compiler/Diagnostics.h"
#include "compiler/Parser.h"
#include "compiler/Pipeline.h"
#ifdef ATTN_HAVE_LLVM
#include "codegen/llvm/CpuBackend.h"
#endif

using namespace attn;

namespace {

KernelPlan planOfFile(const std::string& path) {
  DiagnosticEngine diags;
  auto plan = compileToPlan(path, {}, diags);
  INFO(diags.renderToString());
  REQUIRE(plan);
  return *plan;
}

KernelPlan planOfSource(const std::string& text) {
  DiagnosticEngine diags;
  ast::Module module = parseModule(std::make_shared<SourceFile>("r.attn", text), diags);
  auto checked = compileModule(module, {}, diags);
  INFO(text, diags.renderToString());
  REQUIRE(checked);
  return schedule(lowerAndOptimise(*checked));
}

// NVRTC + ptxas for both architectures: every kernel of the module assembled, none spills.
void checkCompiles(const KernelPlan& plan, const cuda::CudaOptions& options, const std::string& what) {
  auto src = cuda::generateCudaKernels(plan, differentiate(plan), options);
  for (int arch : {80, 90}) {
    cuda::CompiledKernel k = cuda::compile(src.source, plan.graph.name + ".cu", arch);
    INFO(what, " sm_", arch, "\n", k.log);
    CHECK(!k.cubin.empty());
    for (const cuda::CudaEntry& e : src.entries) {
      auto it = std::find_if(k.kernels.begin(), k.kernels.end(), [&](const auto& r) { return r.name == e.name; });
      REQUIRE_MESSAGE(it != k.kernels.end(), "ptxas did not report ", e.name);
      CHECK_MESSAGE(it->spillBytes == 0, e.name, " spills ", it->spillBytes, " bytes");
      CHECK(it->registers > 0);
      CHECK(it->registers <= 255);
    }
  }
}

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("every stdlib program compiles with NVRTC for sm_80 and sm_90 without spills (float32 path)") {
    auto files = test::attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 10);
    cuda::CudaOptions options;
    options.dtype = cuda::Dtype::F32;
    for (const std::string& f : files) checkCompiles(planOfFile(f), options, f);
  }

  TEST_CASE("random programs compile with NVRTC for sm_80 and sm_90 without spills") {
    std::mt19937_64 rng(20261125);
    cuda::CudaOptions options;
    options.dtype = cuda::Dtype::F32;
    options.headDim = 24;
    options.valueDim = 40;
    for (int p = 0; p < 12; ++p) {
      std::string text = test::randomProgram(rng);
      checkCompiles(planOfSource(text), options, text);
    }
  }

  TEST_CASE("golden CUDA source for softmax, LSSA and LSSAR (forward and backward kernels)") {
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      cuda::CudaOptions options;
      options.dtype = cuda::Dtype::BF16;
      auto src = cuda::generateCudaKernels(plan, differentiate(plan), options);
      CHECK(src.source.find("attn_backward_gradient") != std::string::npos);
      std::string diff = test::compareWithGolden(std::string("cuda/") + name + ".cu", src.source);
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }

  TEST_CASE("an NVRTC error is an internal error naming the generated source and its line") {
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    auto src = cuda::generateCudaKernels(plan, differentiate(plan), {});
    // Break the source at a known line: the one after the argument enum.
    std::string broken = src.source;
    size_t at = broken.find("#include \"scalar_prelude.cuh\"");
    REQUIRE(at != std::string::npos);
    broken.insert(at, "this_is_not_cuda x;\n");
    const int line = static_cast<int>(std::count(broken.begin(), broken.begin() + static_cast<long>(at), '\n')) + 1;
    try {
      cuda::compile(broken, "lssar.cu", 90);
      FAIL("NVRTC accepted a broken source");
    } catch (const InternalError& e) {
      std::string m = e.what();
      INFO(m);
      CHECK(m.find("NVRTC could not compile the generated CUDA source 'lssar.cu' for sm_90") != std::string::npos);
      CHECK(m.find("lssar.cu(" + std::to_string(line) + "): error") != std::string::npos);
      CHECK(m.find("this_is_not_cuda") != std::string::npos);
    }
  }

  TEST_CASE("the skeleton headers are embedded and NVRTC finds them by name") {
    const auto& files = cuda::skeletonFiles();
    auto has = [&](const std::string& n) {
      return std::any_of(files.begin(), files.end(), [&](const auto& f) { return n == f.name; });
    };
    CHECK(has("scalar_prelude.cuh"));
    std::ifstream in(std::string(ATTN_SOURCE_DIR) + "codegen/cuda/skeleton/scalar_prelude.cuh");
    std::string onDisk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const auto& f : files)
      if (std::string(f.name) == "scalar_prelude.cuh") CHECK(onDisk == f.text);
  }

#ifdef ATTN_HAVE_LLVM
  // The generated CUDA C++ run on the host: compiled by the C++ compiler that built the
  // tests, loaded, and driven by the CPU backend's own loops (cpu::forward, cpu::backward).
  struct HostModule {
    void* handle = nullptr;
    cpu::CpuKernels kernels;
  };

  HostModule buildOnHost(const KernelPlan& plan, const std::string& real, const std::string& tag) {
    kernels::ScalarKernels k = cuda::generateScalarCuda(plan, differentiate(plan), real);
    std::string source = cuda::scalarPreamble();
    for (const auto& f : k.functions) source += f.text + "\n";
    const std::string dir = test::tempDir() + "/host-" + tag;
    REQUIRE(std::system(("mkdir -p '" + dir + "'").c_str()) == 0);
    for (const auto& f : cuda::skeletonFiles()) std::ofstream(dir + "/" + f.name) << f.text;
    std::ofstream(dir + "/kernels.cpp") << source;
    const std::string cmd = std::string(ATTN_HOST_CXX) + " -std=c++17 -O1 -shared -fPIC -w -I'" + dir + "' -o '" + dir +
                            "/kernels.so' '" + dir + "/kernels.cpp' 2> '" + dir + "/log.txt'";
    INFO(test::readFile(dir + "/log.txt"));
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "host compile failed: ", test::readFile(dir + "/log.txt"));
    HostModule m;
    m.handle = ::dlopen((dir + "/kernels.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(m.handle);
    auto sym = [&](const std::string& n) {
      void* p = ::dlsym(m.handle, n.c_str());
      REQUIRE_MESSAGE(p != nullptr, "missing ", n);
      return reinterpret_cast<cpu::KernelFn>(p);
    };
    static_cast<kernels::ScalarKernels&>(m.kernels.source) = k;
    m.kernels.f64 = real == "double";
    m.kernels.forward = sym(k.forward);
    if (k.backwardUnsupported.empty()) {
      for (const auto& r : k.rowPasses) m.kernels.rowPasses.push_back(sym(r));
      m.kernels.gradient = sym(k.gradient);
    }
    return m;
  }

  template <typename T>
  double relativeError(const std::vector<T>& got, const std::vector<T>& want) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (!std::isfinite(static_cast<double>(got[i])) && !std::isfinite(static_cast<double>(want[i]))) continue;
      diff = std::max(diff, std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i])));
      scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
    }
    return diff / std::max(scale, 1.0);  // inputs are randn: values of order 1 (and 0 where exact)
  }

  // Forward and backward of the host-compiled CUDA kernels against the CPU backend's.
  template <typename T>
  void compareWithCpu(const KernelPlan& plan, const HostModule& m, const cpu::Shape& s, uint64_t seed, double tolerance,
                      const std::string& what) {
    auto cpuKernels = cpu::compile(plan, std::is_same<T, double>::value);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto randn = [&](int64_t n) {
      std::vector<T> x(static_cast<size_t>(n));
      for (auto& e : x) e = static_cast<T>(normal(rng));
      return x;
    };
    auto q = randn(s.heads * s.lq * s.d), k = randn(s.heads * s.lk * s.d), v = randn(s.heads * s.lk * s.dv);
    auto dout = randn(s.heads * s.lq * s.dv);
    const size_t slots = static_cast<size_t>(std::max(1, m.kernels.source.statSlots));
    std::vector<T> o1(static_cast<size_t>(s.heads * s.lq * s.dv)), o2 = o1;
    std::vector<T> st1(static_cast<size_t>(s.heads * s.lq) * slots), st2 = st1;
    cpu::forward<T>(m.kernels, s, q.data(), k.data(), v.data(), o1.data(), st1.data());
    cpu::forward<T>(*cpuKernels, s, q.data(), k.data(), v.data(), o2.data(), st2.data());
    INFO(what, " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " dv=", s.dv);
    CHECK(relativeError(o1, o2) <= tolerance);
    if (!m.kernels.source.backwardUnsupported.empty()) return;
    std::vector<T> dq1(q.size()), dk1(k.size()), dv1(v.size()), dq2 = dq1, dk2 = dk1, dv2 = dv1;
    cpu::backward<T>(m.kernels, s, q.data(), k.data(), v.data(), o1.data(), st1.data(), dout.data(), dq1.data(),
                     dk1.data(), dv1.data());
    cpu::backward<T>(*cpuKernels, s, q.data(), k.data(), v.data(), o2.data(), st2.data(), dout.data(), dq2.data(),
                     dk2.data(), dv2.data());
    CHECK(relativeError(dq1, dq2) <= tolerance);
    CHECK(relativeError(dk1, dk2) <= tolerance);
    CHECK(relativeError(dv1, dv2) <= tolerance);
  }

  const cpu::Shape kShapes[] = {{2, 37, 37, 16, 8}, {1, 5, 70, 24, 16}, {1, 1, 1, 8, 8}, {3, 64, 130, 8, 12}};

  TEST_CASE("the generated CUDA C++, run on the host, equals the CPU backend (float64 1e-9, float32 1e-4)") {
    int seed = 1;
    for (const char* name : {"softmax", "lssa", "lssar", "recentred", "alibi", "sliding_window", "softcap", "phi_gelu",
                             "ssmax", "sigmoid_l1_rw", "exp_nonorm"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      if (!std::ifstream(path)) continue;
      KernelPlan plan = planOfFile(path);
      HostModule m64 = buildOnHost(plan, "double", std::string(name) + "-f64");
      for (const cpu::Shape& s : kShapes) compareWithCpu<double>(plan, m64, s, static_cast<uint64_t>(seed++), 1e-9, name);
      HostModule m32 = buildOnHost(plan, "float", std::string(name) + "-f32");
      for (const cpu::Shape& s : kShapes) compareWithCpu<float>(plan, m32, s, static_cast<uint64_t>(seed++), 1e-4, name);
    }
  }

  TEST_CASE("random programs: the generated CUDA C++ on the host equals the CPU backend in float64") {
    std::mt19937_64 rng(20261127);
    for (int p = 0; p < 10; ++p) {
      std::string text = test::randomProgram(rng);
      KernelPlan plan = planOfSource(text);
      HostModule m = buildOnHost(plan, "double", "random" + std::to_string(p));
      for (const cpu::Shape& s : {kShapes[0], kShapes[1]}) compareWithCpu<double>(plan, m, s, 1000 + p, 1e-9, text);
    }
  }
#endif
}

namespace {

// Runs fn with stderr going to a file; returns what was written there.
template <typename Fn>
std::string stderrOf(const Fn& fn) {
  std::string path = test::tempDir() + "/cuda-stderr.txt";
  std::fflush(stderr);
  int saved = ::dup(2);
  FILE* f = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(f), 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  return test::readFile(path);
}

}  // namespace

TEST_SUITE("cuda") {
  TEST_CASE("compiled modules: disk cache hit in a new process, damaged entries warned about and rebuilt") {
    const std::string dir = test::tempDir() + "/cuda-cache";
    const char* old = std::getenv("ATTN_CACHE_DIR");
    const std::string saved = old ? old : "";
    ::setenv("ATTN_CACHE_DIR", dir.c_str(), 1);
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssa.attn");
    cuda::CudaOptions options;
    options.dtype = cuda::Dtype::F32;
    options.headDim = options.valueDim = 32;
    cuda::clearModuleCache();
    auto first = cuda::compileModule(plan, options, 90);
    CHECK(first->origin == "compiled");
    CHECK(first->binary.cubin.size() > 1000);
    const std::string path = cuda::KernelCache(dir + "/cuda").path(first->key);
    INFO(path);
    CHECK(path.find("lssa-f32-d32-dv32-scalar-sm90-nvrtc") != std::string::npos);
    REQUIRE(std::ifstream(path).good());
    CHECK(cuda::compileModule(plan, options, 90)->origin == "memory");
    cuda::clearModuleCache();
    auto second = cuda::compileModule(plan, options, 90);
    CHECK(second->origin == "disk");
    CHECK(second->binary.cubin == first->binary.cubin);
    MESSAGE("lssa module (", first->source.entries.size(), " kernels): NVRTC cold ", first->milliseconds,
            " ms, disk hit ", second->milliseconds, " ms");
    // Truncated, then one byte flipped: each warned about, rebuilt, and whole again.
    for (int damage = 0; damage < 2; ++damage) {
      std::string bytes = test::readFile(path);
      if (damage == 0) bytes.resize(bytes.size() / 2);
      else bytes[bytes.size() - 10] ^= 0x5a;
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
      cuda::clearModuleCache();
      std::shared_ptr<const cuda::CudaModule> again;
      std::string err = stderrOf([&] { again = cuda::compileModule(plan, options, 90); });
      INFO(err);
      CHECK(again->origin == "compiled");
      CHECK(err.find("attn: warning: the CUDA kernel cache entry " + path) != std::string::npos);
      CHECK(err.find("rebuilding it") != std::string::npos);
      cuda::clearModuleCache();
      CHECK(cuda::compileModule(plan, options, 90)->origin == "disk");
    }
    // Another configuration is another entry.
    cuda::CudaOptions other = options;
    other.headDim = 48;
    CHECK(cuda::compileModule(plan, other, 90)->key.fileName() != first->key.fileName());
    ::setenv("ATTN_CACHE_DIR", saved.c_str(), 1);
    if (!old) ::unsetenv("ATTN_CACHE_DIR");
    cuda::clearModuleCache();
  }

  TEST_CASE("without a GPU, loading a module is a CudaError saying why") {
    if (cuda::Driver::get().available()) return;  // a GPU machine: nothing to check here
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/softmax.attn");
    auto module = cuda::compileModule(plan, {}, 90);  // compiling needs no GPU
    CHECK(!module->binary.cubin.empty());
    try {
      cuda::load(module, 0);
      FAIL("loaded a module without a GPU");
    } catch (const cuda::CudaError& e) {
      CHECK(std::string(e.what()) == cuda::Driver::get().whyNot());
      CHECK(std::string(e.what()).find("no CUDA driver") != std::string::npos);
    }
  }
}
