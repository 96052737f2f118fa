// attn CUDA kernels for 'lssa': tensor cores, bf16 inputs, d = 64, dv = 64, tile m64n64w4s2
#include "tc_backward.cuh"
#include "tc_support.cuh"
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
  const auto t4 = s * 1.0f;
  const auto t5 = t4 * rq;
  const auto t6 = t5 * rk;
  const auto t7 = t3 * t6;
  const auto t8 = t7 > 0.0f;
  const auto t9 = static_cast<float>(t8 ? t7 : 0.0f);
  const auto t10 = fabsf(t7);
  const auto t11 = -t10;
  const auto t12 = attn_fast_exp(t11);
  const auto t13 = 1.0f + t12;
  const auto t14 = t12 * 0.33333334f;
  const auto t15 = (-0.5f) + t14;
  const auto t16 = t12 * t15;
  const auto t17 = 1.0f + t16;
  const auto t18 = t12 * t17;
  const auto t19 = attn_fast_log(t13);
  const auto t20 = t12 < 0.015625f;
  const auto t21 = static_cast<float>(t20 ? t18 : t19);
  const auto t22 = t9 + t21;
  const auto t23 = x + 1;
  *t23 = t22;
  const auto t24 = x + 2;
  *t24 = 1.0f;
}

ATTN_DEVICE void attn_bwd_rows_1(float* stats, float* adj, long long i, float n, long long lk, float rq, float s, float g, long long j, float rk, float* x) {
  float v12[1];
  const auto t0 = static_cast<long long>(0) * 2;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 2;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<float>(64);
  const auto t9 = logf(t8);
  const auto t10 = logf(n);
  const auto t11 = t9 * t10;
  *v12 = 0.0f;
  const auto t13 = s * 1.0f;
  const auto t14 = t13 * rq;
  const auto t15 = t14 * rk;
  const auto t16 = t11 * t15;
  const auto t17 = t16 > 0.0f;
  const auto t18 = static_cast<float>(t17 ? t16 : 0.0f);
  const auto t19 = fabsf(t16);
  const auto t20 = -t19;
  const auto t21 = attn_fast_exp(t20);
  const auto t22 = 1.0f + t21;
  const auto t23 = t21 * 0.33333334f;
  const auto t24 = (-0.5f) + t23;
  const auto t25 = t21 * t24;
  const auto t26 = 1.0f + t25;
  const auto t27 = t21 * t26;
  const auto t28 = attn_fast_log(t22);
  const auto t29 = t21 < 0.015625f;
  const auto t30 = static_cast<float>(t29 ? t27 : t28);
  const auto t31 = t18 + t30;
  const auto t32 = attn_fast_div(t31, t3);
  const auto t33 = t3 == 0.0f;
  const auto t34 = static_cast<float>(t33 ? 0.0f : t32);
  const auto t35 = g * t34;
  const auto t36 = *v12;
  const auto t37 = t36 + t35;
  *v12 = t37;
  const auto t38 = x + 0;
  const auto t39 = *v12;
  *t38 = t39;
  const auto t40 = x + 1;
  *t40 = 1.0f;
}

ATTN_DEVICE void attn_bwd_rowfinish_1(float* stats, float* adj, long long i, float n, long long lk, float rq) {
  const auto t0 = static_cast<long long>(0) * 2;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 2;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 1;
  const auto t9 = static_cast<long long>(t8) + 0;
  const auto t10 = adj + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<float>(64);
  const auto t13 = logf(t12);
  const auto t14 = logf(n);
  const auto t15 = t13 * t14;
}

ATTN_DEVICE void attn_bwd_grad(float* stats, float* adj, long long i, float n, long long lk, float rq, float s, float g, long long j, float rk, float* x) {
  const auto t0 = static_cast<long long>(0) * 2;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 2;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 1;
  const auto t9 = static_cast<long long>(t8) + 0;
  const auto t10 = adj + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<float>(64);
  const auto t13 = logf(t12);
  const auto t14 = logf(n);
  const auto t15 = t13 * t14;
  const auto t16 = s * 1.0f;
  const auto t17 = t16 * rq;
  const auto t18 = t17 * rk;
  const auto t19 = t15 * t18;
  const auto t20 = t19 > 0.0f;
  const auto t21 = static_cast<float>(t20 ? t19 : 0.0f);
  const auto t22 = fabsf(t19);
  const auto t23 = -t22;
  const auto t24 = attn_fast_exp(t23);
  const auto t25 = 1.0f + t24;
  const auto t26 = t24 * 0.33333334f;
  const auto t27 = (-0.5f) + t26;
  const auto t28 = t24 * t27;
  const auto t29 = 1.0f + t28;
  const auto t30 = t24 * t29;
  const auto t31 = attn_fast_log(t25);
  const auto t32 = t24 < 0.015625f;
  const auto t33 = static_cast<float>(t32 ? t30 : t31);
  const auto t34 = t21 + t33;
  const auto t35 = t34 < 0.0f;
  const auto t36 = static_cast<float>(t35 ? 1 : 0);
  const auto t37 = t34 > 0.0f;
  const auto t38 = static_cast<float>(t37 ? 1 : 0);
  const auto t39 = t38 - t36;
  const auto t40 = t39 * t11;
  const auto t41 = g - t40;
  const auto t42 = attn_fast_div(t41, t3);
  const auto t43 = t3 == 0.0f;
  const auto t44 = static_cast<float>(t43 ? 0.0f : t42);
  const auto t45 = fabsf(t19);
  const auto t46 = -t45;
  const auto t47 = attn_fast_exp(t46);
  const auto t48 = 1.0f + t47;
  const auto t49 = attn_fast_div(t47, t48);
  const auto t50 = attn_fast_div(1.0f, t48);
  const auto t51 = t19 >= 0.0f;
  const auto t52 = static_cast<float>(t51 ? t50 : t49);
  const auto t53 = t44 * t52;
  const auto t54 = t53 * t15;
  const auto t55 = rq * rk;
  const auto t56 = 1.0f * t55;
  const auto t57 = t54 * t56;
  const auto t58 = 0.0f + t57;
  const auto t59 = 1.0f * rk;
  const auto t60 = s * t59;
  const auto t61 = t54 * t60;
  const auto t62 = 0.0f + t61;
  const auto t63 = 1.0f * rq;
  const auto t64 = s * t63;
  const auto t65 = t54 * t64;
  const auto t66 = 0.0f + t65;
  const auto t67 = x + 0;
  *t67 = t58;
  const auto t68 = attn_fast_div(t34, t3);
  const auto t69 = t3 == 0.0f;
  const auto t70 = static_cast<float>(t69 ? 0.0f : t68);
  const auto t71 = x + 1;
  *t71 = t70;
  const auto t72 = x + 2;
  *t72 = t62;
  const auto t73 = x + 3;
  *t73 = t66;
  const auto t74 = x + 4;
  *t74 = 1.0f;
}

