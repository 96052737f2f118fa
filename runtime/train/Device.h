// Where the model runs, shared by training, evaluation and the passkey test: the device a
// --device flag names, and bf16 autocast around a forward pass on CUDA.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace attn::train {

/// The device named by --device ("cpu" or "cuda"); a UserError where it does not exist.
c10::Device deviceOf(const std::string& name);

/// bf16 autocast around a forward pass on CUDA; nothing on the CPU.
class Autocast {
 public:
  explicit Autocast(const c10::Device& device);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool on_;
};

}  // namespace attn::train
