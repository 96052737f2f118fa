// `attn tune`. See TuneCommand.h. No LibTorch: device buffers come from the driver.
#include "runtime/cli/TuneCommand.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "codegen/cuda/CudaBackend.h"
#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/Tuning.h"
#include "compiler/Diagnostics.h"
#include "compiler/Pipeline.h"

namespace attn::cli {

namespace {

std::vector<int64_t> parseLengths(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1) throw std::invalid_argument("--lengths: '" + item + "' is not a length");
    out.push_back(v);
  }
  return out;
}

// Device buffers for one length, released on scope exit.
struct Buffers {
  const cuda::Driver& driver;
  cuda::DeviceBuffers b;
  std::vector<uint64_t> all;
  uint64_t get(size_t bytes) {
    uint64_t p = driver.allocate(std::max<size_t>(bytes, 16));
    all.push_back(p);
    return p;
  }
  ~Buffers() {
    for (uint64_t p : all) driver.release(p);
  }
};

}  // namespace

int runTune(const TuneOptions& t) {
  DiagnosticEngine diags;
  CompileOptions compile;
  compile.name = t.name;
  for (const auto& s : t.sets)
    if (auto o = parseOverride(s, diags)) compile.overrides.push_back(*o);
  auto plan = diags.hasErrors() ? std::nullopt : compileToPlan(t.file, compile, diags);
  if (!plan) {
    diags.render(std::cerr);
    return 1;
  }
  cuda::CudaOptions options;
  std::vector<int64_t> lengths;
  try {
    options.dtype = cuda::parseDtype(t.dtype);
    lengths = parseLengths(t.lengths);
  } catch (const std::invalid_argument& e) {
    std::cerr << "attn: error: " << e.what() << "\n";
    return 1;
  }
  options.headDim = t.headDim;
  options.valueDim = t.valueDim > 0 ? t.valueDim : t.headDim;
  if (!cuda::tensorCoresApply(options)) {
    std::cerr << "attn: error: only the tensor-core kernels have a tile to tune: use --dtype f16 or bf16 with head "
                 "dimensions that are multiples of 16, at most 256\n";
    return 1;
  }
  const cuda::Driver& driver = cuda::Driver::get();
  int arch = 0;
  if (t.compileOnly) {
    if (t.arch.rfind("sm_", 0) == 0) arch = std::atoi(t.arch.c_str() + 3);
    if (!cuda::supportedArch(arch)) {
      std::cerr << "attn: error: --arch " << t.arch << ": use sm_80, sm_86, sm_89 or sm_90\n";
      return 1;
    }
  } else {
    if (!driver.available()) {
      std::cerr << "attn: error: attn tune needs a GPU to time the candidates: " << driver.whyNot()
                << "\n  hint: --compile-only --arch sm_90 compiles and checks them without one\n";
      return 1;
    }
    arch = cuda::targetArch(driver.computeCapability(0));
    if (!arch) {
      std::cerr << "attn: error: attn tune needs a GPU of compute capability 8.0 or newer\n";
      return 1;
    }
    driver.makeCurrent(0);  // the buffers below are allocated before any module is loaded
  }
  const BackwardPlan backward = differentiate(*plan);
  const bool withBackward = backward.unsupported.empty();
  const kernels::ScalarKernels layout = cuda::generateScalarCuda(*plan, backward, "float");
  const int rowFloats = 2 * static_cast<int>(plan->statistics.size()) + static_cast<int>(backward.adjoints.size()) +
                        (layout.needsQueryNorm ? 1 : 0);
  const std::vector<cuda::TileConfig> candidates = cuda::candidateTiles(options, arch, rowFloats);

  // 1. Compile every candidate: registers, spills, shared memory.
  std::printf("attn tune %s: %s, d = %d, dv = %d, sm_%d; %zu candidate tiles\n", plan->graph.name.c_str(),
              cuda::dtypeName(options.dtype), options.headDim, options.valueDim, arch, candidates.size());
  std::printf("%-14s %10s %8s %12s %10s %s\n", "tile", "max regs", "spills", "max smem", "compile ms", "");
  std::vector<std::pair<cuda::TileConfig, std::shared_ptr<const cuda::CudaModule>>> viable;
  for (const cuda::TileConfig& tile : candidates) {
    cuda::CudaOptions o = options;
    o.tile = tile;
    auto module = cuda::compileModule(*plan, o, arch);
    int regs = 0, spills = 0, smem = 0;
    for (const auto& r : cuda::kernelResources(module->binary.log))
      if (r.name.find("_tc") != std::string::npos) {
        regs = std::max(regs, r.registers);
        spills += std::max(0, r.spillBytes);
      }
    for (const auto& e : module->source.entries) smem = std::max(smem, e.sharedBytes);
    const bool ok = spills == 0;
    std::printf("%-14s %10d %8d %12d %10.0f %s\n", tile.name().c_str(), regs, spills, smem, module->milliseconds,
                ok ? "" : "(spills: not timed)");
    if (ok) viable.push_back({tile, module});
  }
  if (t.compileOnly) return viable.empty() ? 1 : 0;

  // 2. Time forward (+ backward) of each viable tile per length; keep the fastest.
  cuda::TuningTable table(cuda::TuningTable::defaultPath());
  std::string tableWarning;
  table.load(nullptr, &tableWarning);
  if (!tableWarning.empty()) std::fprintf(stderr, "attn: warning: %s (it is rewritten below)\n", tableWarning.c_str());
  const size_t elem = 2;
  std::printf("\n%-8s %-14s %12s\n", "L", "tile", "median ms");
  for (int64_t L : lengths) {
    cuda::Shape s;
    s.lq = s.lk = L;
    s.d = options.headDim;
    s.dv = options.valueDim;
    s.heads = std::max<int64_t>(1, 16 * 16384 / L);
    Buffers buf{driver, {}, {}};
    const size_t rows = static_cast<size_t>(s.heads * L);
    auto& b = buf.b;
    b.q = buf.get(rows * s.d * elem);
    b.k = buf.get(rows * s.d * elem);
    b.v = buf.get(rows * s.dv * elem);
    b.dout = buf.get(rows * s.dv * elem);
    b.o = buf.get(rows * s.dv * elem);
    b.stats = buf.get(rows * std::max(1, layout.statSlots) * 4);
    b.adj = buf.get(rows * std::max(1, layout.adjointSlots) * 4);
    b.dq = buf.get(rows * s.d * 4);
    b.dk = buf.get(rows * s.d * 4);
    b.dv = buf.get(rows * s.dv * 4);
    b.rq = buf.get(rows * 4);
    b.rk = buf.get(rows * 4);
    b.rqBar = buf.get(rows * 4);
    b.rkBar = buf.get(rows * 4);
    // Small, equal inputs (0.0625 in fp16 / bf16): timing needs finite work, not variety.
    const unsigned short small = options.dtype == cuda::Dtype::F16 ? 0x2C00 : 0x3D80;
    for (uint64_t p : {b.q, b.k, b.v, b.dout}) driver.fill16(p, small, rows * std::max(s.d, s.dv));
    double best = 1e300;
    cuda::TileConfig winner = options.tile;
    for (const auto& [tile, module] : viable) {
      const auto loaded = cuda::load(module, 0);
      auto once = [&] {
        cuda::forward(*loaded, s, b, nullptr);
        if (withBackward) {
          driver.fill32(b.dq, 0, rows * s.d);
          driver.fill32(b.adj, 0, rows * std::max(1, layout.adjointSlots));
          driver.fill32(b.rqBar, 0, rows);
          cuda::backward(*loaded, s, b, nullptr);
        }
      };
      once();  // warm-up
      std::vector<float> times;
      for (int r = 0; r < std::max(1, t.repeats); ++r) times.push_back(driver.time(once));
      std::sort(times.begin(), times.end());
      const double ms = times[times.size() / 2];
      std::printf("%-8lld %-14s %12.3f\n", static_cast<long long>(L), tile.name().c_str(), ms);
      if (ms < best) {
        best = ms;
        winner = tile;
      }
    }
    cuda::TuningKey key{cuda::programKey(plan->graph), cuda::dtypeName(options.dtype), options.headDim,
                        options.valueDim, cuda::lengthBucket(L), arch};
    table.set(key, winner, best);
    std::printf("%-8lld %-14s %12.3f  <- fastest (%s)\n", static_cast<long long>(L), winner.name().c_str(), best,
                withBackward ? "forward + backward" : "forward");
  }
  std::string warning;
  if (!table.save(&warning)) {
    std::cerr << "attn: error: could not write the tuning table: " << warning << "\n";
    return 1;
  }
  std::printf("tuning table: %s\n", table.path().c_str());
  return 0;
}

}  // namespace attn::cli
