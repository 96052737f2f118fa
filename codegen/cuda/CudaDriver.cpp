// The CUDA driver through dlopen. See CudaDriver.h.
#include "codegen/cuda/CudaDriver.h"

#include <cuda.h>
#include <dlfcn.h>

#include <map>
#include <mutex>

namespace attn::cuda {

struct Driver::Api {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDeviceGetCount) deviceGetCount = nullptr;
  decltype(&::cuDeviceGet) deviceGet = nullptr;
  decltype(&::cuDeviceGetAttribute) deviceGetAttribute = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain = nullptr;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent = nullptr;
  decltype(&::cuModuleLoadData) moduleLoadData = nullptr;
  decltype(&::cuModuleGetFunction) moduleGetFunction = nullptr;
  decltype(&::cuFuncSetAttribute) funcSetAttribute = nullptr;
  decltype(&::cuLaunchKernel) launchKernel = nullptr;
  decltype(&::cuMemAlloc) memAlloc = nullptr;
  decltype(&::cuMemFree) memFree = nullptr;
  decltype(&::cuMemsetD16) memsetD16 = nullptr;
  decltype(&::cuMemsetD32) memsetD32 = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
  decltype(&::cuEventSynchronize) eventSynchronize = nullptr;
  decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
  decltype(&::cuEventDestroy) eventDestroy = nullptr;
  decltype(&::cuGetErrorName) getErrorName = nullptr;
  decltype(&::cuGetErrorString) getErrorString = nullptr;

  /// "CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"
  std::string describe(CUresult r) const {
    const char* errName = nullptr;
    const char* text = nullptr;
    if (getErrorName) getErrorName(r, &errName);
    if (getErrorString) getErrorString(r, &text);
    std::string s = errName ? errName : "CUDA error " + std::to_string(static_cast<int>(r));
    if (text) s += std::string(" (") + text + ")";
    return s;
  }
};

namespace {

template <typename F>
bool resolve(void* handle, const char* symbol, F& out) {
  out = reinterpret_cast<F>(dlsym(handle, symbol));
  return out != nullptr;
}

}  // namespace

Driver& Driver::get() {
  static Driver driver;  // thread-safe initialisation; never destroyed before exit
  return driver;
}

Driver::Driver() {
  dlerror();
  void* handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    std::string detail = err ? err : "";
    if (detail.empty() || detail.find("No such file") != std::string::npos ||
        detail.find("cannot open shared object") != std::string::npos)
      whyNot_ = "no CUDA driver: libcuda.so.1 is not installed on this machine (no NVIDIA GPU driver)";
    else
      whyNot_ = "no CUDA driver: libcuda.so.1 could not be loaded: " + detail;
    return;
  }
  auto* api = new Api;  // the library stays open for the life of the process
  bool ok = resolve(handle, "cuInit", api->init) && resolve(handle, "cuDeviceGetCount", api->deviceGetCount) &&
            resolve(handle, "cuDeviceGet", api->deviceGet) &&
            resolve(handle, "cuDeviceGetAttribute", api->deviceGetAttribute);
  ok = ok && resolve(handle, "cuDevicePrimaryCtxRetain", api->primaryCtxRetain) &&
       resolve(handle, "cuCtxSetCurrent", api->ctxSetCurrent) && resolve(handle, "cuModuleLoadData", api->moduleLoadData) &&
       resolve(handle, "cuModuleGetFunction", api->moduleGetFunction) &&
       resolve(handle, "cuFuncSetAttribute", api->funcSetAttribute) && resolve(handle, "cuLaunchKernel", api->launchKernel);
  // Memory and events (attn tune), by their versioned names where cuda.h maps them.
  ok = ok && resolve(handle, "cuMemAlloc_v2", api->memAlloc) && resolve(handle, "cuMemFree_v2", api->memFree) &&
       resolve(handle, "cuMemsetD16_v2", api->memsetD16) && resolve(handle, "cuMemsetD32_v2", api->memsetD32) &&
       resolve(handle, "cuEventCreate", api->eventCreate) && resolve(handle, "cuEventRecord", api->eventRecord) &&
       resolve(handle, "cuEventSynchronize", api->eventSynchronize) &&
       resolve(handle, "cuEventElapsedTime", api->eventElapsedTime) &&
       resolve(handle, "cuEventDestroy_v2", api->eventDestroy);
  resolve(handle, "cuGetErrorName", api->getErrorName);  // optional: only for messages
  resolve(handle, "cuGetErrorString", api->getErrorString);
  if (!ok) {
    whyNot_ = "no usable CUDA driver: libcuda.so.1 lacks an entry point attn needs (cuInit, cuDeviceGet*, "
              "cuModule*, cuLaunchKernel ...; too old?)";
    delete api;
    return;
  }
  if (CUresult r = api->init(0); r != CUDA_SUCCESS) {
    whyNot_ = "cuInit failed: " + api->describe(r);
    delete api;
    return;
  }
  int count = 0;
  if (CUresult r = api->deviceGetCount(&count); r != CUDA_SUCCESS) {
    whyNot_ = "cuDeviceGetCount failed: " + api->describe(r);
    delete api;
    return;
  }
  if (count <= 0) {
    whyNot_ = "no CUDA device: the driver is installed but reports no GPU";
    delete api;
    return;
  }
  api_ = api;
  deviceCount_ = count;
}

