// tc_common.cuh: the tensor-core and memory primitives of attn's CUDA forward skeleton
// (tc_forward.cuh), for sm_80 and later (Ampere, Ada, Hopper) through mma.sync, ldmatrix and
// cp.async, templated on the element type Elem (__half or __nv_bfloat16).
//
// What it is: thin inline-PTX wrappers (one instruction each), the lane -> fragment index
// maps those instructions imply, 4-lane ("quad") shuffle reductions, float -> packed Elem
// conversion, and a few float helpers the skeleton's statistics share.
// What it isn't: a tile library. It knows nothing of attention, of shared-memory layouts or
// of the generated hooks; the kernel body is tc_forward.cuh.
//
// It is compiled by NVRTC (no host headers): only <cuda_fp16.h> and <cuda_bf16.h> are
// included, integers are `int`, `unsigned` and `long long`.
// Host emulation (tests/emu/): where ATTN_TC_HOST_EMULATION is defined (by tests/emu/cuda_emu.h,
// never for NVRTC) each inline-PTX wrapper calls the emulator instead, which gives the
// instruction its PTX semantics across the warp; the device code is the #else branches.
//
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point type",
// and "ldmatrix"). In a warp, lane = 4 * groupID + threadID_in_group; below g = groupID =
// lane >> 2 (0..7) and t = threadID_in_group = lane & 3 (0..3).
//   A (16x16, .row, 4 x .b32 each two 16-bit elements, low half = lower column):
//     reg0: row g,   cols 2t, 2t+1        reg1: row g+8, cols 2t, 2t+1
//     reg2: row g,   cols 2t+8, 2t+9      reg3: row g+8, cols 2t+8, 2t+9
//   B (16x8, .col, 2 x .b32):
//     reg0: rows (k) 2t, 2t+1, col (n) g  reg1: rows 2t+8, 2t+9, col g
//   C/D (16x8, f32, 4 floats):
//     c0, c1: row g, cols 2t, 2t+1        c2, c3: row g+8, cols 2t, 2t+1
//   ldmatrix .x4: lanes 8i..8i+7 give the row addresses (16 bytes each) of 8x8 matrix i;
//     matrix i lands in register i; without .trans lane gets (row g, cols 2t, 2t+1) of it,
//     with .trans it gets (rows 2t, 2t+1, col g), i.e. the transposed matrix's fragment.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace attn_tc {

// ------------------------------------------------------------------ lanes and fragments

/// groupID of a lane in an mma fragment: the row (mod 8) it holds of A and C.
__device__ __forceinline__ int laneGroup(int lane) { return lane >> 2; }
/// threadID_in_group of a lane: which column pair it holds of A and C.
__device__ __forceinline__ int laneInGroup(int lane) { return lane & 3; }

/// Row (0..15) within a 16x8 C fragment of accumulator element e (0..3) of lane group g.
/// PTX m16n8k16 C layout: c0, c1 in row g; c2, c3 in row g + 8.
__device__ __forceinline__ int accRow(int g, int e) { return g + ((e >> 1) << 3); }
/// Column (0..7) within a 16x8 C fragment of accumulator element e of lane t.
/// PTX m16n8k16 C layout: c0, c2 in column 2t; c1, c3 in column 2t + 1.
__device__ __forceinline__ int accCol(int t, int e) { return 2 * t + (e & 1); }

/// ldmatrix.x4 row address for a 16x16 A tile stored row-major (rows = M, 16-bit elements
/// contiguous along K): matrices 0..3 = (rows 0-7, cols 0-7), (rows 8-15, cols 0-7),
/// (rows 0-7, cols 8-15), (rows 8-15, cols 8-15), which are exactly A's reg0..reg3.
/// Returns the row (0..15) this lane addresses; ldmatrixACol() the column (0 or 8).
__device__ __forceinline__ int ldmatrixARow(int lane) { return lane & 15; }
__device__ __forceinline__ int ldmatrixACol(int lane) { return (lane >> 4) << 3; }

