// selftest.cu: hand-written kernels that check the emulator itself (tests/emu/test_emu.cpp,
// suite emu): each instruction against the PTX ISA's definition, and every error the emulator
// must report. Compiled like a generated module (EmuModule), with the real skeleton headers.
#include "tc_backward.cuh"

namespace attn_tc {
// The dynamic shared memory (the block-scope extern names attn_tc::attnTcSmem, as in the skeletons).
__device__ __forceinline__ unsigned char* selftestShared() {
  extern __shared__ __align__(16) unsigned char attnTcSmem[];
  return attnTcSmem;
}
}  // namespace attn_tc

using attn_tc::selftestShared;

// out[i] = packPair<Elem>(in[2i], in[2i + 1]) (the conversion the skeletons feed the mma with).
template <class Elem>
__device__ void packAll(const float* in, unsigned* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = attn_tc::packPair<Elem>(in[2 * i], in[2 * i + 1]);
}
extern "C" __global__ void emu_pack_bf16(const float* in, unsigned* out, int n) { packAll<__nv_bfloat16>(in, out, n); }
extern "C" __global__ void emu_pack_f16(const float* in, unsigned* out, int n) { packAll<__half>(in, out, n); }

// One warp: d (16x8 f32, row-major) = a (16x16, row-major 16-bit bits) b (16x8 as [k][n]) + c,
// the fragments assembled from the PTX ISA's tables for mma.m16n8k16 (lane = 4g + t):
//   A: a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B: b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
//   C/D: c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t), c3 = (g+8, 2t+1)
template <class Elem>
__device__ void mmaFromTables(const unsigned short* a, const unsigned short* b, const float* c, float* d) {
  const int lane = static_cast<int>(threadIdx.x), g = lane >> 2, t = lane & 3;
  auto pair = [](unsigned short lo, unsigned short hi) { return static_cast<unsigned>(lo) | static_cast<unsigned>(hi) << 16; };
  const unsigned af[4] = {pair(a[g * 16 + 2 * t], a[g * 16 + 2 * t + 1]),
                          pair(a[(g + 8) * 16 + 2 * t], a[(g + 8) * 16 + 2 * t + 1]),
                          pair(a[g * 16 + 2 * t + 8], a[g * 16 + 2 * t + 9]),
                          pair(a[(g + 8) * 16 + 2 * t + 8], a[(g + 8) * 16 + 2 * t + 9])};
  const unsigned b0 = pair(b[(2 * t) * 8 + g], b[(2 * t + 1) * 8 + g]);
  const unsigned b1 = pair(b[(2 * t + 8) * 8 + g], b[(2 * t + 9) * 8 + g]);
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  float acc[4];
  for (int e = 0; e < 4; ++e) acc[e] = c[rows[e] * 8 + cols[e]];
  attn_tc::mma16816<Elem>(acc, af, b0, b1);
  for (int e = 0; e < 4; ++e) d[rows[e] * 8 + cols[e]] = acc[e];
}
extern "C" __global__ void emu_mma_bf16(const unsigned short* a, const unsigned short* b, const float* c, float* d) {
  mmaFromTables<__nv_bfloat16>(a, b, c, d);
}
extern "C" __global__ void emu_mma_f16(const unsigned short* a, const unsigned short* b, const float* c, float* d) {
  mmaFromTables<__half>(a, b, c, d);
}

// One warp: the skeletons' path from shared memory to the tensor cores. d (16x16 f32) = a b
// with a 16x16 row-major and b 16x16 stored [k][n] (kMajor, read by ldmatrix.x4.trans as V is)
// or [n][k] (read by ldmatrix.x4 as K is); fragments only through ldmatrix and the skeleton's
// lane -> address maps, results through accRow / accCol.
extern "C" __global__ void emu_ldmatrix_mma_bf16(const unsigned short* a, const unsigned short* b, float* d, int kMajor) {
  unsigned char* smem = selftestShared();
  const int lane = static_cast<int>(threadIdx.x), g = attn_tc::laneGroup(lane), t = attn_tc::laneInGroup(lane);
  unsigned short* sa = reinterpret_cast<unsigned short*>(smem);
  unsigned short* sb = sa + 256;
  for (int i = lane; i < 256; i += 32) {
    sa[i] = a[i];
    sb[i] = b[i];
  }
  __syncwarp();
  const unsigned base = attn_tc::sharedAddress(smem);
  unsigned af[4], bf[4];
  attn_tc::ldmatrixX4(af, base + (attn_tc::ldmatrixARow(lane) * 16 + attn_tc::ldmatrixACol(lane)) * 2);
  if (kMajor)
    attn_tc::ldmatrixX4Trans(bf, base + 512 + (attn_tc::ldmatrixBTransRow(lane) * 16 + attn_tc::ldmatrixBTransCol(lane)) * 2);
  else
    attn_tc::ldmatrixX4(bf, base + 512 + (attn_tc::ldmatrixBRow(lane) * 16 + attn_tc::ldmatrixBCol(lane)) * 2);
  float acc[2][4] = {};
  attn_tc::mma16816<__nv_bfloat16>(acc[0], af, bf[0], bf[1]);
  attn_tc::mma16816<__nv_bfloat16>(acc[1], af, bf[2], bf[3]);
  for (int n = 0; n < 2; ++n)
    for (int e = 0; e < 4; ++e) d[attn_tc::accRow(g, e) * 16 + n * 8 + attn_tc::accCol(t, e)] = acc[n][e];
}