void Driver::requireAvailable() const {
  if (!available()) throw CudaError(whyNot_);
}

int Driver::deviceCount() const {
  requireAvailable();
  return deviceCount_;
}

int Driver::computeCapability(int device) const {
  requireAvailable();
  if (device < 0 || device >= deviceCount_)
    throw CudaError("no CUDA device " + std::to_string(device) + ": this machine has " +
                    std::to_string(deviceCount_) + " (devices 0.." + std::to_string(deviceCount_ - 1) + ")");
  CUdevice dev = 0;
  if (CUresult r = api_->deviceGet(&dev, device); r != CUDA_SUCCESS)
    throw CudaError("cuDeviceGet(" + std::to_string(device) + ") failed: " + api_->describe(r));
  int major = 0, minor = 0;
  CUresult r1 = api_->deviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  CUresult r2 = api_->deviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  if (r1 != CUDA_SUCCESS || r2 != CUDA_SUCCESS)
    throw CudaError("cuDeviceGetAttribute(compute capability) failed: " +
                    api_->describe(r1 != CUDA_SUCCESS ? r1 : r2));
  return major * 10 + minor;
}

void Driver::makeCurrent(int device) const {
  requireAvailable();
  if (device < 0 || device >= deviceCount_)
    throw CudaError("no CUDA device " + std::to_string(device) + ": this machine has " + std::to_string(deviceCount_));
  CUdevice dev = 0;
  if (CUresult r = api_->deviceGet(&dev, device); r != CUDA_SUCCESS)
    throw CudaError("cuDeviceGet(" + std::to_string(device) + ") failed: " + api_->describe(r));
  // Each device's primary context is retained once for the life of the process (the one
  // PyTorch uses too), then made current whenever asked.
  static std::mutex mutex;
  static std::map<int, CUcontext> retained;
  CUcontext ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = retained.find(device);
    if (it == retained.end()) {
      if (CUresult r = api_->primaryCtxRetain(&ctx, dev); r != CUDA_SUCCESS)
        throw CudaError("cuDevicePrimaryCtxRetain failed: " + api_->describe(r));
      retained[device] = ctx;
    } else {
      ctx = it->second;
    }
  }
  if (CUresult r = api_->ctxSetCurrent(ctx); r != CUDA_SUCCESS)
    throw CudaError("cuCtxSetCurrent failed: " + api_->describe(r));
}

void* Driver::loadModule(const std::string& cubin) const {
  requireAvailable();
  CUmodule module = nullptr;
  if (CUresult r = api_->moduleLoadData(&module, cubin.data()); r != CUDA_SUCCESS)
    throw CudaError("cuModuleLoadData failed: " + api_->describe(r) +
                    " (a kernel compiled for another GPU architecture? remove the kernel cache entry)");
  return module;
}

