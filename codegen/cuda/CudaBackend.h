// The CUDA backend's host side, without LibTorch: compile a program's kernels for a GPU
// (CudaCodegen -> NVRTC), find them in the caches (in-process, then on disk:
// KernelCache.h), load them into the device's primary context, and launch them on raw
// device pointers. runtime/CudaOp.cpp wraps this as a LibTorch autograd op.
//
// Tensors are contiguous row-major device arrays with the heads flattened:
// q [BH, Lq, D], k [BH, Lk, D], v [BH, Lk, Dv]; the float32 path takes float32 arrays (the
// op converts), the tensor-core forward takes fp16/bf16 ones.
//
// Compiling needs no GPU (tests and `attn emit` use it); loading and launching need the
// driver and say cleanly, as a CudaError, when there is none.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "codegen/cuda/CudaCodegen.h"
#include "codegen/cuda/KernelCache.h"
#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::cuda {

/// A program's module, compiled for one architecture.
struct CudaModule {
  CudaKernelSource source;
  CachedKernel binary;
  KernelKey key;
  std::string origin;       ///< "memory", "disk" or "compiled"
  double milliseconds = 0;  ///< how long getting it took
};

/// The module of `plan` for `options` and sm_<arch>, from the in-process cache, else the
/// disk cache (a damaged entry is reported on stderr and rebuilt), else NVRTC (and stored).
std::shared_ptr<const CudaModule> compileModule(const KernelPlan& plan, const CudaOptions& options, int arch);
/// The program's name and its params' values, readable: "lssar_p15" (the kernel cache's and
/// the tuning table's name for it; the source hash covers everything else).
std::string programKey(const ir::Graph& graph);
/// The key compileModule uses (for tests and tools).
KernelKey moduleKey(const KernelPlan& plan, const CudaOptions& options, int arch, const std::string& source);
/// Forgets the in-process cache (tests of the disk cache).
void clearModuleCache();

/// A module loaded on a device: its kernels by role (forward, rows_1.., dq, dkdv, and the
/// support kernels norms, identity, finish_norm).
struct LoadedModule {
  std::shared_ptr<const CudaModule> module;
  int device = 0;
  std::map<std::string, void*> functions;
};
/// Loads (once per process and device) the module; throws CudaError without a GPU.
std::shared_ptr<const LoadedModule> load(const std::shared_ptr<const CudaModule>& module, int device);

using Shape = kernels::Shape;

/// Device pointers (as integers) of one call; 0 where unused. Every buffer is the caller's:
/// o [BH,Lq,Dv]; stats [BH,Lq,statSlots]; rq [BH,Lq] and rk [BH,Lk] when the program uses
/// l2norm (scratch); for backward also dout, dq, dk, dv (zeroed by the caller), adj
/// [BH,Lq,max(1,adjointSlots)] (zeroed), rqBar [BH,Lq], rkBar [BH,Lk] (zeroed).
struct DeviceBuffers {
  uint64_t q = 0, k = 0, v = 0, o = 0, stats = 0, rq = 0, rk = 0;
  uint64_t dout = 0, adj = 0, dq = 0, dk = 0, dv = 0, rqBar = 0, rkBar = 0;
};

/// o and stats. `stream` is a CUstream (nullptr: the legacy default stream).
void forward(const LoadedModule& m, const Shape& s, const DeviceBuffers& b, void* stream);
/// dq, dk, dv from dout, o and stats (forward's), on the float32 path.
void backward(const LoadedModule& m, const Shape& s, const DeviceBuffers& b, void* stream);

/// One kernel launch of forward() or backward(): the module's kernel of `role` (CudaEntry::role)
/// on a gridX x gridY grid of `threads`-thread blocks with `sharedBytes` of dynamic shared
/// memory; `params` as cuLaunchKernel's kernelParams (valid during the call only); `what`
/// names the launch in errors.
struct KernelLaunch {
  const std::string& role;
  unsigned gridX, gridY, threads;
  int sharedBytes;
  void** params;
  const std::string& what;
};
using Launcher = std::function<void(const KernelLaunch&)>;
/// The launch sequences of forward() and backward() (which give them to the driver, in order,
/// on one stream); the tests' host emulation of the tensor-core kernels (tests/emu/) runs the
/// same sequence.
void launchForward(const CudaKernelSource& source, const Shape& s, const DeviceBuffers& b, const Launcher& launch);
void launchBackward(const CudaKernelSource& source, const Shape& s, const DeviceBuffers& b, const Launcher& launch);

}  // namespace attn::cuda