// One warp: ldmatrix .x{count}[.trans] of 64 rows of 8 elements (row r, element c = 8r + c),
// lane l addressing row rows[l]; out[4 l + i] = register i of lane l.
extern "C" __global__ void emu_ldmatrix(const int* rows, unsigned* out, int count, int trans) {
  unsigned char* smem = selftestShared();
  const int lane = static_cast<int>(threadIdx.x);
  unsigned short* s = reinterpret_cast<unsigned short*>(smem);
  for (int i = lane; i < 64 * 8; i += 32) s[i] = static_cast<unsigned short>(i);
  __syncwarp();
  unsigned r[4] = {0, 0, 0, 0};
  attn_emu_ldmatrix(r, attn_tc::sharedAddress(smem) + 16 * rows[lane], count, trans != 0);
  for (int i = 0; i < 4; ++i) out[4 * lane + i] = r[i];
}

// One thread: cp.async lands at the wait_group that covers it, not before; src-size 0
// zero-fills. out[] = what shared memory holds at each step.
extern "C" __global__ void emu_cp_async(const unsigned* src, unsigned* out) {
  if (threadIdx.x != 0) return;
  unsigned char* smem = selftestShared();
  const unsigned* s = reinterpret_cast<const unsigned*>(smem);
  const unsigned base = attn_tc::sharedAddress(smem);
  attn_tc::cpAsync16(base, src, true);
  attn_tc::cpAsyncCommit();
  out[0] = s[0];  // in flight
  attn_tc::cpAsync16(base + 16, src + 4, true);
  attn_tc::cpAsyncCommit();
  attn_tc::cpAsync16(base + 32, src, false);
  attn_tc::cpAsyncCommit();
  attn_tc::cpAsyncWait<2>();
  out[1] = s[0];  // landed
  out[2] = s[4];  // in flight
  attn_tc::cpAsyncWait<1>();
  out[3] = s[4];  // landed
  out[4] = s[8];  // in flight (the zero fill)
  attn_tc::cpAsyncWait<0>();
  out[5] = s[8];  // zero
  attn_tc::detail::cpAsync4(base + 48, src + 5, true);
  attn_tc::cpAsyncCommit();
  attn_tc::cpAsync16(base + 64, src, true);  // not committed: wait_group does not cover it
  attn_tc::cpAsyncWait<0>();
  out[6] = s[12];
  out[7] = s[16];
  attn_tc::cpAsyncCommit();
  attn_tc::cpAsyncWait<0>();
  out[8] = s[16];
}

// One warp: the shuffles, votes and the skeleton's quad reductions. out[16 lane + k].
extern "C" __global__ void emu_warp(unsigned* out) {
  const int lane = static_cast<int>(threadIdx.x);
  const unsigned full = 0xffffffffu, v = 10u * lane;
  unsigned* o = out + 16 * lane;
  o[0] = __shfl_xor_sync(full, v, 5);
  o[1] = __shfl_sync(full, v, (lane * 7) % 32);
  o[2] = __shfl_up_sync(full, v, 3);
  o[3] = __shfl_down_sync(full, v, 3);
  o[4] = __shfl_xor_sync(full, v, 2, 8);
  o[5] = __shfl_xor_sync(full, v, 9, 8);  // to a later group of 8: own value
  o[6] = __shfl_sync(full, v, lane + 1, 4);
  o[7] = __ballot_sync(full, lane % 3 == 0);
  o[8] = static_cast<unsigned>(__any_sync(full, lane == 31));
  o[9] = static_cast<unsigned>(__all_sync(full, lane < 31));
  o[10] = static_cast<unsigned>(attn_tc::quadSum(static_cast<float>(lane)));
  o[11] = static_cast<unsigned>(attn_tc::quadMax(static_cast<float>(lane % 5)));
  const double x = __shfl_xor_sync(full, 0.5 + lane, 1);  // 8 bytes: two 32-bit shuffles
  o[12] = static_cast<unsigned>(2 * x);
}

