// cuda_emu.h: what a generated CUDA module needs to compile as host C++ and run on the
// emulator (Emulator.h). EmuModule includes it first, then the generated source, unchanged.
//
// It provides the CUDA language pieces a host compiler lacks: the execution-space and launch
// qualifiers, the built-in variables (written by the emulator before it resumes a thread),
// the dynamic shared memory (one buffer, which every `extern __shared__` array of namespace
// attn_tc aliases: the skeletons' attnTcSmem), the warp intrinsics, barriers and atomics (calls
// into the emulator), and the special-function intrinsics (__expf, __fdividef, __logf) as the
// exact host functions (the hardware's few-ulp approximations are not modelled). It defines
// ATTN_TC_HOST_EMULATION, under which tc_common.cuh's inline-PTX wrappers (mma.sync, ldmatrix,
// cp.async) call the emulator instead of emitting PTX.
//
// The fp16 / bf16 types and their conversions are CUDA's own headers (cuda_fp16.h,
// cuda_bf16.h), which compile for the host with round-to-nearest-even software conversions.
//
// Not modelled: static (non-extern) __shared__ variables (EmuModule refuses a source that
// declares one: here they would silently be per-thread), textures, clusters, Hopper's
// wgmma / TMA / mbarrier (issue 19 will need them), and any inline PTX not in tc_common.cuh.
#pragma once

#define ATTN_TC_HOST_EMULATION 1

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <string.h>

#include <cstddef>
#include <type_traits>
#include <utility>

#include "EmuApi.h"

// crt/host_defines.h (through the headers above) defines __device__, __host__, __global__,
// __shared__ as nothing and __forceinline__ as always_inline for a host compiler.
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace attn_emu_device {
inline const attn_emu::Api* api = nullptr;
constexpr unsigned long kSharedCapacity = 256 * 1024;  // above every GPU's 227 KB per block
}  // namespace attn_emu_device

// The built-in variables of the running thread (the emulator switches them with the thread).
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
static constexpr int warpSize = 32;

// The dynamic shared memory: the skeletons declare `extern __shared__ unsigned char
// attnTcSmem[]` inside functions of namespace attn_tc, which names this array. Page-aligned
// so that the emulator can protect it page by page (to see direct stores).
namespace attn_tc {
alignas(4096) unsigned char attnTcSmem[attn_emu_device::kSharedCapacity];
}

// ------------------------------------------------------------------ bit casts and math

inline float __int_as_float(int x) {
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
}
inline int __float_as_int(float x) {
  int i;
  memcpy(&i, &x, sizeof i);
  return i;
}
inline float __uint_as_float(unsigned x) {
  float f;
  memcpy(&f, &x, sizeof f);
  return f;
}
inline unsigned __float_as_uint(float x) {
  unsigned i;
  memcpy(&i, &x, sizeof i);
  return i;
}
inline double __longlong_as_double(long long x) {
  double d;
  memcpy(&d, &x, sizeof d);
  return d;
}
// The special-function unit's approximations, exact here (docs/TESTING.md says what that hides).
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }

// ------------------------------------------------------------------ barriers, warps, atomics

inline void __syncthreads() { attn_emu_device::api->syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { attn_emu_device::api->syncwarp(mask); }
inline void __trap() { attn_emu_device::api->trap("__trap()"); }

namespace attn_emu_device {
// A shuffle of any 4- or 8-byte value (8 bytes: two 32-bit shuffles, as the hardware does).
template <class T>
inline T shuffle(unsigned mask, T value, int lane, int width, attn_emu::Shuffle mode) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 4- or 8-byte values");
  unsigned words[sizeof(T) / 4];
  memcpy(words, &value, sizeof(T));
  for (unsigned& w : words) w = api->shuffle(mask, w, lane, width, mode);
  T out;
  memcpy(&out, words, sizeof(T));
  return out;
}
}  // namespace attn_emu_device

