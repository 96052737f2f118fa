// The CUDA backend's host side. See CudaBackend.h.
#include "codegen/cuda/CudaBackend.h"

#include <chrono>
#include <cstdio>
#include <mutex>

#include "codegen/cuda/CudaDriver.h"
#include "codegen/cuda/Nvrtc.h"
#include "codegen/cuda/Skeleton.h"
#include "compiler/Diagnostics.h"

namespace attn::cuda {

namespace {

constexpr unsigned kThreads = 128;  // threads per block of the float32 kernels

std::mutex& cacheMutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::shared_ptr<const CudaModule>>& memoryCache() {
  static std::map<std::string, std::shared_ptr<const CudaModule>> cache;
  return cache;
}

unsigned blocksFor(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// The kernel arguments of the float32 path: the scalar kernels' argument array for head 0
// (attn_head_args moves it to each head), as AttnScalarParams in scalar_prelude.cuh.
struct ScalarParams {
  int64_t args[kernels::kArgCount] = {};
  int64_t heads = 0, statSlots = 0, adjointSlots = 0;
};

ScalarParams scalarParams(const CudaKernelSource& source, const Shape& s, const DeviceBuffers& b) {
  using namespace kernels;
  ScalarParams p;
  const ScalarKernels& k = source.scalar;
  auto ptr = [](uint64_t x) { return static_cast<int64_t>(x); };
  p.args[kQ] = ptr(b.q);
  p.args[kK] = ptr(b.k);
  p.args[kV] = ptr(b.v);
  p.args[kO] = ptr(b.o);
  p.args[kStats] = ptr(b.stats);
  p.args[kRq] = k.needsQueryNorm ? ptr(b.rq) : 0;
  p.args[kRk] = k.needsKeyNorm ? ptr(b.rk) : 0;
  p.args[kDout] = ptr(b.dout);
  p.args[kAdj] = ptr(b.adj);
  p.args[kDq] = ptr(b.dq);
  p.args[kDk] = ptr(b.dk);
  p.args[kDv] = ptr(b.dv);
  p.args[kRqBar] = k.needsQueryNorm ? ptr(b.rqBar) : 0;
  p.args[kRkBar] = k.needsKeyNorm ? ptr(b.rkBar) : 0;
  p.args[kLq] = s.lq;
  p.args[kLk] = s.lk;
  p.args[kD] = s.d;
  p.args[kDvDim] = s.dv;
  p.heads = s.heads;
  p.statSlots = k.statSlots;
  p.adjointSlots = std::max(1, k.adjointSlots);
  return p;
}

void* fn(const LoadedModule& m, const std::string& role) {
  auto it = m.functions.find(role);
  ATTN_INTERNAL_ASSERT(it != m.functions.end(), "cuda backend: the module has no kernel for " + role);
  return it->second;
}

void run(const Launcher& launch, const std::string& role, unsigned gridX, unsigned gridY, unsigned threads,
         int sharedBytes, void** params, const std::string& what) {
  launch(KernelLaunch{role, gridX, gridY, threads, sharedBytes, params, what});
}

// 1/|x| per row of x [rows, d] into out.
void inverseNorms(const Launcher& launch, uint64_t x, uint64_t out, int64_t rows, int64_t d) {
  long long r = rows, dd = d;
  void* params[] = {&x, &out, &r, &dd};
  run(launch, "norms", blocksFor(rows), 1, kThreads, 0, params, "attn_inverse_norms");
}

// The driver as a Launcher: module m's kernels on `stream`.
Launcher onDevice(const LoadedModule& m, void* stream) {
  return [&m, stream](const KernelLaunch& l) {
    Driver::get().launch(fn(m, l.role), l.gridX, l.gridY, l.threads, l.sharedBytes, stream, l.params, l.what);
  };
}

}  // namespace

std::string programKey(const ir::Graph& graph) {
  std::string key = graph.name;
  for (const CheckedParam& p : graph.params) {
    char value[32];
    std::snprintf(value, sizeof value, "%g", p.value);
    key += "_" + p.name + value;
  }
  return key;
}

KernelKey moduleKey(const KernelPlan& plan, const CudaOptions& options, int arch, const std::string& source) {
  KernelKey key;
  key.program = programKey(plan.graph);
  // The source and the skeleton headers it includes (embedded in this binary): a change to
  // either is a new key, never a stale cubin.
  static const std::string skeletonText = [] {
    std::string all;
    for (const SkeletonFile& f : skeletonFiles()) all += std::string(f.name) + '\0' + f.text + '\0';
    return all;
  }();
  key.sourceHash = hashHex(source + '\0' + skeletonText);
  key.dtype = dtypeName(options.dtype);
  key.headDim = options.headDim;
  key.valueDim = options.valueDim;
  key.config = "scalar";
  if (tensorCoresApply(options)) {
    key.config = options.tile.name();
    if (options.part == ModulePart::Forward) key.config += "-fwd";
    if (options.part == ModulePart::Backward) key.config += "-bwd";
  }
  key.arch = arch;
  key.nvrtc = nvrtcVersion();
  return key;
}

void clearModuleCache() {
  std::lock_guard<std::mutex> lock(cacheMutex());
  memoryCache().clear();
}

std::shared_ptr<const CudaModule> compileModule(const KernelPlan& plan, const CudaOptions& options, int arch) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  auto module = std::make_shared<CudaModule>();
  module->source = generateCudaKernels(plan, differentiate(plan), options);
  module->key = moduleKey(plan, options, arch, module->source.source);
  const std::string id = module->key.text();
  {
    std::lock_guard<std::mutex> lock(cacheMutex());
    if (auto it = memoryCache().find(id); it != memoryCache().end()) {
      auto hit = std::make_shared<CudaModule>(*it->second);
      hit->origin = "memory";
      hit->milliseconds = elapsed();
      return hit;
    }
  }
  KernelCache cache(KernelCache::defaultDirectory());
  std::string warning;
  if (auto hit = cache.load(module->key, &warning)) {
    module->binary = std::move(*hit);
    module->origin = "disk";
  } else {
    if (!warning.empty()) std::fprintf(stderr, "attn: warning: %s; rebuilding it\n", warning.c_str());
    CompiledKernel k = compile(module->source.source, plan.graph.name + ".cu", arch);
    module->binary.cubin = std::move(k.cubin);
    // The PTX is not kept: only the CUBIN is loaded (and `attn emit --target ptx` compiles
    // afresh); leaving it out halves the entry a new process reads.
    module->binary.log = std::move(k.log);
    module->binary.registers = k.registers;
    module->binary.spillBytes = k.spillBytes;
    module->binary.sharedBytes = k.sharedBytes;
    module->origin = "compiled";
    cache.store(module->key, module->binary);  // an unwritable cache is not an error
  }
  module->milliseconds = elapsed();
  std::lock_guard<std::mutex> lock(cacheMutex());
  auto [it, inserted] = memoryCache().emplace(id, module);
  return it->second;
}

std::shared_ptr<const LoadedModule> load(const std::shared_ptr<const CudaModule>& module, int device) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, int>, std::shared_ptr<const LoadedModule>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_pair(module->key.text(), device);
  if (auto it = loaded.find(key); it != loaded.end()) return it->second;
  const Driver& driver = Driver::get();
  driver.makeCurrent(device);
  auto m = std::make_shared<LoadedModule>();
  m->module = module;
  m->device = device;
  void* handle = driver.loadModule(module->binary.cubin);
  for (const CudaEntry& e : module->source.entries) {
    void* f = driver.function(handle, e.name);
    if (e.sharedBytes > 48 * 1024) driver.setDynamicSharedBytes(f, e.sharedBytes);
    m->functions[e.role] = f;
  }
  loaded[key] = m;
  return m;
}

