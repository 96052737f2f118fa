// Data parallel training on LibTorch's c10d: the process group behind `attn train` run as
// one process per rank (torchrun --no-python, srun). Gloo on the CPU; NCCL on GPUs where
// LibTorch has it (compiled only then: Debian's LibTorch has no CUDA, so that path is
// written but has not been compiled or run here).
//
// What it does for the trainer: the rendezvous (a TCPStore at MASTER_ADDR:MASTER_PORT,
// rank 0 its server), the parameters broadcast from rank 0 at the start, and the gradients
// averaged over the ranks in buckets of about 25 MB (as PyTorch's DDP), all buckets in flight
// at once. Not done: overlap with the backward pass (DDP starts a bucket from autograd hooks
// as its gradients become ready; here the buckets start after the backward), and optimiser
// state sharding (ZeRO-1).
//
// Failure: every collective waits at most DistributedOptions::timeoutSeconds; a rank that
// died closes its connections, which the others see at once. Either way the waiting ranks
// throw a UserError that says which rank saw what, and exit 1: no rank hangs.
//
// Built without Gloo's headers (libgloo-dev; CMake says so), a world size above 1 is a
// UserError saying how to get them.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/train/TrainOptions.h"

namespace attn::train {

class Communicator {
 public:
  /// Joins the process group of `options` (worldSize 1 and not launched: no group; every
  /// call below is then a no-op). UserError when the rendezvous fails or times out, or data parallelism is not
  /// in this build.
  explicit Communicator(const DistributedOptions& options, c10::Device device);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int64_t rank() const { return rank_; }
  int64_t size() const { return size_; }
  bool active() const { return group_ != nullptr; }

  /// Replaces every tensor by rank 0's.
  void broadcast(const std::vector<at::Tensor>& tensors);
  /// Replaces every tensor by its mean over the ranks, in buckets of about bucketBytes.
  void averageInPlace(const std::vector<at::Tensor>& tensors, int64_t bucketBytes = int64_t(25) << 20);
  /// Sums a float64 vector over the ranks (evaluation's loss sums and counts).
  std::vector<double> sum(const std::vector<double>& values);
  /// Returns when every rank has called it.
  void barrier();

  /// Whether this build can run with a world size above 1.
  static bool available();

 private:
  struct Group;
  std::unique_ptr<Group> group_;
  int64_t rank_ = 0;
  int64_t size_ = 1;
  double timeoutSeconds_ = 0;
};

}  // namespace attn::train
