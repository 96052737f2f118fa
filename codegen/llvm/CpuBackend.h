// The CPU backend: a KernelPlan compiled to native code (CpuCodegen -> LLVM O3 -> ORC
// LLJIT), cached, and run over batch × heads × query blocks on a pool of threads.
//
// Compiled kernels are cached in-process (by the generated IR) and on disk as object files
// (key: a hash of the IR — which holds the plan and the params' values — plus LLVM's
// version, the target triple, the CPU and its features), so a second process does not
// re-JIT. The disk cache lives in <cache root>/cpu (support/CacheRoot.h); its entries are
// in attn's one cache format (support/CacheEntry.h: key echoed, XXH64 checksum, atomic
// writes, only regular files of at most 256 MiB read), so a corrupt, truncated or foreign
// entry, a link or a FIFO is reported as a warning and rebuilt, and an older attn's entry
// with a note. attn runs the object code it loads from there: see docs/SECURITY.md.
//
// Tensors here are raw row-major arrays with the heads flattened: q [BH, Lq, D],
// k [BH/G, Lk, D], v [BH/G, Lk, Dv] (G = shape.group query heads per key/value head, 1
// without grouped-query attention); this file does not depend on LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codegen/Documents.h"
#include "codegen/llvm/CpuCodegen.h"
#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::cpu {

using KernelFn = void (*)(int64_t*);

struct CpuKernels {
  llvmjit::CpuKernelSource source;
  bool f64 = false;
  KernelFn forward = nullptr;
  std::vector<KernelFn> rowPasses;
  KernelFn gradient = nullptr;
  /// How the kernels were obtained: "memory", "disk" or "compiled" (and the time it took).
  std::string origin;
  double milliseconds = 0;
};

/// Compiles (or finds in a cache) the kernels of `plan` for float32 (f64 = false) or
/// float64 arithmetic, specialised for head dimensions d and dv when they are > 0 (kernels
/// for any size otherwise; ATTN_CPU_GENERIC=1 turns specialisation off everywhere).
std::shared_ptr<const CpuKernels> compile(const KernelPlan& plan, bool f64, int64_t d = 0, int64_t dv = 0);

/// Forgets the in-process cache (benchmarks and tests of the disk cache use it); kernels
/// already handed out stay valid.
void clearMemoryCache();

/// The path of the disk-cache entry `compile` reads and writes for `plan`.
std::string cacheEntryPath(const KernelPlan& plan, bool f64, int64_t d = 0, int64_t dv = 0);

/// The generated LLVM IR (before optimisation) and, with `optimised`, after O3 for this host.
/// With d, dv > 0: the kernels specialised for those head dimensions.
std::string emitLlvm(const KernelPlan& plan, bool f64, bool optimised, int64_t d = 0, int64_t dv = 0);

/// The directory of the disk cache (see above).
std::string cacheDirectory();

/// Threads used by the kernels: $ATTN_NUM_THREADS, else the hardware's.
int threadCount();

using Shape = kernels::Shape;

/// o [BH, Lq, Dv] and the row statistics [BH, Lq, statSlots] that backward reads.
/// `docs` (a program whose mask is `per document`; null: one document): each document of
/// each head runs as a sequence of its own (codegen/Documents.h).
template <typename T>
void forward(const CpuKernels& kernels, const Shape& shape, const T* q, const T* k, const T* v, T* o, T* stats,
             const documents::Ranges* docs = nullptr);

/// dq, dk, dv (overwritten) from dO, with o and stats from forward.
template <typename T>
void backward(const CpuKernels& kernels, const Shape& shape, const T* q, const T* k, const T* v, const T* o,
              const T* stats, const T* dout, T* dq, T* dk, T* dv, const documents::Ranges* docs = nullptr);

/// One kernel call as the driver makes it: `kernel` ("forward", "rows" or "gradient") over
/// query rows [rowBegin, rowEnd) (indices into q's Lq rows) and keys [keyBegin, keyEnd) (key
/// positions) of flattened head `head`. Within a call the kernel visits no other rows or
/// keys (its pointers start at the segment; the lengths are the segment's).
struct Visit {
  const char* kernel;
  int64_t head, rowBegin, rowEnd, keyBegin, keyEnd;
};
using VisitObserver = std::function<void(const Visit&)>;

/// Calls `observer` (from the worker threads: it must be thread-safe) for every kernel call
/// from now on; an empty function stops. For tests: the calls a packed batch makes cross
/// no document boundary.
void setVisitObserver(VisitObserver observer);

}  // namespace attn::cpu
