#include "runtime/train/Distributed.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "runtime/Attention.h"

#ifdef ATTN_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#endif
#ifdef ATTN_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace attn::train {

#ifdef ATTN_HAVE_GLOO

// LibTorch 1.x's process groups are c10d::ProcessGroup; since 2.0 Gloo and NCCL are
// c10d::Backend (a ProcessGroup wraps them). Both have the collectives used here.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

struct Communicator::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> group;
};

namespace {

std::string where(int64_t rank, int64_t size) {
  return "data parallel (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
}

// The transport device for Gloo: GLOO_SOCKET_IFNAME's interface when set (as PyTorch reads
// it), the loopback address for a run on one machine (MASTER_ADDR local), else the address
// this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> glooDevice(const std::string& masterAddr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (masterAddr == "localhost" || masterAddr.rfind("127.", 0) == 0)
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

Communicator::Communicator(const DistributedOptions& o, c10::Device device)
    : rank_(o.rank), size_(o.worldSize), timeoutSeconds_(o.timeoutSeconds) {
  if (size_ <= 1 && !o.launched) return;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeoutSeconds * 1000));
  group_ = std::make_unique<Group>();
  try {
    c10d::TCPStoreOptions storeOptions;
    storeOptions.port = static_cast<uint16_t>(o.masterPort);
    storeOptions.isServer = o.rank == 0;
    storeOptions.numWorkers = static_cast<size_t>(o.worldSize);
    storeOptions.waitWorkers = true;
    storeOptions.timeout = timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(o.masterAddr, storeOptions);
#ifdef ATTN_HAVE_NCCL
    if (device.is_cuda()) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_->store, static_cast<int>(o.rank),
                                                                   static_cast<int>(o.worldSize), options);
      return;
    }
#endif
    if (device.is_cuda())
      throw UserError("data parallel on --device cuda needs NCCL, which this LibTorch does not have");
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(glooDevice(o.masterAddr));
    group_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, static_cast<int>(o.rank),
                                                                static_cast<int>(o.worldSize), options);
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(where(o.rank, o.worldSize) + ": cannot join the other ranks at " + o.masterAddr + ":" +
                    std::to_string(o.masterPort) + " within " + std::to_string(static_cast<int64_t>(o.timeoutSeconds)) +
                    " s (MASTER_ADDR, MASTER_PORT; --dist-timeout): " + e.what());
  }
}

Communicator::~Communicator() = default;

bool Communicator::available() { return true; }

namespace {

// Waits for `work`; a failure (a rank gone, a timeout) becomes a UserError.
void wait(const c10::intrusive_ptr<c10d::Work>& work, int64_t rank, int64_t size, const char* what) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    std::string message = e.what();
    if (const size_t cut = message.find("\nException raised from"); cut != std::string::npos) message.resize(cut);
    throw UserError(where(rank, size) + ": " + what + " failed: " + message +
                    " (another rank failed, was killed, or did not answer within --dist-timeout)");
  }
}

}  // namespace

void Communicator::broadcast(const std::vector<at::Tensor>& tensors) {
  if (!active()) return;
  for (const at::Tensor& t : tensors) {
    std::vector<at::Tensor> one{t};
    wait(group_->group->broadcast(one), rank_, size_, "the broadcast of the parameters");
  }
}

void Communicator::averageInPlace(const std::vector<at::Tensor>& tensors, int64_t bucketBytes) {
  if (!active()) return;
  // Buckets of consecutive tensors of one dtype, each flattened into one buffer.
  struct Bucket {
    std::vector<at::Tensor> members;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& t : tensors) {
    if (buckets.empty() || bytes >= bucketBytes || buckets.back().members.front().scalar_type() != t.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(t);
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
  }
  for (Bucket& b : buckets) {  // all in flight at once
    std::vector<at::Tensor> flat;
    for (const at::Tensor& t : b.members) flat.push_back(t.reshape({-1}));
    b.flat = at::cat(flat);
    std::vector<at::Tensor> one{b.flat};
    b.work = group_->group->allreduce(one);
  }
  for (Bucket& b : buckets) {
    wait(b.work, rank_, size_, "the gradient all-reduce");
    b.flat.div_(static_cast<double>(size_));
    int64_t offset = 0;
    for (const at::Tensor& t : b.members) {
      t.copy_(b.flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

std::vector<double> Communicator::sum(const std::vector<double>& values) {
  if (!active()) return values;
  at::Tensor t = at::tensor(values, at::kDouble);
  std::vector<at::Tensor> one{t};
  wait(group_->group->allreduce(one), rank_, size_, "the all-reduce of the validation loss");
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void Communicator::barrier() {
  if (!active()) return;
  wait(group_->group->barrier(), rank_, size_, "the barrier");
}

#else  // no Gloo headers: one rank only

struct Communicator::Group {};

Communicator::Communicator(const DistributedOptions& o, c10::Device)
    : rank_(o.rank), size_(o.worldSize), timeoutSeconds_(o.timeoutSeconds) {
  if (size_ > 1)
    throw UserError("WORLD_SIZE is " + std::to_string(size_) +
                    ", but this attn was built without Gloo's headers, so data parallel training is not available "
                    "(install libgloo-dev, as ./scripts/setup.sh does, and rebuild)");
}
Communicator::~Communicator() = default;
bool Communicator::available() { return false; }
void Communicator::broadcast(const std::vector<at::Tensor>&) {}
void Communicator::averageInPlace(const std::vector<at::Tensor>&, int64_t) {}
std::vector<double> Communicator::sum(const std::vector<double>& values) { return values; }
void Communicator::barrier() {}

#endif

}  // namespace attn::train
