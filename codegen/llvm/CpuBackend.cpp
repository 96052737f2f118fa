#include "codegen/llvm/CpuBackend.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "codegen/llvm/LlvmJit.h"
#include "compiler/Diagnostics.h"
#include "support/CacheEntry.h"
#include "support/CacheRoot.h"
#include "support/ContentHash.h"
#include "support/FileError.h"

namespace attn::cpu {

namespace {

llvmjit::Jit& jit() {
  static std::unique_ptr<llvmjit::Jit> instance = llvmjit::Jit::create();
  return *instance;
}

std::mutex& jitMutex() {
  static std::mutex m;
  return m;
}

// The disk cache's entries (support/CacheEntry.h): the object file is the payload. Files of
// the format before it ("attn-cpu-kernel 1|2") are stale: a note, and rebuilt.
const support::CacheKind& cpuCacheKind() {
  static const support::CacheKind kind = [] {
    support::CacheKind k;
    k.name = "cpu-kernel";
    k.layout = 1;
    k.what = "the CPU kernel cache entry";
    // An object file of a few kernels is well under a megabyte; a file far larger is not
    // ours and is not read into memory.
    k.maxBytes = uint64_t(256) << 20;
    k.olderFormats = {"attn-cpu-kernel "};
    return k;
  }();
  return kind;
}

std::vector<std::string> symbolsOf(const llvmjit::CpuKernelSource& source) {
  std::vector<std::string> symbols{source.forward};
  if (source.backwardUnsupported.empty()) {
    symbols.insert(symbols.end(), source.rowPasses.begin(), source.rowPasses.end());
    symbols.push_back(source.gradient);
  }
  return symbols;
}

// Runs fn(task) for task in [0, tasks) on up to threadCount() threads.
template <typename Fn>
void parallelFor(int64_t tasks, const Fn& fn) {
  const int64_t threads = std::min<int64_t>(tasks, threadCount());
  if (threads <= 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t t = next++; t < tasks; t = next++) fn(t);
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

constexpr int64_t kRowBlock = 32;

// 1/|x_r| per row (0 for a zero row). The squares are taken of x_r / max_c |x_rc|, so |x|^2
// neither overflows nor underflows at any scale the type holds (l2norm is scale-invariant,
// IR.h); a NaN in the row gives NaN.
template <typename T>
std::vector<T> inverseNorms(const T* x, int64_t rows, int64_t d) {
  std::vector<T> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0;
    for (int64_t c = 0; c < d; ++c) m = std::max(m, std::fabs(static_cast<double>(x[r * d + c])));
    double s = 0;
    for (int64_t c = 0; c < d; ++c) {
      const double u = static_cast<double>(x[r * d + c]) / (m == 0 ? 1 : m);  // a NaN stays
      s += u * u;
    }
    out[static_cast<size_t>(r)] = s == 0 ? T(0) : static_cast<T>(1 / (m * std::sqrt(s)));
  }
  return out;
}

template <typename P>
int64_t asArg(P* p) {
  return static_cast<int64_t>(reinterpret_cast<intptr_t>(p));
}

}  // namespace

int threadCount() {
  if (const char* env = std::getenv("ATTN_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::string cacheDirectory() { return support::cacheDirectory() + "/cpu"; }

std::string emitLlvm(const KernelPlan& plan, bool f64, bool optimised, int64_t d, int64_t dv) {
  llvmjit::CpuSpecialisation sizes;
  if (d > 0 && dv > 0) sizes = {d, dv};
  llvmjit::CpuKernelSource source =
      llvmjit::generateCpuKernels(plan, differentiate(plan), f64 ? "double" : "float", sizes);
  if (!optimised) return source.ir;
  std::lock_guard<std::mutex> lock(jitMutex());
  std::string text;
  jit().compileToObject(source.ir, &text);
  return text;
}

namespace {

std::mutex memoryMutex;
std::map<std::string, std::shared_ptr<const CpuKernels>>& memory() {
  static std::map<std::string, std::shared_ptr<const CpuKernels>> cache;
  return cache;
}

// The disk cache's key: everything the object code depends on.
std::string cacheKey(const std::string& ir) {
  std::lock_guard<std::mutex> lock(jitMutex());
  return jit().fingerprint() + "; ir " + support::hashHex(ir) + " " + std::to_string(ir.size());
}

std::string entryPath(const std::string& name, bool f64, const llvmjit::CpuSpecialisation& sizes,
                      const std::string& key) {
  std::string shape = sizes.d > 0 ? "-d" + std::to_string(sizes.d) + "x" + std::to_string(sizes.dv) : "";
  return cacheDirectory() + "/" + name + "-" + (f64 ? "f64" : "f32") + shape + "-" + support::hashHex(key) + ".o";
}

llvmjit::CpuSpecialisation specialisation(int64_t d, int64_t dv) {
  if (const char* generic = std::getenv("ATTN_CPU_GENERIC"); generic && std::string(generic) == "1") return {};
  if (d <= 0 || dv <= 0) return {};
  return {d, dv};
}

}  // namespace

void clearMemoryCache() {
  std::lock_guard<std::mutex> lock(memoryMutex);
  memory().clear();
}

std::string cacheEntryPath(const KernelPlan& plan, bool f64, int64_t d, int64_t dv) {
  auto sizes = specialisation(d, dv);
  auto source = llvmjit::generateCpuKernels(plan, differentiate(plan), f64 ? "double" : "float", sizes);
  return entryPath(plan.graph.name, f64, sizes, cacheKey(source.ir));
}

std::shared_ptr<const CpuKernels> compile(const KernelPlan& plan, bool f64, int64_t d, int64_t dv) {
  auto start = std::chrono::steady_clock::now();
  auto kernels = std::make_shared<CpuKernels>();
  kernels->f64 = f64;
  const auto sizes = specialisation(d, dv);
  kernels->source = llvmjit::generateCpuKernels(plan, differentiate(plan), f64 ? "double" : "float", sizes);
  const std::string& ir = kernels->source.ir;
  {
    std::lock_guard<std::mutex> lock(memoryMutex);
    if (auto it = memory().find(ir); it != memory().end()) return it->second;
  }

  const std::string key = cacheKey(ir);
  const std::string path = entryPath(plan.graph.name, f64, sizes, key);
  std::lock_guard<std::mutex> lock(jitMutex());
  support::CacheRead entry = support::readCacheEntry(cpuCacheKind(), key, path);
  std::string object;
  kernels->origin = "disk";
  if (entry.hit()) {
    object = std::move(entry.payload);
  } else {
    if (entry.unusable()) std::fprintf(stderr, "%s\n", entry.line(cpuCacheKind()).c_str());
    object = jit().compileToObject(ir);
    // A cache that cannot be created or written is not an error: the kernels still run.
    try {
      support::writeCacheEntry(cpuCacheKind(), key, object, path);
    } catch (const support::FileError&) {
    }
    kernels->origin = "compiled";
  }
  std::vector<void*> addresses = jit().load(object, symbolsOf(kernels->source));
  kernels->forward = reinterpret_cast<KernelFn>(addresses[0]);
  if (kernels->source.backwardUnsupported.empty()) {
    for (size_t p = 0; p < kernels->source.rowPasses.size(); ++p)
      kernels->rowPasses.push_back(reinterpret_cast<KernelFn>(addresses[1 + p]));
    kernels->gradient = reinterpret_cast<KernelFn>(addresses.back());
  }
  kernels->milliseconds =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard<std::mutex> memoryLock(memoryMutex);
  memory()[ir] = kernels;
  return kernels;
}

namespace {

std::mutex observerMutex;
VisitObserver visitObserver;          // guarded by observerMutex; tests only
std::atomic<bool> observing{false};  // so that a call without an observer takes no lock

// Tells the observer (if any) that `kernel` ran over query rows [r0, r1) x keys [j0, j1)
// of `seg` (kernel-relative), in absolute query rows and key positions.
void observe(const char* kernel, int64_t head, const documents::Segment& seg, int64_t r0, int64_t r1, int64_t j0,
             int64_t j1) {
  if (!observing.load(std::memory_order_relaxed)) return;
  VisitObserver copy;
  {
    std::lock_guard<std::mutex> lock(observerMutex);
    if (!visitObserver) return;
    copy = visitObserver;
  }
  copy(Visit{kernel, head, seg.rowBegin + r0, seg.rowBegin + r1, seg.keyBegin + j0, seg.keyBegin + j1});
}

// What forward and backward share: the checks, 1/|q_i| and 1/|k_j| when a program
// l2-normalises, and the arguments every kernel reads for head h.
template <typename T>
struct HeadInputs {
  HeadInputs(const CpuKernels& kernels, const Shape& shape, const T* q, const T* k, const T* v, const T* stats)
      : src(kernels.source), s(shape), q(q), k(k), v(v), stats(stats) {
    ATTN_INTERNAL_ASSERT((kernels.f64 == std::is_same_v<T, double>), "kernel precision does not match the data");
    ATTN_INTERNAL_ASSERT(src.sizes.d == 0 || (src.sizes.d == s.d && src.sizes.dv == s.dv),
                         "kernels specialised for other head dimensions");
    if (src.needsQueryNorm) rq = inverseNorms(q, s.heads * s.lq, s.d);
    ATTN_INTERNAL_ASSERT(s.group >= 1 && s.heads % s.group == 0, "query heads not a multiple of key heads");
    if (src.needsKeyNorm) rk = inverseNorms(k, s.kvHeads() * s.lk, s.d);
  }

  // Query head h's arguments for one segment (a document, or the whole sequence): the
  // kernels see the segment's rows and keys as a sequence of their own. Its keys and
  // values are those of key/value head h / group (grouped-query attention reads them in
  // place, no copies).
  void fill(int64_t h, const documents::Segment& g, int64_t* a) const {
    using namespace llvmjit;
    const int64_t kv = h / s.group;
    const int64_t row = h * s.lq + g.rowBegin, key = kv * s.lk + g.keyBegin;
    a[kQ] = asArg(q + row * s.d);
    a[kK] = asArg(k + key * s.d);
    a[kV] = asArg(v + key * s.dv);
    a[kStats] = asArg(stats + row * src.statSlots);
    a[kRq] = src.needsQueryNorm ? asArg(rq.data() + row) : 0;
    a[kRk] = src.needsKeyNorm ? asArg(rk.data() + key) : 0;
    a[kLq] = g.rows;
    a[kLk] = g.keys;
    a[kD] = s.d;
    a[kDvDim] = s.dv;
  }

  const llvmjit::CpuKernelSource& src;
  const Shape& s;
  const T *q, *k, *v, *stats;
  std::vector<T> rq, rk;
};

// One task of the row-parallel kernels: rows [r0, r1) of segment `seg` of head h.
struct RowTask {
  int64_t h;
  documents::Segment seg;
  int64_t r0, r1;
};

// Every head's segments cut into blocks of kRowBlock query rows.
std::vector<RowTask> rowTasks(const Shape& s, const documents::Ranges* docs) {
  std::vector<RowTask> tasks;
  for (int64_t h = 0; h < s.heads; ++h)
    for (const documents::Segment& g : documents::segments(docs, h, s.lq, s.lk))
      for (int64_t r = 0; r < g.rows; r += kRowBlock) tasks.push_back({h, g, r, std::min(g.rows, r + kRowBlock)});
  return tasks;
}

void setRows(int64_t* a, const RowTask& t) {
  a[llvmjit::kR0] = t.r0;
  a[llvmjit::kR1] = t.r1;
}

}  // namespace

void setVisitObserver(VisitObserver observer) {
  std::lock_guard<std::mutex> lock(observerMutex);
  visitObserver = std::move(observer);
  observing = static_cast<bool>(visitObserver);
}

template <typename T>
void forward(const CpuKernels& kernels, const Shape& s, const T* q, const T* k, const T* v, T* o, T* stats,
             const documents::Ranges* docs) {
  const HeadInputs<T> in(kernels, s, q, k, v, stats);
  const std::vector<RowTask> tasks = rowTasks(s, docs);
  parallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
    const RowTask& t = tasks[static_cast<size_t>(task)];
    int64_t a[llvmjit::kArgCount] = {};
    in.fill(t.h, t.seg, a);
    a[llvmjit::kO] = asArg(o + (t.h * s.lq + t.seg.rowBegin) * s.dv);
    setRows(a, t);
    observe("forward", t.h, t.seg, t.r0, t.r1, 0, t.seg.keys);
    kernels.forward(a);
  });
}

template <typename T>
void backward(const CpuKernels& kernels, const Shape& s, const T* q, const T* k, const T* v, const T* o,
              const T* stats, const T* dout, T* dq, T* dk, T* dv, const documents::Ranges* docs) {
  const HeadInputs<T> in(kernels, s, q, k, v, stats);
  const auto& src = kernels.source;
  if (!src.backwardUnsupported.empty()) ATTN_INTERNAL_ERROR("backward requested of a program without one");
  const std::vector<T>&rq = in.rq, &rk = in.rk;
  std::vector<T> rqBar(rq.size(), T(0)), rkBar(rk.size(), T(0));
  const int64_t slots = src.adjointSlots;
  std::vector<T> adj(static_cast<size_t>(s.heads * s.lq * std::max<int64_t>(slots, 1)), T(0));
  for (int64_t row = 0; row < s.heads * s.lq; ++row) {
    if (src.identitySlots.empty()) break;
    // dO·o in T, summed over c in order with a rounded product and a rounded sum per step:
    // exactly how the gradient kernel computes dO·v_j (no fast-math, TextIR.cpp). So where o
    // is one v_j (a row whose weights are one-hot), dO·v_j - dO·o is exactly 0, as in the
    // maths; in double here it was float32's rounding of dO·v_j, which the chain rule then
    // multiplied by the scores' derivatives (a gradient of 1e-30 came out as 7e-4).
    // The build compiles with -ffp-contract=off (CMakeLists.txt), so no FMA fuses them.
    T dot = 0;
    for (int64_t c = 0; c < s.dv; ++c) {
      const T product = dout[row * s.dv + c] * o[row * s.dv + c];
      dot = dot + product;
    }
    for (int slot : src.identitySlots) adj[static_cast<size_t>(row * slots + slot)] = dot;
  }
  const int64_t kvHeads = s.kvHeads();
  std::fill(dq, dq + s.heads * s.lq * s.d, T(0));
  std::fill(dk, dk + kvHeads * s.lk * s.d, T(0));
  std::fill(dv, dv + kvHeads * s.lk * s.dv, T(0));

  using namespace llvmjit;
  auto headArgs = [&](int64_t h, const documents::Segment& g, int64_t* a) {
    in.fill(h, g, a);
    const int64_t kv = h / s.group;
    const int64_t row = h * s.lq + g.rowBegin, key = kv * s.lk + g.keyBegin;
    a[kDout] = asArg(dout + row * s.dv);
    a[kAdj] = asArg(adj.data() + row * slots);
    a[kDq] = asArg(dq + row * s.d);
    a[kDk] = asArg(dk + key * s.d);
    a[kDv] = asArg(dv + key * s.dv);
    a[kRqBar] = src.needsQueryNorm ? asArg(rqBar.data() + row) : 0;
    a[kRkBar] = src.needsKeyNorm ? asArg(rkBar.data() + key) : 0;
  };
  // The gradient kernel adds to dk, dv and rkBar: the query heads of one group, which share
  // them, run one after another in a single task (no two tasks write the same key). The
  // heads of a group are in one batch row, so they have the same segments.
  const std::vector<RowTask> tasks = rowTasks(s, docs);
  for (KernelFn pass : kernels.rowPasses) {
    parallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
      const RowTask& t = tasks[static_cast<size_t>(task)];
      int64_t a[kArgCount] = {};
      headArgs(t.h, t.seg, a);
      setRows(a, t);
      observe("rows", t.h, t.seg, t.r0, t.r1, 0, t.seg.keys);
      pass(a);
    });
  }
  auto gradient = [&](int64_t h, const documents::Segment& g, int64_t r0, int64_t r1, int64_t j0, int64_t j1,
                      int64_t flags) {
    int64_t a[kArgCount] = {};
    headArgs(h, g, a);
    a[kR0] = r0;
    a[kR1] = r1;
    a[kJ0] = j0;
    a[kJ1] = j1;
    a[kFlags] = flags;
    observe("gradient", h, g, r0, r1, j0, j1);
    kernels.gradient(a);
  };
  if (kvHeads >= threadCount()) {
    // Enough key heads for every thread: each group's dq, dk and dv in one sweep per query head.
    parallelFor(kvHeads, [&](int64_t kv) {
      for (const documents::Segment& g : documents::segments(docs, kv * s.group, s.lq, s.lk))
        for (int64_t h = kv * s.group; h < (kv + 1) * s.group; ++h) gradient(h, g, 0, g.rows, 0, g.keys, 3);
    });
  } else {
    // Few heads: dk, dv in parallel over key blocks, then dq in parallel over query blocks.
    const int64_t keyChunk = 4 * kKeyBlock;
    struct KeyTask {
      int64_t kv;
      documents::Segment seg;
      int64_t j0, j1;
    };
    std::vector<KeyTask> keyTasks;
    for (int64_t kv = 0; kv < kvHeads; ++kv)
      for (const documents::Segment& g : documents::segments(docs, kv * s.group, s.lq, s.lk))
        for (int64_t j = 0; j < g.keys; j += keyChunk) keyTasks.push_back({kv, g, j, std::min(g.keys, j + keyChunk)});
    parallelFor(static_cast<int64_t>(keyTasks.size()), [&](int64_t task) {
      const KeyTask& t = keyTasks[static_cast<size_t>(task)];
      for (int64_t h = t.kv * s.group; h < (t.kv + 1) * s.group; ++h) gradient(h, t.seg, 0, t.seg.rows, t.j0, t.j1, 2);
    });
    parallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
      const RowTask& t = tasks[static_cast<size_t>(task)];
      gradient(t.h, t.seg, t.r0, t.r1, 0, t.seg.keys, 1);
    });
  }
  // d(1/|x|)/dx = -x/|x|^3 = -(1/|x|)^3 x: the l2norm's share, now that rqBar and rkBar are whole.
  // Taken as (-bar r) r (r x): each factor is of the gradient's own size, where r^3 alone
  // over- or underflows for |x| ~ 1e-30 or 1e20.
  auto finishNorm = [](const std::vector<T>& r, const std::vector<T>& bar, const T* x, T* dx, int64_t rows, int64_t d) {
    for (int64_t row = 0; row < rows; ++row) {
      const T rr = r[static_cast<size_t>(row)];
      const T f = -bar[static_cast<size_t>(row)] * rr * rr;
      for (int64_t c = 0; c < d; ++c) dx[row * d + c] += f * (rr * x[row * d + c]);
    }
  };
  if (src.needsQueryNorm) finishNorm(rq, rqBar, q, dq, s.heads * s.lq, s.d);
  if (src.needsKeyNorm) finishNorm(rk, rkBar, k, dk, kvHeads * s.lk, s.d);
}

template void forward<float>(const CpuKernels&, const Shape&, const float*, const float*, const float*, float*,
                             float*, const documents::Ranges*);
template void forward<double>(const CpuKernels&, const Shape&, const double*, const double*, const double*, double*,
                              double*, const documents::Ranges*);
template void backward<float>(const CpuKernels&, const Shape&, const float*, const float*, const float*, const float*,
                              const float*, const float*, float*, float*, float*, const documents::Ranges*);
template void backward<double>(const CpuKernels&, const Shape&, const double*, const double*, const double*,
                               const double*, const double*, const double*, double*, double*, double*,
                               const documents::Ranges*);

}  // namespace attn::cpu
