// Emulator.h: a GPU on the CPU, for running attn's generated tensor-core CUDA modules (the real
// skeletons with the real hooks, compiled as host C++ by EmuModule) in the tests.
//
// Execution model. One CTA at a time (blocks in order, x fastest); its threads are fibers
// (Fiber.h) on one OS thread, run in a fixed order (or a seeded shuffled one), each until it
// must wait for others:
//   - __syncthreads is a CTA barrier; a thread that exits while others wait at one, or a
//     barrier reached after some thread exited, is an error;
//   - warp collectives (__shfl*_sync, votes, __syncwarp, ldmatrix, mma.sync) gather all lanes
//     of the warp; a lane that exits or waits elsewhere (another collective, a barrier) while
//     the others wait is a divergence error, never a hang; a CTA in which no thread can run is
//     a deadlock error naming where each waits.
// Instructions (PTX ISA semantics):
//   - mma.sync.m16n8k16.row.col.f32.{f16,bf16}: the exact fragment layouts; products exact,
//     the 16 products and C summed in double and rounded once to float (tensor cores round
//     differently: within fp32 accumulation error, not bit-exact);
//   - ldmatrix.m8n8.x1/.x2/.x4[.trans]: row addresses from lanes 8i..8i+7 for matrix i, 16-byte
//     aligned rows inside the launch's dynamic shared memory, the exact lane -> element maps;
//   - cp.async (4, 8, 16 bytes, src-size zero fill): queued per thread; commit_group closes a
//     group, wait_group N lands every group but the newest N. Nothing lands earlier, so a read
//     before the wait (or, for other threads, before the barrier after it) sees the old bytes.
//     Sources are bounds-checked against the launch's global buffers at issue.
//   - atomicAdd on float: bounds-checked.
// Memory:
//   - shared memory is filled with 0xff bytes (NaN as fp16/bf16/f32) at each CTA's start;
//   - race detector (on by default), per 2-byte word: what cp.async lands, ldmatrix reads, and
//     the kernel stores to shared memory (direct stores are seen by write-protecting the shared
//     pages: a store faults once per page and slice of a thread's run, and the page is compared
//     with a shadow copy at the thread's next call into the emulator) is checked against the
//     earlier accesses: a write and a read or write by different threads with no __syncthreads
//     between them (or, in one warp, no __syncwarp) is reported with both threads, the offset
//     and what each access was; so is an ldmatrix of a word no thread wrote in this CTA, and a
//     thread reading its own cp.async destination before the wait that lands it. A cp.async
//     races from its issue to its landing. Not seen: direct loads from shared memory, and a
//     store that leaves the bytes as they were;
//   - global buffers (alloc()) end at a guard page and carry canaries before and after: a
//     load or store past the end faults and is reported with the buffer and the offset; a
//     store into the canaries is reported after the launch;
//   - inter-CTA races (with the race detector): a 4-byte global word written by two CTAs of
//     one launch, unless both wrote it with atomicAdd, is reported with both blocks (a CTA's
//     stores are found by comparing the buffers before and after it ran, so a plain
//     read-modify-write where an atomic belongs is caught; a store that leaves the word as
//     it was, and a CTA reading what another wrote, are not seen).
// Not modelled: timing, memory ordering beyond the barriers above, bank conflicts, the
// special-function unit's approximations (cuda_emu.h makes them exact), more than one CTA
// at a time (atomics are exact; the order of dq's float additions is the emulator's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "emu/EmuApi.h"

namespace attn::emu {

/// A launch that failed: a divergence, deadlock, race, out-of-bounds access, trap.
struct EmuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// A loaded module's view for the emulator (EmuModule.h makes one).
struct ModuleView {
  attn_emu::Builtins builtins{};
  /// The kernel of this name; nullptr when there is none.
  attn_emu::KernelThunk (*find)(const void* module, const std::string& name) = nullptr;
  const void* module = nullptr;
};

struct EmuOptions {
  bool raceCheck = true;
  /// 0: runnable threads in order; otherwise a shuffled order from this seed.
  uint64_t scheduleSeed = 0;
  size_t stackBytes = 256 * 1024;  ///< per fiber
};

/// Counts of what ran (for the tests and the report).
struct EmuCounters {
  uint64_t launches = 0, blocks = 0, threads = 0, mma = 0, ldmatrix = 0, cpAsync = 0, barriers = 0,
           shuffles = 0, atomics = 0, directStorePages = 0, switches = 0;
};

class Emulator {
 public:
  explicit Emulator(EmuOptions options = {});
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  /// A global-memory buffer of `bytes` for the kernels (16-byte aligned, ending at a guard
  /// page, canaries around it; filled with 0xff until written), alive as long as the emulator.
  void* alloc(size_t bytes, const std::string& name);
  /// Everything about `p`'s buffer for messages: "o + 128 (of 4096 bytes)".
  std::string describe(const void* p) const;

  /// Runs the kernel `name` of `module` on `grid` x `block` threads with `sharedBytes` of
  /// dynamic shared memory; `params` as cuLaunchKernel's kernelParams. Throws EmuError.
  void launch(const ModuleView& module, const std::string& name, Dim3 grid, Dim3 block, int sharedBytes,
              void** params);

  const EmuCounters& counters() const { return counters_; }
  const EmuOptions& options() const { return options_; }

  struct State;  // the running launch (Emulator.cpp)

 private:
  EmuOptions options_;
  EmuCounters counters_;
  std::unique_ptr<State> state_;
};

/// Float conversions of the 16-bit types as the emulated mma reads them (exact).
float bf16ToFloat(uint16_t bits);
float f16ToFloat(uint16_t bits);

}  // namespace attn::emu