/// ldmatrix.x4 (no .trans) row address for the B operands of TWO n8 tiles x k16 when B is
/// stored N-major (each stored row is one n, 16-bit elements contiguous along k), e.g. K in
/// S = Q K^T: matrices 0..3 = (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7),
/// (n 8-15, k 8-15). Lane gets (row g, cols 2t, 2t+1) = B (k 2t.., n g): registers 0, 1 are
/// B reg0, reg1 of n tile 0, registers 2, 3 those of n tile 1.
__device__ __forceinline__ int ldmatrixBRow(int lane) { return (lane & 7) + ((lane >> 4) << 3); }
__device__ __forceinline__ int ldmatrixBCol(int lane) { return ((lane >> 3) & 1) << 3; }

/// ldmatrix.x4.trans row address for the B operands of TWO n8 tiles x k16 when B is stored
/// K-major (each stored row is one k, 16-bit elements contiguous along n), e.g. V in O = P V:
/// matrices 0..3 = (k 0-7, n 0-7), (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15).
/// With .trans lane gets (rows 2t, 2t+1, col g) = B (k 2t.., n g): registers 0, 1 are B
/// reg0, reg1 of n tile 0, registers 2, 3 those of n tile 1.
__device__ __forceinline__ int ldmatrixBTransRow(int lane) { return (lane & 7) + (((lane >> 3) & 1) << 3); }
__device__ __forceinline__ int ldmatrixBTransCol(int lane) { return (lane >> 4) << 3; }

// ------------------------------------------------------------------ shared memory, cp.async

/// The 32-bit .shared address of a generic pointer into shared memory.
__device__ __forceinline__ unsigned sharedAddress(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// cp.async of 16 bytes global -> shared, bypassing L1 (.cg). When !valid nothing is read
/// (src-size 0) and the 16 destination bytes are zero-filled; `src` must still be a valid
/// global address then (pass the tensor's base).
__device__ __forceinline__ void cpAsync16(unsigned dst, const void* src, bool valid) {
  const int srcBytes = valid ? 16 : 0;
#ifdef ATTN_TC_HOST_EMULATION
  attn_emu_cp_async(dst, src, 16, srcBytes);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(srcBytes) : "memory");
#endif
}

/// Closes the current cp.async group (an empty group is fine and keeps counts uniform).
#ifdef ATTN_TC_HOST_EMULATION
__device__ __forceinline__ void cpAsyncCommit() { attn_emu_cp_async_commit(); }
#else
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
#endif

/// Waits until at most N of this thread's cp.async groups are still in flight. Other
/// threads' copies become visible only after a barrier (__syncthreads) as well.
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
#ifdef ATTN_TC_HOST_EMULATION
  attn_emu_cp_async_wait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ------------------------------------------------------------------ ldmatrix

/// ldmatrix.x4: four 8x8 16-bit matrices, row addresses from lanes 8i..8i+7 for matrix i;
/// r[i] = (row g, cols 2t, 2t+1) of matrix i. `addr` is this lane's row address (.shared,
/// 16-byte aligned).
__device__ __forceinline__ void ldmatrixX4(unsigned (&r)[4], unsigned addr) {
#ifdef ATTN_TC_HOST_EMULATION
  attn_emu_ldmatrix(r, addr, 4, false);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

/// ldmatrix.x4.trans: as ldmatrixX4 but r[i] = (rows 2t, 2t+1, col g) of matrix i.
__device__ __forceinline__ void ldmatrixX4Trans(unsigned (&r)[4], unsigned addr) {
#ifdef ATTN_TC_HOST_EMULATION
  attn_emu_ldmatrix(r, addr, 4, true);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// ------------------------------------------------------------------ element types

/// Per-element-type operations: packing two floats into one .b32 of two Elem (round to
/// nearest even; `lo` in the low 16 bits, i.e. the lower column / k index of a fragment
/// pair) and D += A B with mma.sync.m16n8k16, f32 accumulate.
template <class Elem>
struct ElemOps;

template <>
struct ElemOps<__half> {
  static __device__ __forceinline__ unsigned pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);  // .x = lo (low half), .y = hi
    return *reinterpret_cast<unsigned*>(&h);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#ifdef ATTN_TC_HOST_EMULATION
    attn_emu_mma16816(d, a, b0, b1, false);
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};

template <>
struct ElemOps<__nv_bfloat16> {
  static __device__ __forceinline__ unsigned pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x = lo (low half), .y = hi
    return *reinterpret_cast<unsigned*>(&h);
  }
  static __device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#ifdef ATTN_TC_HOST_EMULATION
    attn_emu_mma16816(d, a, b0, b1, true);
#else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
  }
};