template <class T>
inline T __shfl_sync(unsigned mask, T value, int lane, int width = 32) {
  return attn_emu_device::shuffle(mask, value, lane, width, attn_emu::Shuffle::Index);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return attn_emu_device::shuffle(mask, value, static_cast<int>(delta), width, attn_emu::Shuffle::Up);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  return attn_emu_device::shuffle(mask, value, static_cast<int>(delta), width, attn_emu::Shuffle::Down);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int laneMask, int width = 32) {
  return attn_emu_device::shuffle(mask, value, laneMask, width, attn_emu::Shuffle::Xor);
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return attn_emu_device::api->vote(mask, predicate, attn_emu::Vote::Ballot);
}
inline int __any_sync(unsigned mask, int predicate) {
  return static_cast<int>(attn_emu_device::api->vote(mask, predicate, attn_emu::Vote::Any));
}
inline int __all_sync(unsigned mask, int predicate) {
  return static_cast<int>(attn_emu_device::api->vote(mask, predicate, attn_emu::Vote::All));
}

inline float atomicAdd(float* address, float value) { return attn_emu_device::api->atomicAddFloat(address, value); }
inline float2 atomicAdd(float2* address, float2 value) {  // sm_90's vector atomic: two scalar ones
  float* p = reinterpret_cast<float*>(address);
  const float x = atomicAdd(p, value.x);
  const float y = atomicAdd(p + 1, value.y);
  return make_float2(x, y);
}

inline size_t __cvta_generic_to_shared(const void* p) { return attn_emu_device::api->sharedAddress(p); }

// ------------------------------------------------------------------ tc_common.cuh's PTX

inline void attn_emu_ldmatrix(unsigned* r, unsigned address, int count, bool trans) {
  attn_emu_device::api->ldmatrix(r, address, count, trans);
}
inline void attn_emu_mma16816(float* d, const unsigned* a, unsigned b0, unsigned b1, bool bf16) {
  attn_emu_device::api->mma16816(d, a, b0, b1, bf16 ? attn_emu::MmaType::BF16 : attn_emu::MmaType::F16);
}
inline void attn_emu_cp_async(unsigned dst, const void* src, int bytes, int srcBytes) {
  attn_emu_device::api->cpAsync(dst, src, bytes, srcBytes);
}
inline void attn_emu_cp_async_commit() { attn_emu_device::api->cpAsyncCommit(); }
inline void attn_emu_cp_async_wait(int pending) { attn_emu_device::api->cpAsyncWait(pending); }

// ------------------------------------------------------------------ the module's exports

namespace attn_emu_device {
// Calls kernel f with cuLaunchKernel-style parameters (params[i] points to argument i).
template <class... A, size_t... I>
inline void callKernel(void (*f)(A...), void** params, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(params[I])...);
}
template <auto F>
struct Thunk;
template <class... A, void (*F)(A...)>
struct Thunk<F> {
  static void call(void** params) { callKernel(F, params, std::index_sequence_for<A...>{}); }
};
}  // namespace attn_emu_device

/// One entry of attn_emu_entries()'s table (EmuModule writes one per __global__ function).
#define ATTN_EMU_ENTRY(name) attn_emu::Entry{#name, &attn_emu_device::Thunk<&name>::call}

extern "C" attn_emu::Builtins attn_emu_bind(const attn_emu::Api* api) {
  attn_emu::Builtins b{};
  if (!api || api->version != attn_emu::kApiVersion) return b;
  attn_emu_device::api = api;
  static_assert(sizeof(uint3) == 3 * sizeof(unsigned) && sizeof(dim3) == 3 * sizeof(unsigned), "uint3 / dim3 layout");
  b.threadIdx = &threadIdx.x;
  b.blockIdx = &blockIdx.x;
  b.blockDim = &blockDim.x;
  b.gridDim = &gridDim.x;
  b.shared = attn_tc::attnTcSmem;
  b.sharedCapacity = attn_emu_device::kSharedCapacity;
  return b;
}