void forward(const LoadedModule& m, const Shape& s, const DeviceBuffers& b, void* stream) {
  Driver::get().makeCurrent(m.device);
  launchForward(m.module->source, s, b, onDevice(m, stream));
}

void backward(const LoadedModule& m, const Shape& s, const DeviceBuffers& b, void* stream) {
  Driver::get().makeCurrent(m.device);
  launchBackward(m.module->source, s, b, onDevice(m, stream));
}

void launchForward(const CudaKernelSource& src, const Shape& s, const DeviceBuffers& b, const Launcher& launch) {
  const kernels::ScalarKernels& k = src.scalar;
  if (k.needsQueryNorm) inverseNorms(launch, b.q, b.rq, s.heads * s.lq, s.d);
  if (k.needsKeyNorm) inverseNorms(launch, b.k, b.rk, s.heads * s.lk, s.d);
  if (src.tensorCoreForward) {
    struct {
      uint64_t q, k, v, o;
      uint64_t stats, rq, rk;
      long long lq, lk;
      int heads;
    } p{b.q, b.k, b.v, b.o, b.stats, k.needsQueryNorm ? b.rq : 0, k.needsKeyNorm ? b.rk : 0, s.lq, s.lk,
        static_cast<int>(s.heads)};
    void* params[] = {&p};
    const TileConfig& t = src.options.tile;
    const CudaEntry& e = src.entry("forward");
    run(launch, "forward", static_cast<unsigned>((s.lq + t.blockM - 1) / t.blockM), static_cast<unsigned>(s.heads),
        static_cast<unsigned>(e.threads), e.sharedBytes, params, e.name);
    return;
  }
  ScalarParams p = scalarParams(src, s, b);
  void* params[] = {&p};
  run(launch, "forward", blocksFor(s.lq), static_cast<unsigned>(s.heads), kThreads, 0, params, src.entries.front().name);
}

