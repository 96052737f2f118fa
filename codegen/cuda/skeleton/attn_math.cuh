// attn_math.cuh — what every generated CUDA source of attn needs before the program's own
// code: the function qualifiers the generated code is written with (ATTN_DEVICE for the
// generator's functions, ATTN_INLINE for helpers), infinity and NaN literals, and attn_powi.
// Host C++ compiles it too (the tests run the float32 kernels on the CPU): there the
// generated functions are extern "C" functions a test loads from a shared object.
#pragma once

#ifdef __CUDACC__
// The generator names every intermediate value; some go unused in a given kernel.
#pragma nv_diag_suppress 177
#define ATTN_DEVICE __device__ __forceinline__
#define ATTN_INLINE __device__ __forceinline__
// Constant expressions (a Variant's constexpr members can be infinite or NaN: a folded
// constant beyond float32, 0 / 0); NVRTC has no __builtin_inff or __builtin_nanf.
#define ATTN_INF_F (__builtin_bit_cast(float, 0x7f800000u))
#define ATTN_INF_D (__builtin_bit_cast(double, 0x7ff0000000000000ull))
#define ATTN_NAN_F (__builtin_bit_cast(float, 0x7fc00000u))
#define ATTN_NAN_D (__builtin_bit_cast(double, 0x7ff8000000000000ull))
#else
#include <math.h>
// On the host (the tests), the kernels are C functions a test loads from a shared object.
#define ATTN_DEVICE extern "C"
#define ATTN_INLINE static inline
#define ATTN_INF_F (__builtin_inff())
#define ATTN_INF_D (__builtin_inf())
#define ATTN_NAN_F (__builtin_nanf(""))
#define ATTN_NAN_D (__builtin_nan(""))
#endif

/// The approximate exp, log and division of tensor-core modules (fp16/bf16 operands, where
/// they are far inside the operands' rounding): on the GPU the special-function unit's
/// ex2/lg2/rcp (a few ulp; log's error is absolute, about 2^-21, near 1), on the host (the
/// tests, or a module that defines ATTN_EXACT_MATH) the exact functions.
#if defined(__CUDACC__) && !defined(ATTN_EXACT_MATH)
ATTN_INLINE float attn_fast_exp(float x) { return __expf(x); }
ATTN_INLINE float attn_fast_log(float x) { return __logf(x); }
ATTN_INLINE float attn_fast_div(float a, float b) { return __fdividef(a, b); }
#else
ATTN_INLINE float attn_fast_exp(float x) { return expf(x); }
ATTN_INLINE float attn_fast_log(float x) { return logf(x); }
ATTN_INLINE float attn_fast_div(float a, float b) { return a / b; }
#endif

/// x^n for an integer n, by repeated squaring (n is a literal: the loop unrolls).
template <typename T>
ATTN_INLINE T attn_powi(T x, int n) {
  T result = 1, base = x;
  unsigned m = n < 0 ? static_cast<unsigned>(-n) : static_cast<unsigned>(n);
  while (m) {
    if (m & 1u) result *= base;
    base *= base;
    m >>= 1;
  }
  return n < 0 ? T(1) / result : result;
}

