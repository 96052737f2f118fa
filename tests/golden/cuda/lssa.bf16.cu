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
  float v16[1];
  const auto t0 = static_cast<long long>(0) * 2;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 2;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 2;
  const auto t9 = static_cast<long long>(t8) + 1;
  const auto t10 = adj + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<float>(64);
  const auto t13 = logf(t12);
  const auto t14 = logf(n);
  const auto t15 = t13 * t14;
  *v16 = 0.0f;
  const auto t17 = g - t11;
  const auto t18 = s * 1.0f;
  const auto t19 = t18 * rq;
  const auto t20 = t19 * rk;
  const auto t21 = t15 * t20;
  const auto t22 = t21 > 0.0f;
  const auto t23 = static_cast<float>(t22 ? t21 : 0.0f);
  const auto t24 = fabsf(t21);
  const auto t25 = -t24;
  const auto t26 = attn_fast_exp(t25);
  const auto t27 = 1.0f + t26;
  const auto t28 = t26 * 0.33333334f;
  const auto t29 = (-0.5f) + t28;
  const auto t30 = t26 * t29;
  const auto t31 = 1.0f + t30;
  const auto t32 = t26 * t31;
  const auto t33 = attn_fast_log(t27);
  const auto t34 = t26 < 0.015625f;
  const auto t35 = static_cast<float>(t34 ? t32 : t33);
  const auto t36 = t23 + t35;
  const auto t37 = attn_fast_div(t36, t3);
  const auto t38 = t3 == 0.0f;
  const auto t39 = static_cast<float>(t38 ? 0.0f : t37);
  const auto t40 = t39 * t17;
  const auto t41 = *v16;
  const auto t42 = t41 + t40;
  *v16 = t42;
  const auto t43 = x + 0;
  const auto t44 = *v16;
  *t43 = t44;
  const auto t45 = x + 2;
  *t45 = 1.0f;
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
  const auto t8 = static_cast<long long>(0) * 2;
  const auto t9 = static_cast<long long>(t8) + 0;
  const auto t10 = adj + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<long long>(0) * 2;
  const auto t13 = static_cast<long long>(t12) + 1;
  const auto t14 = adj + t13;
  const auto t15 = *t14;
  const auto t16 = static_cast<float>(64);
  const auto t17 = logf(t16);
  const auto t18 = logf(n);
  const auto t19 = t17 * t18;
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
  const auto t8 = static_cast<long long>(0) * 2;
  const auto t9 = static_cast<long long>(t8) + 0;
  const auto t10 = adj + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<long long>(0) * 2;
  const auto t13 = static_cast<long long>(t12) + 1;
  const auto t14 = adj + t13;
  const auto t15 = *t14;
  const auto t16 = static_cast<float>(64);
  const auto t17 = logf(t16);
  const auto t18 = logf(n);
  const auto t19 = t17 * t18;
  const auto t20 = s * 1.0f;
  const auto t21 = t20 * rq;
  const auto t22 = t21 * rk;
  const auto t23 = t19 * t22;
  const auto t24 = t23 > 0.0f;
  const auto t25 = static_cast<float>(t24 ? t23 : 0.0f);
  const auto t26 = fabsf(t23);
  const auto t27 = -t26;
  const auto t28 = attn_fast_exp(t27);
  const auto t29 = 1.0f + t28;
  const auto t30 = t28 * 0.33333334f;
  const auto t31 = (-0.5f) + t30;
  const auto t32 = t28 * t31;
  const auto t33 = 1.0f + t32;
  const auto t34 = t28 * t33;
  const auto t35 = attn_fast_log(t29);
  const auto t36 = t28 < 0.015625f;
  const auto t37 = static_cast<float>(t36 ? t34 : t35);
  const auto t38 = t25 + t37;
  const auto t39 = t38 < 0.0f;
  const auto t40 = static_cast<float>(t39 ? 1 : 0);
  const auto t41 = t38 > 0.0f;
  const auto t42 = static_cast<float>(t41 ? 1 : 0);
  const auto t43 = t42 - t40;
  const auto t44 = t43 * t11;
  const auto t45 = t43 * t15;
  const auto t46 = g - t45;
  const auto t47 = t46 - t44;
  const auto t48 = attn_fast_div(t47, t3);
  const auto t49 = t3 == 0.0f;
  const auto t50 = static_cast<float>(t49 ? 0.0f : t48);
  const auto t51 = fabsf(t23);
  const auto t52 = -t51;
  const auto t53 = attn_fast_exp(t52);
  const auto t54 = 1.0f + t53;
  const auto t55 = attn_fast_div(t53, t54);
  const auto t56 = attn_fast_div(1.0f, t54);
  const auto t57 = t23 >= 0.0f;
  const auto t58 = static_cast<float>(t57 ? t56 : t55);
  const auto t59 = t50 * t58;
  const auto t60 = t59 * t19;
  const auto t61 = rq * rk;
  const auto t62 = 1.0f * t61;
  const auto t63 = t60 * t62;
  const auto t64 = 0.0f + t63;
  const auto t65 = 1.0f * rk;
  const auto t66 = s * t65;
  const auto t67 = t60 * t66;
  const auto t68 = 0.0f + t67;
  const auto t69 = 1.0f * rq;
  const auto t70 = s * t69;
  const auto t71 = t60 * t70;
  const auto t72 = 0.0f + t71;
  const auto t73 = x + 0;
  *t73 = t64;
  const auto t74 = attn_fast_div(t38, t3);
  const auto t75 = t3 == 0.0f;
  const auto t76 = static_cast<float>(t75 ? 0.0f : t74);
  const auto t77 = x + 1;
  *t77 = t76;
  const auto t78 = x + 2;
  *t78 = t68;
  const auto t79 = x + 3;
  *t79 = t72;
  const auto t80 = x + 4;
  *t80 = 1.0f;
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
  static constexpr int kAdjoints = 2;
  static constexpr int kRowPasses = 1;
  static __host__ __device__ constexpr int level(int s) { return s == 0 ? 1 : s == 1 ? 0 : 0; }
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
static_assert(attn_tc::backwardGradientSharedBytes<Config, Variant>() == 59904, "the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh");

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
