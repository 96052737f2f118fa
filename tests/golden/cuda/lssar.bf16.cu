// attn CUDA kernels for 'lssar': tensor-core forward, bf16 inputs, d = 64, dv = 64, tile m64n64w4s2, 40960 bytes of shared memory
// (backward: the float32 kernels of the same program)
#include "tc_forward.cuh"
#include "attn_math.cuh"

struct Config {
  static constexpr int kBlockM = 64, kBlockN = 64, kWarps = 4, kStages = 2;
  using Elem = __nv_bfloat16;
  static constexpr int kD = 64, kDv = 64;
};
static_assert(attn_tc::forwardSharedBytes<Config>() == 40960, "the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_forward.cuh");

ATTN_DEVICE void attn_hook_1(float* stats, long long i, float n, long long lk, float rq, float s, long long j, float rk, float* x) {
  const auto t0 = static_cast<float>(64);
  const auto t1 = logf(t0);
  const auto t2 = logf(n);
  const auto t3 = t1 * t2;
  const auto t4 = static_cast<float>(i);
  const auto t5 = t4 < 3.0f;
  const auto t6 = static_cast<float>(t5 ? 1 : 0);
  const auto t7 = t6 != 0;
  const auto t8 = static_cast<float>(t7 ? 0.0f : 1.0f);
  const auto t9 = s * 1.0f;
  const auto t10 = t9 * rq;
  const auto t11 = t10 * rk;
  const auto t12 = t3 * t11;
  const auto t13 = t12 > 0.0f;
  const auto t14 = static_cast<float>(t13 ? t12 : 0.0f);
  const auto t15 = fabsf(t12);
  const auto t16 = -t15;
  const auto t17 = expf(t16);
  const auto t18 = 1.0f + t17;
  const auto t19 = t18 - 1.0f;
  const auto t20 = logf(t18);
  const auto t21 = t20 * t17;
  const auto t22 = t21 / t19;
  const auto t23 = t18 == 1.0f;
  const auto t24 = static_cast<float>(t23 ? t17 : t22);
  const auto t25 = t14 + t24;
  const auto t26 = fabsf(t25);
  const auto t27 = x + 0;
  *t27 = t26;
  const auto t28 = x + 3;
  *t28 = 1.0f;
}

ATTN_DEVICE void attn_hook_2(float* stats, long long i, float n, long long lk, float rq, float s, long long j, float rk, float* x) {
  const auto t0 = static_cast<long long>(0) * 4;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 4;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<float>(64);
  const auto t9 = logf(t8);
  const auto t10 = logf(n);
  const auto t11 = t9 * t10;
  const auto t12 = static_cast<float>(i);
  const auto t13 = t12 < 3.0f;
  const auto t14 = static_cast<float>(t13 ? 1 : 0);
  const auto t15 = t14 != 0;
  const auto t16 = static_cast<float>(t15 ? 0.0f : 1.0f);
  const auto t17 = s * 1.0f;
  const auto t18 = t17 * rq;
  const auto t19 = t18 * rk;
  const auto t20 = t11 * t19;
  const auto t21 = t20 > 0.0f;
  const auto t22 = static_cast<float>(t21 ? t20 : 0.0f);
  const auto t23 = fabsf(t20);
  const auto t24 = -t23;
  const auto t25 = expf(t24);
  const auto t26 = 1.0f + t25;
  const auto t27 = t26 - 1.0f;
  const auto t28 = logf(t26);
  const auto t29 = t28 * t25;
  const auto t30 = t29 / t27;
  const auto t31 = t26 == 1.0f;
  const auto t32 = static_cast<float>(t31 ? t25 : t30);
  const auto t33 = t22 + t32;
  const auto t34 = t33 / t3;
  const auto t35 = t3 == 0.0f;
  const auto t36 = static_cast<float>(t35 ? 0.0f : t34);
  const auto t37 = n * t36;
  const auto t38 = t37 - t16;
  const auto t39 = t38 > 0.0f;
  const auto t40 = static_cast<float>(t39 ? t38 : 0.0f);
  const auto t41 = x + 2;
  *t41 = t40;
  const auto t42 = x + 3;
  *t42 = 1.0f;
}

struct Variant {
  static constexpr int kPasses = 2;
  static constexpr int kStats = 2;
  static __host__ __device__ constexpr attn_tc::Stat kind(int s) { return s == 0 ? attn_tc::Stat::Sum : s == 1 ? attn_tc::Stat::Normaliser : attn_tc::Stat::Sum; }
  static __host__ __device__ constexpr int pass(int s) { return s == 0 ? 1 : s == 1 ? 2 : 0; }
  static __host__ __device__ constexpr float power(int s) { return s == 0 ? 0.0f : s == 1 ? 0.0f : 0.0f; }
  static constexpr attn_tc::OutForm kOutForm = attn_tc::OutForm::OnlinePower;
  static constexpr int kOutStat = 1;
  static constexpr float kOutScale = 1.0f;
  static constexpr float kOutPower = 15.0f;
  static constexpr attn_tc::Mask kMask = attn_tc::Mask::Causal;
  static constexpr long long kWindowLow = 0;
  static constexpr bool kQueryNorm = true;
  static constexpr bool kKeyNorm = true;
  template <int P>
  static __device__ __forceinline__ bool operands(const attn_tc::Row& row, float s, long long j, float rk, float* x) {
    float y[kStats + 2] = {};
    if constexpr (P == 1) attn_hook_1(const_cast<float*>(row.stats), row.i, row.n, row.lk, row.rq, s, j, rk, y);
    else if constexpr (P == 2) attn_hook_2(const_cast<float*>(row.stats), row.i, row.n, row.lk, row.rq, s, j, rk, y);
#pragma unroll
    for (int k = 0; k <= kStats; ++k) x[k] = y[k];
    return y[kStats + 1] != 0.0f;
  }
};

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_forward_tc(attn_tc::FwdParams p) {
  attn_tc::forward<Variant, Config>(p);
}

// 1/|x_r| (0 for a zero row), for l2norm: rows = heads * L.
extern "C" __global__ void attn_inverse_norms(const Config::Elem* x, float* out, long long rows, long long d) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float s = 0.f;
  for (long long c = 0; c < d; ++c) {
    const float e = static_cast<float>(x[r * d + c]);
    s += e * e;
  }
  out[r] = s == 0.f ? 0.f : 1.f / sqrtf(s);
}
