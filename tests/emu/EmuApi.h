// EmuApi.h: the interface between a generated CUDA module compiled as host C++ under the
// emulation (cuda_emu.h, the "device" side, a shared object the tests build and dlopen) and
// the emulator that runs it (Emulator.h, the "GPU", linked into attn_tests).
//
// The module calls the emulator for everything a GPU does across threads (barriers, warp
// collectives, the tensor-core mma, ldmatrix, cp.async, atomics); the emulator writes the
// module's built-in variables (threadIdx, blockIdx, blockDim, gridDim) before it resumes a
// thread, and calls the module's kernels through one thunk per __global__ function, which
// takes the kernel's parameters as cuLaunchKernel does (an array of pointers to each one).
//
// Both sides are compiled by the same C++ compiler, so this is a plain C++ struct; kVersion
// changes whenever it does (a module cached with an older header is rebuilt, see EmuModule).
#pragma once

namespace attn_emu {

constexpr int kApiVersion = 1;

/// __shfl*_sync modes.
enum class Shuffle : int { Index, Up, Down, Xor };
/// __ballot_sync / __any_sync / __all_sync.
enum class Vote : int { Ballot, Any, All };
/// The mma.sync m16n8k16 operand types (f32 accumulators always).
enum class MmaType : int { F16, BF16 };

/// What the module calls. Every function is called by the running thread (a fiber) and may
/// switch to other threads before it returns; one that finds an error (a divergent warp, an
/// out-of-bounds copy, a race) does not return: the launch fails with that error.
struct Api {
  int version;
  void (*syncthreads)();
  void (*syncwarp)(unsigned mask);
  unsigned (*shuffle)(unsigned mask, unsigned value, int lane, int width, Shuffle mode);
  unsigned (*vote)(unsigned mask, int predicate, Vote mode);
  /// ldmatrix.sync.aligned.m8n8.x{count}[.trans].shared.b16 into r[0..count).
  void (*ldmatrix)(unsigned* r, unsigned sharedAddress, int count, bool trans);
  /// d[0..4) += A B, mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}: a[0..4), b0, b1 in the
  /// PTX fragment layouts.
  void (*mma16816)(float* d, const unsigned* a, unsigned b0, unsigned b1, MmaType type);
  /// cp.async of `bytes` (4, 8 or 16) global -> shared, the first `srcBytes` read from src and
  /// the rest zero-filled; lands at the cp.async.wait_group that covers it.
  void (*cpAsync)(unsigned sharedAddress, const void* src, int bytes, int srcBytes);
  void (*cpAsyncCommit)();
  void (*cpAsyncWait)(int pendingGroups);
  float (*atomicAddFloat)(float* address, float value);
  /// __cvta_generic_to_shared: the .shared address of a pointer into the dynamic shared memory.
  unsigned (*sharedAddress)(const void* generic);
  /// __trap() / a failed device-side check: fails the launch with `why`.
  void (*trap)(const char* why);
};

/// The module's built-in variables (each three unsigned: x, y, z) and its shared memory
/// (extern __shared__ arrays all alias it), which the emulator sets and reads.
struct Builtins {
  unsigned* threadIdx;
  unsigned* blockIdx;
  unsigned* blockDim;
  unsigned* gridDim;
  unsigned char* shared;
  unsigned long sharedCapacity;
};

/// A __global__ function of the module, called with cuLaunchKernel's kernelParams.
using KernelThunk = void (*)(void** params);
struct Entry {
  const char* name;
  KernelThunk thunk;
};

/// The module's exported C functions: attn_emu_bind(api) installs the emulator (returns the
/// module's built-ins; a version other than kApiVersion is refused with a null shared
/// pointer), attn_emu_entries() the kernels, ended by {nullptr, nullptr}.
using BindFn = Builtins (*)(const Api* api);
using EntriesFn = const Entry* (*)();

}  // namespace attn_emu