struct Variant {
  // forward: the plan's passes, row statistics and output
  static constexpr int kPasses = 1;
  static constexpr int kStats = 1;
  static __host__ __device__ constexpr attn_tc::Stat kind(int s) { return s == 0 ? attn_tc::Stat::Normaliser : attn_tc::Stat::Sum; }
  static __host__ __device__ constexpr int pass(int s) { return s == 0 ? 1 : 0; }
  static __host__ __device__ constexpr float power(int s) { return s == 0 ? 0.0f : 0.0f; }
  static constexpr attn_tc::OutForm kOutForm = attn_tc::OutForm::DeferredDivision;
  static constexpr int kOutStat = 0;
  static constexpr float kOutScale = 1.0f;
  static constexpr float kOutPower = 0.0f;
  static constexpr attn_tc::Mask kMask = attn_tc::Mask::Causal;
  static constexpr long long kWindowLow = 0;
  static constexpr bool kQueryNorm = true;
  static constexpr bool kKeyNorm = true;
  template <int P>
  static __device__ __forceinline__ bool operands(const attn_tc::Row& row, float s, long long j, float rk, float* x) {
    float y[kStats + 2] = {};
    if constexpr (P == 1) attn_hook_1(const_cast<float*>(row.stats), row.i, row.n, row.lk, row.rq, s, j, rk, y);
#pragma unroll
    for (int k = 0; k <= kStats; ++k) x[k] = y[k];
    return y[kStats + 1] != 0.0f;
  }
  // backward: the row adjoints, the row passes that sum them, the gradient terms
  static constexpr int kAdjoints = 1;
  static constexpr int kRowPasses = 1;
  static __host__ __device__ constexpr int level(int s) { return s == 0 ? 1 : 0; }
  template <int P>
  static __device__ __forceinline__ bool rowTerms(const attn_tc::BwdRow& row, float s, float g, long long j, float rk, float* x) {
    float y[kAdjoints + 1] = {};
    if constexpr (P == 1) attn_bwd_rows_1(const_cast<float*>(row.stats), const_cast<float*>(row.adj), row.i, row.n, row.lk, row.rq, s, g, j, rk, y);
#pragma unroll
    for (int k = 0; k < kAdjoints; ++k) x[k] = y[k];
    return y[kAdjoints] != 0.0f;
  }
  static constexpr bool kRowFinish = true;
  template <int P>
  static __device__ __forceinline__ void rowFinish(const attn_tc::BwdRow& row, float* adj) {
    if constexpr (P == 1) attn_bwd_rowfinish_1(const_cast<float*>(row.stats), adj, row.i, row.n, row.lk, row.rq);
  }
  static __device__ __forceinline__ bool gradTerms(const attn_tc::BwdRow& row, float s, float g, long long j, float rk, float* x) {
    float y[5] = {};
    attn_bwd_grad(const_cast<float*>(row.stats), const_cast<float*>(row.adj), row.i, row.n, row.lk, row.rq, s, g, j, rk, y);
#pragma unroll
    for (int k = 0; k < 4; ++k) x[k] = y[k];
    return y[4] != 0.0f;
  }
};

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_forward_tc(attn_tc::FwdParams p) {
  attn_tc::forward<Variant, Config>(p);
}

static_assert(attn_tc::backwardRowsSharedBytes<Config>() == 49152, "the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh");
static_assert(attn_tc::backwardGradientSharedBytes<Config, Variant>() == 59392, "the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh");

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_rows_tc_1(attn_tc::BwdParams p) {
  attn_tc::backwardRows<Variant, Config, 1>(p);
}

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_grad_tc(attn_tc::BwdParams p) {
  attn_tc::backwardGradient<Variant, Config>(p);
}

// Support kernels (tc_support.cuh), one thread per row (rows = heads * L).
extern "C" __global__ void attn_inverse_norms_tc(const Config::Elem* x, float* out, long long rows, long long d) {
  attn_tc::inverseNorms(x, out, rows, d);
}
extern "C" __global__ void attn_identity_adjoint_tc(const Config::Elem* dout, const Config::Elem* o, float* adj,
                                                    long long rows, long long dv, long long slots, long long slot) {
  attn_tc::identityAdjoint(dout, o, adj, rows, dv, slots, slot);
}
extern "C" __global__ void attn_finish_norm_tc(const float* rinv, const float* bar, const Config::Elem* x, float* dx,
                                               long long rows, long long d) {
  attn_tc::finishNorm(rinv, bar, x, dx, rows, d);
}
