// KernelPlan (+ its BackwardPlan) -> one CUDA C++ source for the CUDA backend, compiled at
// run time by NVRTC (Nvrtc.h), cached (KernelCache.h), launched by CudaBackend.
//
// Two paths, both generated from the same plan:
//   - float32 ("scalar") kernels: the scalar generator's loops (codegen/scalar/) written
//     as CUDA C++ by CudaWriter, wrapped as one GPU thread per query row (forward, backward
//     row passes, dq) or per key (dk, dv). Any head dimension; slow but exact — the
//     fallback, and the backward of every dtype for now.
//   - tensor-core kernels (fp16/bf16 inputs, head dims multiples of 16 up to 256): the
//     FlashAttention-2-style forward and backward skeletons (skeleton/tc_forward.cuh,
//     tc_backward.cuh) filled with the program's hooks (the statistics' and the output's
//     per-element operands; the backward's row-adjoint terms, dS, w) and a Variant (the
//     plan as data), with the tile configuration a parameter.
// The fixed code lives in real .cuh files (skeleton/), embedded at build time.
#pragma once

#include <string>
#include <vector>

#include "codegen/scalar/ScalarKernels.h"
#include "compiler/Differentiate.h"
#include "compiler/Schedule.h"

namespace attn::cuda {

enum class Dtype { F32, F16, BF16 };
const char* dtypeName(Dtype dtype);  ///< "f32", "f16", "bf16"
/// "f32"/"float32", "f16"/"float16"/"half", "bf16"/"bfloat16"; throws std::invalid_argument otherwise.
Dtype parseDtype(const std::string& text);

/// The tensor-core kernels' tiling: a parameter of code generation (autotuning picks it).
struct TileConfig {
  int blockM = 64;  ///< query rows per CTA (16 per warp)
  int blockN = 64;  ///< keys per tile
  int warps = 4;
  int stages = 2;   ///< cp.async pipeline depth
  std::string name() const;  ///< "m64n64w4s2"
  /// Parses name()'s form; throws std::invalid_argument saying what is wrong (blockM must be
  /// 16 * warps, blockN 32, 64 or 128, warps 4 or 8, stages 1 to 3).
  static TileConfig parse(const std::string& text);
};

/// Which kernels a tensor-core module holds: a forward-only caller (inference, evaluation)
/// compiles a third of the code; training compiles the backward on its first backward
/// call. The float32 module always holds everything (it is cheap).
enum class ModulePart { All, Forward, Backward };

/// True when $ATTN_CUDA_EXACT_MATH is set to something other than "" or "0".
bool exactMathRequested();

struct CudaOptions {
  ModulePart part = ModulePart::All;
  Dtype dtype = Dtype::F32;
  int headDim = 64;
  int valueDim = 64;
  TileConfig tile;
  /// Tensor-core modules: libm-exact exp, log and division instead of the special-function
  /// unit's approximations (docs/ARCHITECTURE.md, "Math precision"); float32 modules are
  /// always exact. Defaults to exactMathRequested().
  bool exactMath = exactMathRequested();
};

/// A kernel of the module and how the host launches it.
struct CudaEntry {
  std::string name;     ///< the extern "C" __global__ function
  std::string role;     ///< forward, rows_N, dq, dkdv, grad; support: norms, identity, finish_norm
  std::string grid;     ///< what one thread or CTA does, for humans
  int threads = 128;    ///< per block
  int sharedBytes = 0;  ///< dynamic shared memory per block
};

struct CudaKernelSource {
  std::string source;                ///< the whole CUDA C++ text
  std::vector<CudaEntry> entries;    ///< its kernels, forward first
  bool tensorCoreForward = false;    ///< the forward is the tensor-core kernel
  bool tensorCoreBackward = false;   ///< so is the backward (row passes + gradient kernel)
  int sharedBytes = 0;               ///< dynamic shared memory of the tensor-core forward
  /// The entry of `role`; an internal error when there is none.
  const CudaEntry& entry(const std::string& role) const;
  kernels::ScalarKernels scalar;     ///< the float32 kernels' layout (stats/adjoint slots ...)
  CudaOptions options;
};

/// Whether the tensor-core forward serves these options (fp16/bf16, dims multiple of 16, <= 256).
bool tensorCoresApply(const CudaOptions& options);
/// Why the tensor-core kernels of options.tile cannot serve options' head dims ("" when they
/// can): the backward's gradient kernel splits the head dims over the warps that share a key
/// group (tc_backward.cuh, kWarpSplit = warps / min(warps, blockN / 16)), so d and dv must be
/// multiples of 16 kWarpSplit (e.g. 32 for m64n32w4s2 and m128n64w8s2).
std::string tileUnsupported(const CudaOptions& options);

/// Dynamic shared memory of the tensor-core kernels for these options (the skeletons'
/// layouts; the generated source static_asserts that host and device agree). The gradient
/// kernel's depends on the row data it stages: 2·statistics + adjoints + (l2norm of q ? 1 : 0)
/// floats per query row.
int tensorCoreSharedBytes(const CudaOptions& options);
int tensorCoreRowsSharedBytes(const CudaOptions& options);
int tensorCoreGradientSharedBytes(const CudaOptions& options, int rowFloats);

CudaKernelSource generateCudaKernels(const KernelPlan& plan, const BackwardPlan& backward, const CudaOptions& options);

/// The scalar kernels alone, as CUDA C++ device functions in `real` ("float" or "double")
/// arithmetic, after scalarPreamble() (the argument indices and the prelude's #include) —
/// what the float32 path of generateCudaKernels holds. The tests compile it as host C++
/// (float64 too) and compare it with the CPU backend.
kernels::ScalarKernels generateScalarCuda(const KernelPlan& plan, const BackwardPlan& backward, const std::string& real);
std::string scalarPreamble();

}  // namespace attn::cuda