// Two warps misbehaving in one way each (`mode`), or not (modes 0 and 12): what the emulator
// must report. src: n floats; out: n floats (its end is a guard page); small: 3 floats.
extern "C" __global__ void emu_errors(int mode, const float* src, float* out, int n, float* small) {
  unsigned char* smem = selftestShared();
  const unsigned base = attn_tc::sharedAddress(smem);
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  float* sf = reinterpret_cast<float*>(smem);
  const bool copy = mode <= 2;
  if (copy && warp == 0) {  // warp 0 copies src[0..128) to shared bytes [0, 512)
    attn_tc::cpAsync16(base + 16 * lane, src + 4 * lane, true);
    attn_tc::cpAsyncCommit();
    if (mode != 2) attn_tc::cpAsyncWait<0>();
  }
  if (mode == 0 || mode == 2) __syncthreads();
  if (mode == 2 && warp == 0) attn_tc::cpAsyncWait<0>();  // lands after the barrier: too late
  if (copy && warp == 1) {  // warp 1 reads it back
    unsigned r[4];
    attn_tc::ldmatrixX4(r, base + 16 * lane);
    for (int i = 0; i < 4; ++i) out[4 * lane + i] = __uint_as_float(r[i]);
  }
  if (mode == 3 && warp == 0) {  // reads its own copy's destination before waiting for it
    for (int i = 0; i < 4; ++i) sf[4 * lane + i] = 0.0f;
    __syncwarp();
    attn_tc::cpAsync16(base + 16 * lane, src + 4 * lane, true);
    attn_tc::cpAsyncCommit();
    unsigned r[4];
    attn_tc::ldmatrixX4(r, base + 16 * lane);
    attn_tc::cpAsyncWait<0>();
  }
  if (mode == 4 && lane < 16) out[tid] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);  // half a warp
  if (mode == 5) {
    if (lane == 31) return;
    __syncwarp();
  }
  if (mode == 6) {
    if (tid == 0) return;
    __syncthreads();
  }
  if (mode == 7 && tid == 0) {  // past the end of src
    attn_tc::cpAsync16(base, src + n, true);
    attn_tc::cpAsyncCommit();
    attn_tc::cpAsyncWait<0>();
  }
  if (mode == 8 && tid == 0) out[n] = 1.0f;     // the guard page after out
  if (mode == 9 && tid == 0) small[3] = 1.0f;   // the canary after small
  if (mode == 10 && warp == 0) {                // beyond the dynamic shared memory
    unsigned r[4];
    attn_tc::ldmatrixX4(r, base + 1024 + 16 * lane);
  }
  if ((mode == 11 || mode == 12) && lane == 0) {  // two warps store one word
    if (warp == 0) sf[0] = 1.0f;
    if (mode == 12) __syncthreads();
    if (warp == 1) sf[0] = 2.0f;
  }
  if (mode == 12 && lane != 0) __syncthreads();
  if (mode == 13 && tid == 0) sf[1024 / 4] = 1.0f;  // a store beyond the dynamic shared memory
  if (mode == 14) __syncwarp(0xffffu);
  if (mode == 15) {  // reads shared memory nobody wrote
    unsigned r[4];
    attn_tc::ldmatrixX4(r, base + 16 * lane);
  }
  if (mode == 16 && warp == 0) {  // lanes split between __syncthreads and __syncwarp
    if (lane < 16) __syncthreads();
    else __syncwarp();
  }
}

// Global memory written by several CTAs of one launch (grid of 3): mode 0 clean (atomics to one
// word, a word per CTA); 1 every CTA stores one word; 2 an atomicAdd then a store; 3 a store then
// an atomicAdd; 4 a plain read-modify-write of one word (what a dq without atomics would be).
extern "C" __global__ void emu_global_races(int mode, float* out) {
  if (threadIdx.x != 0) return;
  const int b = static_cast<int>(blockIdx.x);
  if (mode == 0) {
    atomicAdd(out, 1.0f);
    out[1 + b] = static_cast<float>(b + 1);
  }
  if (mode == 1) out[0] = static_cast<float>(b + 1);
  if (mode == 2) {
    if (b == 0) atomicAdd(out, 1.0f);
    if (b == 1) out[0] = 5.0f;
  }
  if (mode == 3) {
    if (b == 0) out[0] = 5.0f;
    if (b == 1) atomicAdd(out, 1.0f);
  }
  if (mode == 4) out[0] += 1.0f;
}