void* Driver::function(void* module, const std::string& name) const {
  requireAvailable();
  CUfunction f = nullptr;
  if (CUresult r = api_->moduleGetFunction(&f, static_cast<CUmodule>(module), name.c_str()); r != CUDA_SUCCESS)
    throw CudaError("cuModuleGetFunction(" + name + ") failed: " + api_->describe(r));
  return f;
}

void Driver::setDynamicSharedBytes(void* function, int bytes) const {
  requireAvailable();
  if (CUresult r = api_->funcSetAttribute(static_cast<CUfunction>(function),
                                          CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
      r != CUDA_SUCCESS)
    throw CudaError("cuFuncSetAttribute(max dynamic shared memory = " + std::to_string(bytes) +
                    " bytes) failed: " + api_->describe(r));
}

void Driver::launch(void* function, unsigned gridX, unsigned gridY, unsigned blockX, int sharedBytes, void* stream,
                    void** params, const std::string& what) const {
  requireAvailable();
  if (gridX == 0 || gridY == 0) return;  // nothing to do
  if (gridY > 65535)
    throw CudaError("launching " + what + ": batch x heads = " + std::to_string(gridY) +
                    " is more than the 65,535 a CUDA grid's y dimension holds; split the batch");
  if (CUresult r = api_->launchKernel(static_cast<CUfunction>(function), gridX, gridY, 1, blockX, 1, 1,
                                      static_cast<unsigned>(sharedBytes), static_cast<CUstream>(stream), params, nullptr);
      r != CUDA_SUCCESS)
    throw CudaError("launching " + what + " (grid " + std::to_string(gridX) + "x" + std::to_string(gridY) +
                    ", block " + std::to_string(blockX) + ") failed: " + api_->describe(r));
}

uint64_t Driver::allocate(size_t bytes) const {
  requireAvailable();
  CUdeviceptr p = 0;
  if (CUresult r = api_->memAlloc(&p, bytes); r != CUDA_SUCCESS)
    throw CudaError("cuMemAlloc(" + std::to_string(bytes) + " bytes) failed: " + api_->describe(r));
  return static_cast<uint64_t>(p);
}

void Driver::release(uint64_t address) const {
  if (available() && address) api_->memFree(static_cast<CUdeviceptr>(address));
}

void Driver::fill16(uint64_t address, unsigned short value, size_t count) const {
  requireAvailable();
  if (CUresult r = api_->memsetD16(static_cast<CUdeviceptr>(address), value, count); r != CUDA_SUCCESS)
    throw CudaError("cuMemsetD16 failed: " + api_->describe(r));
}

void Driver::fill32(uint64_t address, unsigned value, size_t count) const {
  requireAvailable();
  if (CUresult r = api_->memsetD32(static_cast<CUdeviceptr>(address), value, count); r != CUDA_SUCCESS)
    throw CudaError("cuMemsetD32 failed: " + api_->describe(r));
}

float Driver::time(const std::function<void()>& work) const {
  requireAvailable();
  CUevent start = nullptr, stop = nullptr;
  auto check = [&](CUresult r, const char* what) {
    if (r != CUDA_SUCCESS) throw CudaError(std::string(what) + " failed: " + api_->describe(r));
  };
  check(api_->eventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
  check(api_->eventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
  float ms = 0;
  try {
    check(api_->eventRecord(start, nullptr), "cuEventRecord");
    work();
    check(api_->eventRecord(stop, nullptr), "cuEventRecord");
    check(api_->eventSynchronize(stop), "cuEventSynchronize (a kernel failed?)");
    check(api_->eventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
  } catch (...) {
    api_->eventDestroy(start);
    api_->eventDestroy(stop);
    throw;
  }
  api_->eventDestroy(start);
  api_->eventDestroy(stop);
  return ms;
}

}  // namespace attn::cuda
