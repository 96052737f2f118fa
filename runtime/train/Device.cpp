#include "runtime/train/Device.h"

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "runtime/Attention.h"

namespace attn::train {

c10::Device deviceOf(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw UserError("--device cuda: no CUDA device is available to this LibTorch (a CPU-only build, or no GPU)");
    return c10::Device(c10::kCUDA);
  }
  throw UserError("unknown device '" + name + "' (expected cpu or cuda)");
}

namespace {

// LibTorch 2.4 replaced the CUDA-only calls by per-device ones (the old ones are deprecated).
void setAutocast(bool enabled) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(enabled);
#endif
}

}  // namespace

Autocast::Autocast(const c10::Device& device) : on_(device.is_cuda()) {
  if (on_) setAutocast(true);
}

Autocast::~Autocast() {
  if (!on_) return;
  setAutocast(false);
  at::autocast::clear_cache();
}

}  // namespace attn::train