/// Two floats -> one .b32 of two Elem, `lo` in the low half.
template <class Elem>
__device__ __forceinline__ unsigned packPair(float lo, float hi) {
  return ElemOps<Elem>::pack(lo, hi);
}

/// d (16x8 f32, C layout) += a (16x16 Elem, A layout) * b (16x8 Elem, B layout {b0, b1}).
template <class Elem>
__device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  ElemOps<Elem>::mma(d, a, b0, b1);
}

// ------------------------------------------------------------------ quad reductions
// The 4 lanes of a group (same g, t = 0..3) hold the same C rows: xor-shuffles by 1 and 2
// stay inside the group.

/// max and min that give NaN when either operand is NaN (fmaxf and fminf drop it): a row
/// that sees a NaN has a NaN maximum, as the IR defines rowmax (IR.h).
__device__ __forceinline__ float maxNaN(float a, float b) { return a != a || b != b ? a + b : fmaxf(a, b); }
__device__ __forceinline__ float minNaN(float a, float b) { return a != a || b != b ? a + b : fminf(a, b); }

/// Maximum over the 4 lanes of this lane's group (NaN if any lane holds one).
__device__ __forceinline__ float quadMax(float x) {
  x = maxNaN(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return maxNaN(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

/// Minimum over the 4 lanes of this lane's group (NaN if any lane holds one).
__device__ __forceinline__ float quadMin(float x) {
  x = minNaN(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return minNaN(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

/// The maximum (kMax) or minimum over the 4 lanes of this lane's group, and where it was
/// found: (x, j) with j = 1 + key index, 0 for a lane that saw no key. A lane's pair is taken
/// when it saw a key and has the larger (smaller) x, a NaN over a number, or the same x (both
/// NaN included) at a smaller key: every lane ends with the first key attaining the extreme,
/// as a sequential scan finds it.
template <bool kMax>
__device__ __forceinline__ void quadArgExtreme(float& x, float& j) {
#pragma unroll
  for (int mask = 1; mask <= 2; mask <<= 1) {
    const float ox = __shfl_xor_sync(0xffffffffu, x, mask);
    const float oj = __shfl_xor_sync(0xffffffffu, j, mask);
    const bool oNaN = ox != ox, xNaN = x != x;
    const bool beats = oNaN != xNaN ? oNaN : (kMax ? ox > x : ox < x) || ((ox == x || oNaN) && oj < j);
    const bool take = oj != 0.0f && (j == 0.0f || beats);
    x = take ? ox : x;
    j = take ? oj : j;
  }
}

/// Sum over the 4 lanes of this lane's group.
__device__ __forceinline__ float quadSum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// ------------------------------------------------------------------ float helpers

/// +infinity (NVRTC has no <math.h>, so no INFINITY macro; this folds to a constant).
__device__ __forceinline__ float posInf() { return __int_as_float(0x7f800000); }

/// x^p for a p known at compile time after inlining: an integer 0 <= p <= 127 by repeated
/// squaring (the unrolled loop folds to the few multiplications p needs: 6 for 15), anything
/// else by powf (which is NaN for x < 0 and non-integer p).
__device__ __forceinline__ float powConst(float x, float p) {
  if (p >= 0.0f && p < 128.0f && p == floorf(p)) {
    const int n = static_cast<int>(p);
    float result = 1.0f, base = x;
#pragma unroll
    for (int bit = 0; bit < 7; ++bit) {
      if (n & (1 << bit)) result *= base;
      if ((n >> (bit + 1)) == 0) break;
      base *= base;
    }
    return result;
  }
  return powf(x, p);
}

/// exp and division for the online statistics: the special-function unit's ex2 and rcp (a few
/// ulp, far inside the fp16/bf16 operands' rounding; exp of -inf is 0), or libm's where the
/// module defines ATTN_EXACT_MATH.
#ifdef ATTN_EXACT_MATH
__device__ __forceinline__ float fastExp(float x) { return expf(x); }
__device__ __forceinline__ float fastDiv(float a, float b) { return a / b; }
#else
__device__ __forceinline__ float fastExp(float x) { return __expf(x); }
__device__ __forceinline__ float fastDiv(float a, float b) { return __fdividef(a, b); }
#endif

/// Online exp-sum: when `add`, the term x joins (sum = sum_j exp(x_j - m), running max m):
/// if x > m the sum is rescaled by exp(m - x) and m = x. An x of -inf adds nothing; an m of
/// -inf means "nothing yet". Branch-free (one expf), so unrolled element loops stay straight.
__device__ __forceinline__ void onlineExpAdd(float& sum, float& m, float x, bool add) {
  const bool live = add && x != -posInf();
  const bool grows = live && x > m;
  // grows: exp(m - x) rescales the old sum (0 when m is -inf); else exp(x - m) is the term.
  const float e = fastExp(grows ? m - x : (live ? x - m : -posInf()));
  sum = grows ? sum * e + 1.0f : sum + e;
  m = grows ? x : m;
}

/// Online power-sum: when `add`, the term x joins (sum = sum_j |(x_j / m)^p|, m = running
/// max |x_j|, 0 meaning "nothing yet"): if |x| > m the sum is first rescaled by
/// (m_old / |x|)^p (0 when m_old is 0); terms are 0 while m is 0.
__device__ __forceinline__ void onlinePowerAdd(float& sum, float& m, float x, float p, bool add) {
  const float a = fabsf(x);
  const bool grows = add && a > m;
  if (grows) sum = m > 0.0f ? sum * powConst(fastDiv(m, a), p) : 0.0f;  // rare after the first keys
  m = grows ? a : m;
  const float term = fabsf(powConst(fastDiv(x, m), p));
  sum += add ? (m > 0.0f ? term : (a != a ? a : 0.0f)) : 0.0f;  // a NaN x makes the sum NaN
}

/// The exp-sum `sum` with max `m` rescaled to the larger max `mNew` (0 when m is -inf). A
/// NaN sum (the lane saw a NaN, perhaps only NaNs, so m may still be -inf) stays NaN.
__device__ __forceinline__ float rescaleExpSum(float sum, float m, float mNew) {
  return sum != sum ? sum : m == -posInf() ? 0.0f : sum * fastExp(m - mNew);
}

/// The power-sum `sum` with max `m` rescaled to the larger max `mNew` (0 when m is 0; a NaN
/// sum stays NaN, as above).
__device__ __forceinline__ float rescalePowerSum(float sum, float m, float mNew, float p) {
  return sum != sum ? sum : m > 0.0f ? sum * powConst(m / mNew, p) : 0.0f;
}

/// Merges online exp-sums (sum, m) over the 4 lanes of the group; every lane gets the result.
__device__ __forceinline__ void quadMergeExp(float& sum, float& m) {
#pragma unroll
  for (int offset = 1; offset <= 2; offset <<= 1) {
    const float sumOther = __shfl_xor_sync(0xffffffffu, sum, offset);
    const float mOther = __shfl_xor_sync(0xffffffffu, m, offset);
    const float mNew = fmaxf(m, mOther);
    sum = rescaleExpSum(sum, m, mNew) + rescaleExpSum(sumOther, mOther, mNew);
    m = mNew;
  }
}

/// Merges online power-sums (sum, m) over the 4 lanes of the group.
__device__ __forceinline__ void quadMergePower(float& sum, float& m, float p) {
#pragma unroll
  for (int offset = 1; offset <= 2; offset <<= 1) {
    const float sumOther = __shfl_xor_sync(0xffffffffu, sum, offset);
    const float mOther = __shfl_xor_sync(0xffffffffu, m, offset);
    const float mNew = fmaxf(m, mOther);
    sum = rescalePowerSum(sum, m, mNew, p) + rescalePowerSum(sumOther, mOther, mNew, p);
    m = mNew;
  }
}

}  // namespace attn_tc
