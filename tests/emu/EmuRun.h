// EmuRun.h: a generated tensor-core module's forward and backward on the emulator, end to end
// on host buffers, as runtime/CudaOp.cpp runs them on a GPU: the same buffers (o and the
// statistics left uninitialised; dq, dk, dv, the row adjoints and the l2norm sums zeroed; the
// forward's o and statistics handed to backward) and the same launch sequence
// (cuda::launchForward / launchBackward, codegen/cuda/CudaBackend.h, which the GPU runs too).
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/cuda/CudaBackend.h"
#include "emu/EmuModule.h"

namespace attn::emu {

/// Inputs as 16-bit element bits (fp16 or bf16, the module's type), row-major
/// [heads][L][D] with the heads flattened.
struct HostProblem {
  cuda::Shape shape;
  std::vector<uint16_t> q, k, v, dout;  ///< dout may be empty: forward only
};

struct HostResult {
  std::vector<uint16_t> o;   ///< [heads][lq][dv], the module's element type
  std::vector<float> stats;  ///< [heads][lq][max(statSlots, 1)]
  std::vector<float> dq, dk, dv;  ///< when backward ran
};

/// Forward, and backward when p.dout is given, of `source` (a tensor-core module holding the
/// kernels both need: ModulePart::All) built as `module`, on `emu`. Throws EmuError.
HostResult runOnEmulator(Emulator& emu, const EmuModule& module, const cuda::CudaKernelSource& source,
                         const HostProblem& p);

}  // namespace attn::emu
