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
#include <functional>
#include <random>
#include <regex>

#include "GoldenFile.h"
#include "RandomProgram.h"
#include "TestUtil.h"
#include "codegen/cuda/CudaBackend.h"
#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/CudaWriter.h"
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
  TEST_CASE("every stdlib program compiles with NVRTC for sm_80 and sm_90 without spills (float32 kernels)") {
    auto files = test::attnFilesIn(ATTN_STDLIB);
    REQUIRE(files.size() >= 10);
    cuda::CudaOptions options;
    options.dtype = cuda::Dtype::F32;
    for (const std::string& f : files) checkCompiles(planOfFile(f), options, f);
  }

  TEST_CASE("every stdlib program's tensor-core forward compiles for sm_80 and sm_90 without spills (bf16, d = 64)") {
    auto files = test::attnFilesIn(ATTN_STDLIB);
    cuda::CudaOptions options;
    options.dtype = cuda::Dtype::BF16;
    REQUIRE(cuda::tensorCoresApply(options));
    for (const std::string& f : files) checkCompiles(planOfFile(f), options, f);
  }

  TEST_CASE("the tensor-core forward at d = 128 (fp16) and with another tile configuration") {
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      cuda::CudaOptions options;
      options.dtype = cuda::Dtype::F16;
      options.headDim = options.valueDim = 128;
      checkCompiles(plan, options, std::string(name) + " f16 d=128");
      options.headDim = options.valueDim = 64;
      options.tile.blockN = 128;
      options.tile.warps = 8;
      options.tile.blockM = 128;
      checkCompiles(plan, options, std::string(name) + " f16 m128n128w8s2");
    }
  }

  TEST_CASE("a tensor-core module of the forward or the backward kernels only") {
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssa.attn");
    cuda::CudaOptions o;
    o.dtype = cuda::Dtype::BF16;
    auto roles = [&](cuda::ModulePart part) {
      o.part = part;
      auto src = cuda::generateCudaKernels(plan, differentiate(plan), o);
      std::string r;
      for (const auto& e : src.entries) r += e.role + " ";
      return r;
    };
    CHECK(roles(cuda::ModulePart::All) == "forward rows_1 grad norms identity finish_norm ");
    CHECK(roles(cuda::ModulePart::Forward) == "forward norms ");
    CHECK(roles(cuda::ModulePart::Backward) == "rows_1 grad norms identity finish_norm ");
    o.part = cuda::ModulePart::Forward;
    checkCompiles(plan, o, "lssa forward part");
    CHECK(cuda::moduleKey(plan, o, 90, "x").fileName().find("-m64n64w4s2-fwd-sm90-") != std::string::npos);
    o.part = cuda::ModulePart::Backward;
    checkCompiles(plan, o, "lssa backward part");
    CHECK(cuda::moduleKey(plan, o, 90, "x").fileName().find("-m64n64w4s2-bwd-sm90-") != std::string::npos);
    // The float32 module has everything whatever the part.
    o.dtype = cuda::Dtype::F32;
    CHECK(roles(cuda::ModulePart::Forward) == roles(cuda::ModulePart::All));
  }

  TEST_CASE("tensor-core modules: approximate math by default, libm-exact on request; float32 always exact") {
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    cuda::CudaOptions o;
    o.dtype = cuda::Dtype::BF16;
    o.exactMath = false;
    const std::string fast = cuda::generateCudaKernels(plan, differentiate(plan), o).source;
    CHECK(fast.find("attn_fast_exp(") != std::string::npos);   // the hooks' exp
    CHECK(fast.find("attn_fast_div(") != std::string::npos);   // and division
    CHECK(fast.find("attn_fast_log(") != std::string::npos);   // softplus's bounded-error log
    CHECK(fast.find("ATTN_EXACT_MATH") == std::string::npos);
    const std::string fastKey = cuda::moduleKey(plan, o, 90, fast).fileName();
    o.exactMath = true;
    const std::string exact = cuda::generateCudaKernels(plan, differentiate(plan), o).source;
    CHECK(exact.find("#define ATTN_EXACT_MATH 1") < exact.find("#include \"tc_backward.cuh\""));
    CHECK(exact.find("attn_fast_") == std::string::npos);
    CHECK(exact.find("expf(") != std::string::npos);
    CHECK(cuda::moduleKey(plan, o, 90, exact).fileName() != fastKey);  // never one cache entry for both
    checkCompiles(plan, o, "lssar bf16 exact math");
    // The approximate module has fewer exact divisions and logs in its PTX.
    auto countExact = [&](bool exactMath) {
      o.exactMath = exactMath;
      cuda::CompiledKernel k = cuda::compile(cuda::generateCudaKernels(plan, differentiate(plan), o).source, "lssar.cu", 90);
      size_t n = 0;
      for (size_t at = k.ptx.find("div.rn.f32"); at != std::string::npos; at = k.ptx.find("div.rn.f32", at + 1)) ++n;
      return n;
    };
    CHECK(countExact(false) < countExact(true));
    o.dtype = cuda::Dtype::F32;
    o.exactMath = false;
    CHECK(cuda::generateCudaKernels(plan, differentiate(plan), o).source.find("attn_fast_") == std::string::npos);
  }

  TEST_CASE("which inputs take the tensor cores") {
    cuda::CudaOptions o;
    o.dtype = cuda::Dtype::BF16;
    CHECK(cuda::tensorCoresApply(o));
    o.headDim = 37;
    CHECK_FALSE(cuda::tensorCoresApply(o));
    o.headDim = 48;
    o.valueDim = 272;
    CHECK_FALSE(cuda::tensorCoresApply(o));
    o.valueDim = 80;
    CHECK(cuda::tensorCoresApply(o));
    o.dtype = cuda::Dtype::F32;
    CHECK_FALSE(cuda::tensorCoresApply(o));
    // The host's shared-memory size (tc_forward.cuh's layout), as the kernel's launch needs it.
    cuda::CudaOptions d64;
    CHECK(cuda::tensorCoreSharedBytes(d64) == 2 * (64 * 64 + 2 * 64 * (64 + 64)));
    d64.headDim = d64.valueDim = 80;  // rows padded by 8 elements
    CHECK(cuda::tensorCoreSharedBytes(d64) == 2 * (64 * 88 + 2 * 64 * (88 + 88)));
  }

  TEST_CASE("random programs compile with NVRTC for sm_80 and sm_90 without spills") {
    std::mt19937_64 rng(20261125);
    cuda::CudaOptions f32;
    f32.dtype = cuda::Dtype::F32;
    f32.headDim = 24;
    f32.valueDim = 40;
    cuda::CudaOptions bf16;
    bf16.dtype = cuda::Dtype::BF16;
    bf16.headDim = 32;
    bf16.valueDim = 48;
    for (int p = 0; p < 12; ++p) {
      std::string text = test::randomProgram(rng);
      KernelPlan plan = planOfSource(text);
      checkCompiles(plan, f32, text);
      checkCompiles(plan, bf16, text);
    }
  }

  TEST_CASE("golden CUDA source for softmax, LSSA and LSSAR (tensor-core forward; float32 forward and backward)") {
    for (const char* name : {"softmax", "lssa", "lssar"}) {
      KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/" + name + ".attn");
      cuda::CudaOptions options;
      options.dtype = cuda::Dtype::BF16;
      auto tc = cuda::generateCudaKernels(plan, differentiate(plan), options);
      CHECK(tc.tensorCoreForward);
      CHECK(tc.source.find("attn_tc::forward<Variant, Config>(p)") != std::string::npos);
      std::string diff = test::compareWithGolden(std::string("cuda/") + name + ".bf16.cu", tc.source);
      CHECK_MESSAGE(diff.empty(), diff);
      options.dtype = cuda::Dtype::F32;
      auto f32 = cuda::generateCudaKernels(plan, differentiate(plan), options);
      CHECK_FALSE(f32.tensorCoreForward);
      CHECK(f32.source.find("attn_backward_gradient") != std::string::npos);
      diff = test::compareWithGolden(std::string("cuda/") + name + ".f32.cu", f32.source);
      CHECK_MESSAGE(diff.empty(), diff);
    }
  }

  TEST_CASE("an NVRTC error is an internal error naming the generated source and its line") {
    KernelPlan plan = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    cuda::CudaOptions f32;
    f32.dtype = cuda::Dtype::F32;
    auto src = cuda::generateCudaKernels(plan, differentiate(plan), f32);
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
  // Compiles generated CUDA C++ `source` as host C++ (the skeleton headers beside it) into a
  // shared object and loads it; `tag` names its directory.
  void* compileOnHost(const std::string& source, const std::string& tag) {
    const std::string dir = test::tempDir() + "/host-" + tag;
    REQUIRE(std::system(("mkdir -p '" + dir + "'").c_str()) == 0);
    for (const auto& f : cuda::skeletonFiles()) std::ofstream(dir + "/" + f.name) << f.text;
    std::ofstream(dir + "/kernels.cpp") << source;
    const std::string cmd = std::string(ATTN_HOST_CXX) + " -std=c++17 -O1 -shared -fPIC -w -I'" + dir + "' -o '" + dir +
                            "/kernels.so' '" + dir + "/kernels.cpp' 2> '" + dir + "/log.txt'";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "host compile failed: ", test::readFile(dir + "/log.txt"));
    void* handle = ::dlopen((dir + "/kernels.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    REQUIRE(handle != nullptr);
    return handle;
  }

  // A function of a loaded shared object, as type F.
  template <typename F>
  F symbol(void* handle, const std::string& name) {
    void* p = ::dlsym(handle, name.c_str());
    REQUIRE_MESSAGE(p != nullptr, "missing ", name);
    return reinterpret_cast<F>(p);
  }

  // Hook functions (generateElementHooks, generateBackwardHooks) as one host source.
  std::string hookSource(const std::vector<kernels::KernelFunction>& functions) {
    std::string source = "#include \"attn_math.cuh\"\n";
    for (const auto& f : functions) source += f.text + "\n";
    return source;
  }

  std::unique_ptr<kernels::KernelWriter> cudaWriter(const std::string& name, const std::string& real) {
    return std::make_unique<cuda::CudaWriter>(name, real);
  }

  // The tensor-core modules' hooks are written with approximate math (the series softplus;
  // attn_fast_* are exact on the host): the hook tests check that text.
  std::unique_ptr<kernels::KernelWriter> hookWriter(const std::string& name, const std::string& real) {
    return std::make_unique<cuda::CudaWriter>(name, real, cuda::CudaWriter::Math::Approximate);
  }

  struct HostModule {
    void* handle = nullptr;
    cpu::CpuKernels kernels;
  };

  HostModule buildOnHost(const KernelPlan& plan, const std::string& real, const std::string& tag) {
    kernels::ScalarKernels k = cuda::generateScalarCuda(plan, differentiate(plan), real);
    std::string source = cuda::scalarPreamble();
    for (const auto& f : k.functions) source += f.text + "\n";
    HostModule m;
    m.handle = compileOnHost(source, tag);
    auto sym = [&](const std::string& n) { return symbol<cpu::KernelFn>(m.handle, n); };
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

  // One comparison's inputs (fresh randn q, k, v, dO from `seed`, then `poison` applied to
  // them) and what the host-compiled CUDA kernels (1) and the CPU backend (2) make of them,
  // forward and, where the program has one, backward.
  template <typename T>
  struct BothBackends {
    std::vector<T> q, k, v, dout;
    std::vector<T> o1, o2, st1, st2, dq1, dk1, dv1, dq2, dk2, dv2;
    bool backward = false;
  };

  template <typename T>
  BothBackends<T> runBoth(const KernelPlan& plan, const HostModule& m, const cpu::Shape& s, uint64_t seed,
                          const std::function<void(BothBackends<T>&)>& poison = {}) {
    auto cpuKernels = cpu::compile(plan, std::is_same<T, double>::value);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal;
    auto randn = [&](int64_t n) {
      std::vector<T> x(static_cast<size_t>(n));
      for (auto& e : x) e = static_cast<T>(normal(rng));
      return x;
    };
    BothBackends<T> r;
    r.q = randn(s.heads * s.lq * s.d);
    r.k = randn(s.heads * s.lk * s.d);
    r.v = randn(s.heads * s.lk * s.dv);
    r.dout = randn(s.heads * s.lq * s.dv);
    if (poison) poison(r);
    const size_t slots = static_cast<size_t>(std::max(1, m.kernels.source.statSlots));
    r.o1.resize(static_cast<size_t>(s.heads * s.lq * s.dv));
    r.o2 = r.o1;
    r.st1.resize(static_cast<size_t>(s.heads * s.lq) * slots);
    r.st2 = r.st1;
    cpu::forward<T>(m.kernels, s, r.q.data(), r.k.data(), r.v.data(), r.o1.data(), r.st1.data());
    cpu::forward<T>(*cpuKernels, s, r.q.data(), r.k.data(), r.v.data(), r.o2.data(), r.st2.data());
    r.backward = m.kernels.source.backwardUnsupported.empty();
    if (!r.backward) return r;
    r.dq1.resize(r.q.size());
    r.dk1.resize(r.k.size());
    r.dv1.resize(r.v.size());
    r.dq2 = r.dq1, r.dk2 = r.dk1, r.dv2 = r.dv1;
    cpu::backward<T>(m.kernels, s, r.q.data(), r.k.data(), r.v.data(), r.o1.data(), r.st1.data(), r.dout.data(),
                     r.dq1.data(), r.dk1.data(), r.dv1.data());
    cpu::backward<T>(*cpuKernels, s, r.q.data(), r.k.data(), r.v.data(), r.o2.data(), r.st2.data(), r.dout.data(),
                     r.dq2.data(), r.dk2.data(), r.dv2.data());
    return r;
  }

  // Forward and backward of the host-compiled CUDA kernels against the CPU backend's.
  template <typename T>
  void compareWithCpu(const KernelPlan& plan, const HostModule& m, const cpu::Shape& s, uint64_t seed, double tolerance,
                      const std::string& what) {
    const BothBackends<T> r = runBoth<T>(plan, m, s, seed);
    INFO(what, " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " dv=", s.dv);
    CHECK(relativeError(r.o1, r.o2) <= tolerance);
    if (!r.backward) return;
    CHECK(relativeError(r.dq1, r.dq2) <= tolerance);
    CHECK(relativeError(r.dk1, r.dk2) <= tolerance);
    CHECK(relativeError(r.dv1, r.dv2) <= tolerance);
  }

  const cpu::Shape kShapes[] = {{2, 37, 37, 16, 8}, {1, 5, 70, 24, 16}, {1, 1, 1, 8, 8}, {3, 64, 130, 8, 12}};

  TEST_CASE("the generated CUDA C++, run on the host, equals the CPU backend (float64 1e-9, float32 1e-4)") {
    int seed = 1;
    for (const char* name : {"softmax", "lssa", "lssar", "recentred", "alibi", "sliding_window", "softcap", "phi_gelu",
                             "ssmax", "sigmoid_l1_rw", "exp_nonorm"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      REQUIRE_MESSAGE(std::ifstream(path).good(), "missing stdlib program ", path);
      KernelPlan plan = planOfFile(path);
      HostModule m64 = buildOnHost(plan, "double", std::string(name) + "-f64");
      for (const cpu::Shape& s : kShapes) compareWithCpu<double>(plan, m64, s, static_cast<uint64_t>(seed++), 1e-9, name);
      HostModule m32 = buildOnHost(plan, "float", std::string(name) + "-f32");
      for (const cpu::Shape& s : kShapes) compareWithCpu<float>(plan, m32, s, static_cast<uint64_t>(seed++), 1e-4, name);
    }
  }

  // Where a NaN is and is not, and the rest within `tolerance`: got against want. (relativeError
  // skips pairs that are both non-finite and, through max, a NaN on one side only.)
  template <typename T>
  size_t checkSameNans(const std::vector<T>& got, const std::vector<T>& want, double tolerance, const char* what) {
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += std::isnan(static_cast<double>(got[i])) != std::isnan(static_cast<double>(want[i]));
    CHECK_MESSAGE(differ == 0, what << ": " << differ << " entries NaN on one side only");
    size_t nans = 0;
    for (const T& x : want) nans += std::isnan(static_cast<double>(x));
    CHECK(relativeError(got, want) <= tolerance);
    return nans;
  }

  // A NaN at (head 0, row `row`, column 0) of q, k or v: the host-compiled CUDA kernels must
  // put NaN exactly where the CPU backend does, forward and backward (the CPU backend is
  // checked against the rule itself in test_torch_nan.cpp), and agree elsewhere. Returns
  // how many entries of o are NaN.
  template <typename T>
  size_t compareNanWithCpu(const KernelPlan& plan, const HostModule& m, const cpu::Shape& s, char tensor, int64_t row,
                         uint64_t seed, double tolerance, const std::string& what) {
    const BothBackends<T> r = runBoth<T>(plan, m, s, seed, [&](BothBackends<T>& in) {
      if (tensor == 'q') in.q[static_cast<size_t>(row * s.d)] = NAN;
      if (tensor == 'k') in.k[static_cast<size_t>(row * s.d)] = NAN;
      if (tensor == 'v') in.v[static_cast<size_t>(row * s.dv)] = NAN;
    });
    INFO(what, " NaN in ", tensor, "[", row, "] Lq=", s.lq, " Lk=", s.lk);
    const size_t nans = checkSameNans(r.o1, r.o2, tolerance, "o");
    if (!r.backward) return nans;
    checkSameNans(r.dq1, r.dq2, tolerance, "dq");
    checkSameNans(r.dk1, r.dk2, tolerance, "dk");
    checkSameNans(r.dv1, r.dv2, tolerance, "dv");
    return nans;
  }

  TEST_CASE("the generated CUDA C++ on the host puts NaN where the CPU backend does (q, visible and masked k, v)") {
    // Causal and expression masks (rows 0-1 see no key; key 9 is masked for rows 2-8), the
    // online softmax, l2norm + online power, and rowmax/relu/max as values.
    const char* programs[] = {
        "attention t {\n  mask causal\n  out softmax(dot(q, k) / sqrt(d))\n}\n",
        "attention t {\n  mask i - j >= 2 && i - j < 6\n  let a = l1norm(softplus(dot(l2norm(q), l2norm(k)) * 3))\n"
        "  out l1norm(relu(n * a - 0.5) ^ 3)\n}\n",
        "attention t {\n  mask causal\n  let s = dot(q, k)\n  out l1norm(relu(s - rowmax(s)) + max(s, 0) + rowmin(s) * 0 + 1)\n}\n",
    };
    const cpu::Shape shape{1, 11, 11, 4, 3};
    int tag = 0;
    for (const char* text : programs) {
      KernelPlan plan = planOfSource(text);
      HostModule m32 = buildOnHost(plan, "float", "nan-f32-" + std::to_string(tag));
      HostModule m64 = buildOnHost(plan, "double", "nan-f64-" + std::to_string(tag++));
      for (auto [tensor, row] : std::vector<std::pair<char, int64_t>>{{'q', 5}, {'q', 0}, {'k', 2}, {'k', 9}, {'v', 2}, {'v', 9}}) {
        const size_t nans = compareNanWithCpu<float>(plan, m32, shape, tensor, row, 77, 1e-4, text);
        compareNanWithCpu<double>(plan, m64, shape, tensor, row, 77, 1e-9, text);
        // Row 5 sees key 2 under both masks: those NaNs must show (the check is not vacuous).
        if (row == 5 || row == 2) CHECK(nans > 0);
      }
    }
  }

  // ---- The tensor-core forward's hooks and Variant, checked on the host: the hooks compiled
  // as C++, driven by an emulation of tc_forward.cuh's contract (its statistics, masks and
  // output forms, element by element in double), must give the CPU backend's output and
  // statistics. What this leaves to a GPU is the skeleton's own machinery (tiles, mma, pipeline).
  using HookFn = void (*)(float*, long long, float, long long, float, float, long long, float, float*);

  struct HostHooks {
    std::vector<HookFn> passes;
  };

  HostHooks buildHooksOnHost(const KernelPlan& plan, int d, int dv, const std::string& tag) {
    kernels::KernelSizes sizes{d, dv};
    void* handle = compileOnHost(hookSource(kernels::generateElementHooks(plan, differentiate(plan), "float", sizes, hookWriter)),
                                 "hooks-" + tag);
    HostHooks h;
    for (size_t p = 1; p <= plan.passes.size(); ++p) h.passes.push_back(symbol<HookFn>(handle, "attn_hook_" + std::to_string(p)));
    return h;
  }

  // tc_forward.cuh's semantics for one head, in double, per element (no tiles).
  void emulateTensorCoreForward(const KernelPlan& plan, const HostHooks& hooks, const cpu::Shape& s, const float* q,
                                const float* k, const float* v, float* o, float* stats) {
    using K = RowStatistic::Kind;
    using F = OutputAccumulation::Form;
    const ir::Graph& g = plan.graph;
    const int S = static_cast<int>(plan.statistics.size());
    const OutputAccumulation& out = plan.output;
    int outStat = -1;
    for (int t = 0; t < S; ++t)
      if (plan.statistics[static_cast<size_t>(t)].kind == K::Normaliser) outStat = t;
    auto constant = [&](ir::NodeId id) { return g.node(id).value; };
    auto invNorm = [](const float* x, int64_t n) {
      double a = 0;
      for (int64_t c = 0; c < n; ++c) a += static_cast<double>(x[c]) * x[c];
      return a == 0 ? 0.0 : 1 / std::sqrt(a);
    };
    for (int64_t r = 0; r < s.lq; ++r) {
      const long long i = s.lk - s.lq + r;
      long long lo = 0, hi = s.lk;
      if (g.mask == ir::MaskKind::Causal || g.mask == ir::MaskKind::Window) hi = std::min<long long>(i + 1, s.lk);
      if (g.mask == ir::MaskKind::Window)
        lo = std::max<long long>(0, i - (static_cast<long long>(std::ceil(constant(g.maskExpr))) - 1));
      std::vector<double> st(static_cast<size_t>(2 * S), 0.0);
      for (int t = 0; t < S; ++t) {
        K kind = plan.statistics[static_cast<size_t>(t)].kind;
        if (kind == K::Max) st[2 * t] = -INFINITY;
        if (kind == K::Min) st[2 * t] = INFINITY;
        if (kind == K::OnlineExp || (kind == K::Normaliser && out.form == F::OnlineExp)) st[2 * t + 1] = -INFINITY;
      }
      std::vector<double> acc(static_cast<size_t>(s.dv), 0.0);
      const float rq = static_cast<float>(invNorm(q + r * s.d, s.d));
      for (size_t pass = 1; pass <= plan.passes.size(); ++pass) {
        std::vector<float> finished(st.begin(), st.end());
        for (long long j = lo; j < hi; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < s.d; ++c) dot += static_cast<double>(q[r * s.d + c]) * k[j * s.d + c];
          std::vector<float> x(static_cast<size_t>(S + 2), 0.f);
          hooks.passes[pass - 1](finished.data(), i, static_cast<float>(std::max<long long>(0, hi - lo)), s.lk, rq,
                                 static_cast<float>(dot), j, static_cast<float>(invNorm(k + j * s.d, s.d)), x.data());
          if (x[static_cast<size_t>(S + 1)] == 0.f) continue;  // the expression mask
          for (int t = 0; t < S; ++t) {
            const RowStatistic& rs = plan.statistics[static_cast<size_t>(t)];
            if (rs.pass != static_cast<int>(pass) || rs.kind == K::Normaliser) continue;
            double& a = st[2 * t];
            double& b = st[2 * t + 1];
            const double xv = x[static_cast<size_t>(t)];
            switch (rs.kind) {
              case K::Sum: a += xv; break;
              case K::Mean: a += xv; b += 1; break;
              case K::Count: a += 1; break;
              // The extreme (a NaN wins), and 1 + the first key attaining it (0: no key yet).
              case K::Max: case K::Min:
                if (b == 0 || std::isnan(xv) || (rs.kind == K::Max ? a < xv : xv < a)) {
                  a = xv;
                  b = static_cast<double>(j + 1);
                }
                break;
              case K::OnlineExp: {
                double m = std::max(b, xv);
                a = (b == -INFINITY ? 0 : a * std::exp(b - m)) + std::exp(xv - m);
                b = m;
                break;
              }
              case K::OnlinePower: {
                const double p = constant(normalizeForm(g, rs.node).power);
                double m = std::max(b, std::fabs(xv));
                a = (b > 0 ? a * std::pow(b / m, p) : 0) + (m > 0 ? std::fabs(std::pow(xv / m, p)) : 0);
                b = m;
                break;
              }
              default: break;
            }
          }
          if (pass != plan.passes.size()) continue;
          const double y = x[static_cast<size_t>(S)];
          double w = y, factor = 1;
          if (out.form == F::DeferredDivision) st[2 * outStat] += std::fabs(y);
          if (out.form == F::OnlineExp) {
            double& m = st[2 * outStat + 1];
            const double mNew = std::max(m, y);
            factor = m == -INFINITY ? 0 : std::exp(m - mNew);
            w = std::exp(y - mNew);
            st[2 * outStat] = st[2 * outStat] * factor + w;
            m = mNew;
          }
          if (out.form == F::OnlinePower) {
            const double p = constant(out.power);
            double& m = st[2 * outStat + 1];
            const double mNew = std::max(m, std::fabs(y));
            factor = m > 0 ? std::pow(m / mNew, p) : 0;
            w = mNew > 0 ? std::pow(y / mNew, p) : 0;
            st[2 * outStat] = st[2 * outStat] * factor + std::fabs(w);
            m = mNew;
          }
          for (int64_t c = 0; c < s.dv; ++c) acc[static_cast<size_t>(c)] = acc[static_cast<size_t>(c)] * factor + w * v[j * s.dv + c];
        }
      }
      double scale = out.scale;
      if (out.form != F::Direct) scale = st[2 * outStat] == 0 ? 0 : out.scale / st[2 * outStat];
      for (int64_t c = 0; c < s.dv; ++c) o[r * s.dv + c] = static_cast<float>(acc[static_cast<size_t>(c)] * scale);
      for (int t = 0; t < 2 * S; ++t) stats[r * 2 * S + t] = static_cast<float>(st[static_cast<size_t>(t)]);
    }
  }

  void compareHooksWithCpu(const KernelPlan& plan, const std::string& what, const std::string& tag) {
    const cpu::Shape shapes[] = {{1, 37, 37, 16, 8}, {1, 5, 70, 24, 16}, {1, 1, 1, 8, 8}, {1, 64, 130, 8, 12}};
    auto cpuKernels = cpu::compile(plan, false);
    uint64_t seed = 7;
    for (const cpu::Shape& s : shapes) {
      HostHooks hooks = buildHooksOnHost(plan, static_cast<int>(s.d), static_cast<int>(s.dv),
                                         tag + "-" + std::to_string(s.d) + "-" + std::to_string(s.dv));
      std::mt19937_64 rng(seed++);
      std::normal_distribution<float> normal;
      auto randn = [&](int64_t n) {
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& e : x) e = normal(rng);
        return x;
      };
      auto q = randn(s.lq * s.d), k = randn(s.lk * s.d), v = randn(s.lk * s.dv);
      const size_t slots = static_cast<size_t>(std::max<int>(1, cpuKernels->source.statSlots));
      std::vector<float> o1(static_cast<size_t>(s.lq * s.dv)), o2 = o1, st1(static_cast<size_t>(s.lq) * slots), st2 = st1;
      emulateTensorCoreForward(plan, hooks, s, q.data(), k.data(), v.data(), o1.data(), st1.data());
      cpu::forward<float>(*cpuKernels, s, q.data(), k.data(), v.data(), o2.data(), st2.data());
      INFO(what, " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " dv=", s.dv);
      CHECK(relativeError(o1, o2) <= 1e-4);
      if (cpuKernels->source.statSlots > 0) CHECK(relativeError(st1, st2) <= 1e-4);
    }
  }

  TEST_CASE("the tensor-core forward's hooks and Variant, run on the host under the skeleton's contract, equal the CPU backend") {
    for (const char* name : {"softmax", "lssa", "lssar", "recentred", "alibi", "sliding_window", "softcap", "ssmax",
                             "sigmoid_l1_rw", "exp_nonorm", "relu_li"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      REQUIRE_MESSAGE(std::ifstream(path).good(), "missing stdlib program ", path);
      compareHooksWithCpu(planOfFile(path), name, name);
    }
    std::mt19937_64 rng(20261128);
    for (int p = 0; p < 6; ++p) {
      std::string text = test::randomProgram(rng);
      compareHooksWithCpu(planOfSource(text), text, "random" + std::to_string(p));
    }
  }

  // ---- The tensor-core backward's hooks, the same way: an emulation of the backward
  // kernels' contract (row passes summing the hooks' terms, the row finish, the gradient
  // pass's dS, w and l2norm terms) must give the CPU backend's dq, dk, dv.
  using BwdHookFn = void (*)(float*, float*, long long, float, long long, float, float, float, long long, float, float*);
  using FinishFn = void (*)(float*, float*, long long, float, long long, float);

  void compareBackwardHooksWithCpu(const KernelPlan& plan, const std::string& what, const std::string& tag) {
    const BackwardPlan bwd = differentiate(plan);
    if (!bwd.unsupported.empty()) return;
    auto cpuKernels = cpu::compile(plan, false);
    const auto& layout = cpuKernels->source;
    const cpu::Shape shapes[] = {{1, 37, 37, 16, 8}, {1, 5, 70, 24, 16}, {1, 1, 1, 8, 8}};
    uint64_t seed = 11;
    for (const cpu::Shape& s : shapes) {
      kernels::KernelSizes sizes{s.d, s.dv};
      void* h = compileOnHost(hookSource(kernels::generateBackwardHooks(plan, bwd, "float", sizes, hookWriter)),
                              "bwdhooks-" + tag + "-" + std::to_string(s.d) + "-" + std::to_string(s.dv));
      std::vector<BwdHookFn> rows;
      std::vector<FinishFn> finishes;
      for (int p = 1; p <= bwd.rowPasses; ++p) {
        rows.push_back(symbol<BwdHookFn>(h, "attn_bwd_rows_" + std::to_string(p)));
        finishes.push_back(symbol<FinishFn>(h, "attn_bwd_rowfinish_" + std::to_string(p)));
      }
      auto grad = symbol<BwdHookFn>(h, "attn_bwd_grad");
      std::mt19937_64 rng(seed++);
      std::normal_distribution<float> normal;
      auto randn = [&](int64_t n) {
        std::vector<float> x(static_cast<size_t>(n));
        for (auto& e : x) e = normal(rng);
        return x;
      };
      auto q = randn(s.lq * s.d), k = randn(s.lk * s.d), v = randn(s.lk * s.dv), dout = randn(s.lq * s.dv);
      const int S2 = std::max(1, layout.statSlots), A = layout.adjointSlots;
      std::vector<float> o(static_cast<size_t>(s.lq * s.dv)), stats(static_cast<size_t>(s.lq * S2));
      cpu::forward<float>(*cpuKernels, s, q.data(), k.data(), v.data(), o.data(), stats.data());
      std::vector<float> dq(q.size()), dk(k.size()), dv(v.size()), dq2 = dq, dk2 = dk, dv2 = dv;
      cpu::backward<float>(*cpuKernels, s, q.data(), k.data(), v.data(), o.data(), stats.data(), dout.data(), dq2.data(),
                           dk2.data(), dv2.data());

      const ir::Graph& g = plan.graph;
      auto dot = [](const float* a, const float* b, int64_t n) {
        double t = 0;
        for (int64_t c = 0; c < n; ++c) t += static_cast<double>(a[c]) * b[c];
        return t;
      };
      auto invNorm = [&](const float* x, int64_t n) {
        double a = dot(x, x, n);
        return a == 0 ? 0.0 : 1 / std::sqrt(a);
      };
      auto range = [&](int64_t r) {
        const long long i = s.lk - s.lq + r;
        long long lo = 0, hi = s.lk;
        if (g.mask == ir::MaskKind::Causal || g.mask == ir::MaskKind::Window) hi = std::min<long long>(i + 1, s.lk);
        if (g.mask == ir::MaskKind::Window)
          lo = std::max<long long>(0, i - (static_cast<long long>(std::ceil(g.node(g.maskExpr).value)) - 1));
        return std::make_tuple(i, lo, hi);
      };
      std::vector<float> adj(static_cast<size_t>(s.lq * std::max(1, A)), 0.f);
      for (int64_t r = 0; r < s.lq; ++r)
        for (int slot : layout.identitySlots)
          adj[static_cast<size_t>(r * A + slot)] = static_cast<float>(dot(dout.data() + r * s.dv, o.data() + r * s.dv, s.dv));
      std::vector<float> x(static_cast<size_t>(std::max(A, 4) + 1));
      for (int p = 1; p <= bwd.rowPasses; ++p) {
        for (int64_t r = 0; r < s.lq; ++r) {
          auto [i, lo, hi] = range(r);
          float* ar = adj.data() + r * A;
          std::vector<double> sums(static_cast<size_t>(A), 0.0);
          const float rq = static_cast<float>(invNorm(q.data() + r * s.d, s.d));
          for (long long j = lo; j < hi; ++j) {
            std::fill(x.begin(), x.end(), 0.f);
            rows[static_cast<size_t>(p - 1)](stats.data() + r * S2, ar, i, static_cast<float>(hi - lo), s.lk, rq,
                                             static_cast<float>(dot(q.data() + r * s.d, k.data() + j * s.d, s.d)),
                                             static_cast<float>(dot(dout.data() + r * s.dv, v.data() + j * s.dv, s.dv)),
                                             j, static_cast<float>(invNorm(k.data() + j * s.d, s.d)), x.data());
            if (x[static_cast<size_t>(A)] == 0.f) continue;
            for (int a = 0; a < A; ++a)
              if (bwd.adjoints[static_cast<size_t>(a)].level == p) sums[static_cast<size_t>(a)] += x[static_cast<size_t>(a)];
          }
          for (int a = 0; a < A; ++a) ar[a] += static_cast<float>(sums[static_cast<size_t>(a)]);
          finishes[static_cast<size_t>(p - 1)](stats.data() + r * S2, ar, i, static_cast<float>(hi - lo), s.lk, rq);
        }
      }
      std::vector<double> rqBar(static_cast<size_t>(s.lq), 0.0), rkBar(static_cast<size_t>(s.lk), 0.0);
      std::vector<double> dqd(dq.size(), 0.0), dkd(dk.size(), 0.0), dvd(dv.size(), 0.0);
      for (int64_t r = 0; r < s.lq; ++r) {
        auto [i, lo, hi] = range(r);
        const float rq = static_cast<float>(invNorm(q.data() + r * s.d, s.d));
        for (long long j = lo; j < hi; ++j) {
          std::fill(x.begin(), x.end(), 0.f);
          grad(stats.data() + r * S2, adj.data() + r * A, i, static_cast<float>(hi - lo), s.lk, rq,
               static_cast<float>(dot(q.data() + r * s.d, k.data() + j * s.d, s.d)),
               static_cast<float>(dot(dout.data() + r * s.dv, v.data() + j * s.dv, s.dv)), j,
               static_cast<float>(invNorm(k.data() + j * s.d, s.d)), x.data());
          if (x[4] == 0.f) continue;
          for (int64_t c = 0; c < s.d; ++c) {
            dqd[static_cast<size_t>(r * s.d + c)] += static_cast<double>(x[0]) * k[static_cast<size_t>(j * s.d + c)];
            dkd[static_cast<size_t>(j * s.d + c)] += static_cast<double>(x[0]) * q[static_cast<size_t>(r * s.d + c)];
          }
          for (int64_t c = 0; c < s.dv; ++c)
            dvd[static_cast<size_t>(j * s.dv + c)] += static_cast<double>(x[1]) * dout[static_cast<size_t>(r * s.dv + c)];
          rqBar[static_cast<size_t>(r)] += x[2];
          rkBar[static_cast<size_t>(j)] += x[3];
        }
      }
      // The l2norm's share: d(1/|x|)/dx = -(1/|x|)^3 x.
      for (int64_t r = 0; r < s.lq && layout.needsQueryNorm; ++r) {
        const double ri = invNorm(q.data() + r * s.d, s.d);
        for (int64_t c = 0; c < s.d; ++c) dqd[static_cast<size_t>(r * s.d + c)] -= rqBar[static_cast<size_t>(r)] * ri * ri * ri * q[static_cast<size_t>(r * s.d + c)];
      }
      for (int64_t j = 0; j < s.lk && layout.needsKeyNorm; ++j) {
        const double rj = invNorm(k.data() + j * s.d, s.d);
        for (int64_t c = 0; c < s.d; ++c) dkd[static_cast<size_t>(j * s.d + c)] -= rkBar[static_cast<size_t>(j)] * rj * rj * rj * k[static_cast<size_t>(j * s.d + c)];
      }
      for (size_t e = 0; e < dq.size(); ++e) dq[e] = static_cast<float>(dqd[e]);
      for (size_t e = 0; e < dk.size(); ++e) dk[e] = static_cast<float>(dkd[e]);
      for (size_t e = 0; e < dv.size(); ++e) dv[e] = static_cast<float>(dvd[e]);
      INFO(what, " Lq=", s.lq, " Lk=", s.lk, " d=", s.d, " dv=", s.dv);
      CHECK(relativeError(dq, dq2) <= 1e-4);
      CHECK(relativeError(dk, dk2) <= 1e-4);
      CHECK(relativeError(dv, dv2) <= 1e-4);
    }
  }

  TEST_CASE("the tensor-core backward's hooks, run on the host under the kernels' contract, equal the CPU backend") {
    for (const char* name : {"softmax", "lssa", "lssar", "recentred", "alibi", "sliding_window", "softcap", "ssmax",
                             "sigmoid_l1_rw", "relu_li"}) {
      const std::string path = std::string(ATTN_STDLIB) + "/" + name + ".attn";
      REQUIRE_MESSAGE(std::ifstream(path).good(), "missing stdlib program ", path);
      compareBackwardHooksWithCpu(planOfFile(path), name, name);
    }
    std::mt19937_64 rng(20261129);
    for (int p = 0; p < 6; ++p) {
      std::string text = test::randomProgram(rng);
      compareBackwardHooksWithCpu(planOfSource(text), text, "random" + std::to_string(p));
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
      std::string err = test::captureStderr([&] { again = cuda::compileModule(plan, options, 90); });
      INFO(err);
      CHECK(again->origin == "compiled");
      CHECK(err.find("attn: warning: the CUDA kernel cache entry " + path) != std::string::npos);
      CHECK(err.find("rebuilding it") != std::string::npos);
      cuda::clearModuleCache();
      CHECK(cuda::compileModule(plan, options, 90)->origin == "disk");
    }
    // Params are readable in the key: LSSAR's p.
    KernelPlan lssar = planOfFile(std::string(ATTN_STDLIB) + "/lssar.attn");
    CHECK(cuda::moduleKey(lssar, options, 90, "source").fileName().rfind("lssar_p15-f32-d32-dv32-scalar-sm90-", 0) == 0);
    // Another configuration is another entry.
    cuda::CudaOptions other = options;
    other.headDim = 48;
    CHECK(cuda::compileModule(plan, other, 90)->key.fileName() != first->key.fileName());
    ::setenv("ATTN_CACHE_DIR", saved.c_str(), 1);
    if (!old) ::unsetenv("ATTN_CACHE_DIR");
    cuda::clearModuleCache();
  }

  TEST_CASE("without a GPU, loading a module is a CudaError saying why") {
    if (cuda::Driver::get().available()) {
      test::skip("this machine has a CUDA driver: the refusal cannot be seen here");
      return;
    }
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

#include "codegen/cuda/Tuning.h"
#include "support/CacheEntry.h"

TEST_SUITE("cuda") {
  TEST_CASE("autotuning: candidate tiles fit the architecture's shared memory; the tuning table round trip") {
    cuda::CudaOptions o;
    o.dtype = cuda::Dtype::BF16;
    o.headDim = o.valueDim = 128;
    auto names = [](const std::vector<cuda::TileConfig>& tiles) {
      std::string s;
      for (const auto& t : tiles) s += t.name() + " ";
      return s;
    };
    const auto h100 = cuda::candidateTiles(o, 90, 3), a100 = cuda::candidateTiles(o, 80, 3),
               ada = cuda::candidateTiles(o, 89, 3);
    INFO(names(h100), "| ", names(a100), "| ", names(ada));
    REQUIRE(!h100.empty());
    CHECK(h100.front().name() == "m64n64w4s2");  // the default first
    CHECK(h100.size() > a100.size());
    CHECK(a100.size() >= ada.size());
    for (int arch : {80, 89, 90})
      for (const auto& t : cuda::candidateTiles(o, arch, 3)) {
        cuda::CudaOptions c = o;
        c.tile = t;
        CHECK(cuda::tensorCoreGradientSharedBytes(c, 3) <= cuda::sharedMemoryLimit(arch));
        CHECK(cuda::tensorCoreRowsSharedBytes(c) <= cuda::sharedMemoryLimit(arch));
      }
    // m128n128w8s2 at d = 128: its gradient kernel takes 227 KB with 3 floats of row data per
    // query (softmax), exactly an H100's limit; with 8 (more statistics) it no longer fits.
    CHECK(names(h100).find("m128n128w8s2") != std::string::npos);
    CHECK(names(cuda::candidateTiles(o, 90, 8)).find("m128n128w8s2") == std::string::npos);
    // Head dims of 16 (mod 32): the tiles whose gradient kernel splits the dims over 2 or 4
    // warps (blockN / 16 < warps) cannot serve them; NVRTC used to stop `attn tune` on the
    // skeleton's static_assert with an internal error (the emu suite found it).
    for (int d : {48, 80}) {
      cuda::CudaOptions odd = o;
      odd.headDim = odd.valueDim = d;
      const std::string tiles = names(cuda::candidateTiles(odd, 90, 3));
      INFO("d = ", d, ": ", tiles);
      CHECK(tiles.find("m64n64w4s2") != std::string::npos);
      CHECK(tiles.find("m128n128w8s2") != std::string::npos);
      for (const char* bad : {"m64n32w4s2", "m128n64w8s2", "m128n32w8s2"}) {
        CHECK(tiles.find(bad) == std::string::npos);
        odd.tile = cuda::TileConfig::parse(bad);
        CHECK(cuda::tileUnsupported(odd).find("needs head dims that are multiples of") != std::string::npos);
      }
    }
    for (const auto& t : h100) {  // d = 128: every candidate serves it
      cuda::CudaOptions c = o;
      c.tile = t;
      CHECK(cuda::tileUnsupported(c).empty());
    }
    CHECK(cuda::lengthBucket(1) == 256);
    CHECK(cuda::lengthBucket(1000) == 1024);
    CHECK(cuda::lengthBucket(1024) == 1024);
    CHECK(cuda::lengthBucket(1 << 20) == 65536);

    const std::string path = test::tempDir() + "/tuning/tuning.txt";
    cuda::TuningTable table(path);
    table.load();
    CHECK(table.size() == 0);
    cuda::TuningKey key{"lssar_p15", "bf16", 64, 64, 4096, 90};
    CHECK_FALSE(table.find(key));
    table.set(key, cuda::TileConfig::parse("m128n64w8s2"), 1.25);
    cuda::TuningKey other = key;
    other.bucket = 8192;
    table.set(other, cuda::TileConfig::parse("m64n32w4s2"), 2.5);
    std::string warning;
    REQUIRE(table.save(&warning));
    // A line that does not parse, inside a table whose checksum is right (a table written by
    // a later attn with another line format, say), is skipped; the others are used.
    const std::string saved = test::readFile(path);
    const std::string lines = saved.substr(saved.find("\n\n") + 2);
    support::CacheKind tuningKind;
    tuningKind.name = "cuda-tuning";
    support::writeCacheEntry(tuningKind, "attn tune's table", lines + "a line that is not an entry\n", path);
    cuda::TuningTable again(path);
    int skipped = -1;
    again.load(&skipped);
    CHECK(skipped == 1);
    CHECK(again.size() == 2);
    REQUIRE(again.find(key));
    CHECK(again.find(key)->name() == "m128n64w8s2");
    CHECK(again.find(other)->name() == "m64n32w4s2");
    CHECK(test::readFile(path).find("program=lssar_p15 dtype=bf16 d=64 dv=64 L=4096 sm=90 tile=m128n64w8s2 ms=1.2500") !=
          std::string::npos);
    // An unwritable place is a warning, not a crash.
    cuda::TuningTable bad(test::writeTempFile("plainfile", "x") + "/tuning.txt");
    CHECK_FALSE(bad.save(&warning));
    CHECK(!warning.empty());
  }
}
