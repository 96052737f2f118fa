// EmuModule.h: a generated CUDA module (cuda::generateCudaKernels' source, unchanged) compiled
// as host C++ under the emulation header (cuda_emu.h) into a shared object, loaded, and bound
// to the emulator (Emulator.h), which then launches its kernels by name.
//
// Host-compiling a tensor-core module takes seconds (the skeletons are templates inlined into
// every kernel), so objects are cached on disk by a hash of everything that goes in (the
// source, the skeleton headers NVRTC would see, the emulation headers, the compiler and its
// flags): $ATTN_EMU_CACHE_DIR, else build/emu-cache. Loaded modules stay loaded for the life of
// the process (the emulator keeps views of their shared memory).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "emu/Emulator.h"

namespace attn::emu {

class EmuModule {
 public:
  /// Compiles (or finds in the caches) and loads `source`, whose __global__ functions are
  /// `kernels`. Throws EmuError with the compiler's output when it does not compile, or when
  /// the source declares a static __shared__ variable (not emulated).
  static std::shared_ptr<const EmuModule> build(const std::string& source, const std::vector<std::string>& kernels);

  ModuleView view() const;
  /// "memory" (this process built it already), "disk" (the object cache) or "compiled".
  const std::string& origin() const { return origin_; }
  double seconds() const { return seconds_; }  ///< what getting it took
  const std::string& path() const { return path_; }

 private:
  void* handle_ = nullptr;
  const attn_emu::Entry* entries_ = nullptr;
  attn_emu::Builtins builtins_{};
  std::string origin_, path_;
  double seconds_ = 0;
};

/// The compiler flags modules are built with (part of the cache key).
const std::string& emuCompileFlags();

}  // namespace attn::emu
