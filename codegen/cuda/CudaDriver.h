// The CUDA driver (libcuda), opened on first use with dlopen rather than linked: the dev
// and CI machines have the CUDA toolkit but no GPU and no libcuda.so.1 (only a link-time
// stub, which would make a linked binary fail to start). attn must build, start and run
// its CPU paths there, and say clearly why the GPU path is not available.
//
// Only the entry points in use are resolved: initialisation, device queries, the primary
// context, module loading and kernel launches. <cuda.h> is used for types only, inside
// CudaDriver.cpp; handles cross this header as void*.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace attn::cuda {

/// The GPU path is not available on this machine (no driver, no device) or a device query
/// was invalid. Like io::NpyError and data::DataError, an error of the user's environment
/// or request, not of attn; the message is complete and one line.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Driver {
 public:
  /// The process's driver, opened (dlopen, cuInit, device count) on the first call.
  /// Never throws, whatever the machine.
  static Driver& get();

  /// True when libcuda.so.1 loaded, cuInit succeeded and there is at least one device.
  bool available() const { return whyNot_.empty(); }
  /// Empty when available(); otherwise one line saying why not, e.g.
  /// "no CUDA driver: libcuda.so.1 is not installed on this machine (no NVIDIA GPU driver)".
  const std::string& whyNot() const { return whyNot_; }

  /// The number of CUDA devices (> 0). Throws CudaError with whyNot() when unavailable.
  int deviceCount() const;
  /// major * 10 + minor (90 for an H100). Throws CudaError when unavailable or when
  /// `device` is not in [0, deviceCount()).
  int computeCapability(int device) const;

  /// Makes device `device`'s primary context current on this thread (the one PyTorch uses).
  void makeCurrent(int device) const;
  /// Loads a CUBIN into the current context (CUmodule); throws CudaError.
  void* loadModule(const std::string& cubin) const;
  /// The kernel `name` of a loaded module (CUfunction); throws CudaError naming it.
  void* function(void* module, const std::string& name) const;
  /// Lets `function` use `bytes` of dynamic shared memory (needed above 48 KB).
  void setDynamicSharedBytes(void* function, int bytes) const;
  /// cuLaunchKernel on `stream` (nullptr: the legacy default stream); `params` as CUDA
  /// wants them (an array of pointers to each argument). Throws CudaError naming `what`.
  void launch(void* function, unsigned gridX, unsigned gridY, unsigned blockX, int sharedBytes, void* stream,
              void** params, const std::string& what) const;

  // --- device memory and timing (attn tune); every call throws CudaError on failure
  /// cuMemAlloc in the current context; the device address.
  uint64_t allocate(size_t bytes) const;
  void release(uint64_t address) const;
  /// Sets `count` 16-bit (32-bit) words at `address` to `value`.
  void fill16(uint64_t address, unsigned short value, size_t count) const;
  void fill32(uint64_t address, unsigned value, size_t count) const;
  /// Milliseconds `work` (launches on the legacy default stream) takes on the GPU, timed
  /// with CUDA events.
  float time(const std::function<void()>& work) const;

  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

 private:
  Driver();
  void requireAvailable() const;

  struct Api;
  Api* api_ = nullptr;  // resolved entry points; lives as long as the process
  std::string whyNot_;
  int deviceCount_ = 0;
};

}  // namespace attn::cuda