void launchBackward(const CudaKernelSource& src, const Shape& s, const DeviceBuffers& b, const Launcher& launch) {
  const kernels::ScalarKernels& k = src.scalar;
  if (!k.backwardUnsupported.empty()) ATTN_INTERNAL_ERROR("backward requested of a program without one");
  if (k.needsQueryNorm) inverseNorms(launch, b.q, b.rq, s.heads * s.lq, s.d);
  if (k.needsKeyNorm) inverseNorms(launch, b.k, b.rk, s.heads * s.lk, s.d);
  const long long rows = s.heads * s.lq, dv = s.dv, slots = std::max(1, k.adjointSlots);
  for (int slot : k.identitySlots) {
    uint64_t dout = b.dout, o = b.o, adj = b.adj;
    long long r = rows, c = dv, n = slots, which = slot;
    void* params[] = {&dout, &o, &adj, &r, &c, &n, &which};
    run(launch, "identity", blocksFor(rows), 1, kThreads, 0, params, "identity adjoints");
  }
  auto finish = [&](uint64_t rinv, uint64_t bar, uint64_t x, uint64_t dx, int64_t n) {
    long long r = n, d = s.d;
    void* fp[] = {&rinv, &bar, &x, &dx, &r, &d};
    run(launch, "finish_norm", blocksFor(n), 1, kThreads, 0, fp, "the l2norm's gradient");
  };
  if (src.tensorCoreBackward) {
    // tc_backward.cuh's BwdParams.
    struct {
      uint64_t q, k, v, dout;
      uint64_t stats, adj, dq, dk, dv, rq, rk, rqBar, rkBar;
      long long lq, lk;
      int heads;
    } p{b.q, b.k, b.v, b.dout, b.stats, b.adj, b.dq, b.dk, b.dv,
        k.needsQueryNorm ? b.rq : 0, k.needsKeyNorm ? b.rk : 0, k.needsQueryNorm ? b.rqBar : 0,
        k.needsKeyNorm ? b.rkBar : 0, s.lq, s.lk, static_cast<int>(s.heads)};
    void* params[] = {&p};
    const TileConfig& t = src.options.tile;
    const unsigned queryTiles = static_cast<unsigned>((s.lq + t.blockM - 1) / t.blockM);
    const unsigned keyTiles = static_cast<unsigned>((s.lk + t.blockN - 1) / t.blockN);
    for (size_t pass = 0; pass < k.rowPasses.size(); ++pass) {
      const CudaEntry& e = src.entry("rows_" + std::to_string(pass + 1));
      run(launch, e.role, queryTiles, static_cast<unsigned>(s.heads), static_cast<unsigned>(e.threads), e.sharedBytes,
          params, e.name);
    }
    const CudaEntry& e = src.entry("grad");
    run(launch, "grad", keyTiles, static_cast<unsigned>(s.heads), static_cast<unsigned>(e.threads), e.sharedBytes,
        params, e.name);
    if (k.needsQueryNorm) finish(b.rq, b.rqBar, b.q, b.dq, s.heads * s.lq);
    if (k.needsKeyNorm) finish(b.rk, b.rkBar, b.k, b.dk, s.heads * s.lk);
    return;
  }
  ScalarParams p = scalarParams(src, s, b);
  void* params[] = {&p};
  for (size_t pass = 0; pass < k.rowPasses.size(); ++pass)
    run(launch, "rows_" + std::to_string(pass + 1), blocksFor(s.lq), static_cast<unsigned>(s.heads), kThreads, 0,
        params, k.rowPasses[pass]);
  run(launch, "dkdv", blocksFor(s.lk), static_cast<unsigned>(s.heads), kThreads, 0, params, "attn_backward_dkdv_f32");
  run(launch, "dq", blocksFor(s.lq), static_cast<unsigned>(s.heads), kThreads, 0, params, "attn_backward_dq_f32");
  if (k.needsQueryNorm) finish(b.rq, b.rqBar, b.q, b.dq, s.heads * s.lq);
  if (k.needsKeyNorm) finish(b.rk, b.rkBar, b.k, b.dk, s.heads * s.lk);
}

}  // namespace attn::cuda
