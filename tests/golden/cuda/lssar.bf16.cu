// attn CUDA kernels for 'lssar': tensor cores, bf16 inputs, d = 64, dv = 64, tile m64n64w4s2
#include "tc_backward.cuh"
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
  const auto t17 = attn_fast_exp(t16);
  const auto t18 = 1.0f + t17;
  const auto t19 = t17 * 0.33333334f;
  const auto t20 = (-0.5f) + t19;
  const auto t21 = t17 * t20;
  const auto t22 = 1.0f + t21;
  const auto t23 = t17 * t22;
  const auto t24 = attn_fast_log(t18);
  const auto t25 = t17 < 0.015625f;
  const auto t26 = static_cast<float>(t25 ? t23 : t24);
  const auto t27 = t14 + t26;
  const auto t28 = fabsf(t27);
  const auto t29 = x + 0;
  *t29 = t28;
  const auto t30 = x + 3;
  *t30 = 1.0f;
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
  const auto t25 = attn_fast_exp(t24);
  const auto t26 = 1.0f + t25;
  const auto t27 = t25 * 0.33333334f;
  const auto t28 = (-0.5f) + t27;
  const auto t29 = t25 * t28;
  const auto t30 = 1.0f + t29;
  const auto t31 = t25 * t30;
  const auto t32 = attn_fast_log(t26);
  const auto t33 = t25 < 0.015625f;
  const auto t34 = static_cast<float>(t33 ? t31 : t32);
  const auto t35 = t22 + t34;
  const auto t36 = attn_fast_div(t35, t3);
  const auto t37 = t3 == 0.0f;
  const auto t38 = static_cast<float>(t37 ? 0.0f : t36);
  const auto t39 = n * t38;
  const auto t40 = t39 - t16;
  const auto t41 = t40 <= 0.0f;
  const auto t42 = static_cast<float>(t41 ? 0.0f : t40);
  const auto t43 = x + 2;
  *t43 = t42;
  const auto t44 = x + 3;
  *t44 = 1.0f;
}

ATTN_DEVICE void attn_bwd_rows_1(float* stats, float* adj, long long i, float n, long long lk, float rq, float s, float g, long long j, float rk, float* x) {
  float v29[1];
  const auto t0 = static_cast<long long>(0) * 4;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 4;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 4;
  const auto t9 = static_cast<long long>(t8) + 2;
  const auto t10 = stats + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<long long>(0) * 4;
  const auto t13 = static_cast<long long>(t12) + 3;
  const auto t14 = stats + t13;
  const auto t15 = *t14;
  const auto t16 = static_cast<long long>(0) * 2;
  const auto t17 = static_cast<long long>(t16) + 1;
  const auto t18 = adj + t17;
  const auto t19 = *t18;
  const auto t20 = static_cast<float>(64);
  const auto t21 = logf(t20);
  const auto t22 = logf(n);
  const auto t23 = t21 * t22;
  const auto t24 = static_cast<float>(i);
  const auto t25 = t24 < 3.0f;
  const auto t26 = static_cast<float>(t25 ? 1 : 0);
  const auto t27 = t26 != 0;
  const auto t28 = static_cast<float>(t27 ? 0.0f : 1.0f);
  *v29 = 0.0f;
  const auto t30 = s * 1.0f;
  const auto t31 = t30 * rq;
  const auto t32 = t31 * rk;
  const auto t33 = t23 * t32;
  const auto t34 = t33 > 0.0f;
  const auto t35 = static_cast<float>(t34 ? t33 : 0.0f);
  const auto t36 = fabsf(t33);
  const auto t37 = -t36;
  const auto t38 = attn_fast_exp(t37);
  const auto t39 = 1.0f + t38;
  const auto t40 = t38 * 0.33333334f;
  const auto t41 = (-0.5f) + t40;
  const auto t42 = t38 * t41;
  const auto t43 = 1.0f + t42;
  const auto t44 = t38 * t43;
  const auto t45 = attn_fast_log(t39);
  const auto t46 = t38 < 0.015625f;
  const auto t47 = static_cast<float>(t46 ? t44 : t45);
  const auto t48 = t35 + t47;
  const auto t49 = attn_fast_div(t48, t3);
  const auto t50 = t3 == 0.0f;
  const auto t51 = static_cast<float>(t50 ? 0.0f : t49);
  const auto t52 = n * t51;
  const auto t53 = t52 - t28;
  const auto t54 = t53 <= 0.0f;
  const auto t55 = static_cast<float>(t54 ? 0.0f : t53);
  const auto t56 = attn_fast_div(t55, t15);
  const auto t57 = attn_powi(t56, 15);
  const auto t58 = t57 < 0.0f;
  const auto t59 = static_cast<float>(t58 ? 1 : 0);
  const auto t60 = t57 > 0.0f;
  const auto t61 = static_cast<float>(t60 ? 1 : 0);
  const auto t62 = t61 - t59;
  const auto t63 = t62 * t19;
  const auto t64 = g - t63;
  const auto t65 = t15 == 0.0f;
  const auto t66 = t11 == 0.0f;
  const auto t67 = t66 || t65;
  const auto t68 = t15 * t11;
  const auto t69 = attn_powi(t56, 14);
  const auto t70 = 15.0f * t69;
  const auto t71 = attn_fast_div(t70, t68);
  const auto t72 = t64 * t71;
  const auto t73 = static_cast<float>(t67 ? 0.0f : t72);
  const auto t74 = t53 > 0.0f;
  const auto t75 = static_cast<float>(t74 ? t73 : 0.0f);
  const auto t76 = t75 * n;
  const auto t77 = t76 * t51;
  const auto t78 = *v29;
  const auto t79 = t78 + t77;
  *v29 = t79;
  const auto t80 = x + 0;
  const auto t81 = *v29;
  *t80 = t81;
  const auto t82 = x + 2;
  *t82 = 1.0f;
}

ATTN_DEVICE void attn_bwd_rowfinish_1(float* stats, float* adj, long long i, float n, long long lk, float rq) {
  const auto t0 = static_cast<long long>(0) * 4;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 4;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 4;
  const auto t9 = static_cast<long long>(t8) + 2;
  const auto t10 = stats + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<long long>(0) * 4;
  const auto t13 = static_cast<long long>(t12) + 3;
  const auto t14 = stats + t13;
  const auto t15 = *t14;
  const auto t16 = static_cast<long long>(0) * 2;
  const auto t17 = static_cast<long long>(t16) + 0;
  const auto t18 = adj + t17;
  const auto t19 = *t18;
  const auto t20 = static_cast<long long>(0) * 2;
  const auto t21 = static_cast<long long>(t20) + 1;
  const auto t22 = adj + t21;
  const auto t23 = *t22;
  const auto t24 = static_cast<float>(64);
  const auto t25 = logf(t24);
  const auto t26 = logf(n);
  const auto t27 = t25 * t26;
  const auto t28 = static_cast<float>(i);
  const auto t29 = t28 < 3.0f;
  const auto t30 = static_cast<float>(t29 ? 1 : 0);
  const auto t31 = t30 != 0;
  const auto t32 = static_cast<float>(t31 ? 0.0f : 1.0f);
}

ATTN_DEVICE void attn_bwd_grad(float* stats, float* adj, long long i, float n, long long lk, float rq, float s, float g, long long j, float rk, float* x) {
  const auto t0 = static_cast<long long>(0) * 4;
  const auto t1 = static_cast<long long>(t0) + 0;
  const auto t2 = stats + t1;
  const auto t3 = *t2;
  const auto t4 = static_cast<long long>(0) * 4;
  const auto t5 = static_cast<long long>(t4) + 1;
  const auto t6 = stats + t5;
  const auto t7 = *t6;
  const auto t8 = static_cast<long long>(0) * 4;
  const auto t9 = static_cast<long long>(t8) + 2;
  const auto t10 = stats + t9;
  const auto t11 = *t10;
  const auto t12 = static_cast<long long>(0) * 4;
  const auto t13 = static_cast<long long>(t12) + 3;
  const auto t14 = stats + t13;
  const auto t15 = *t14;
  const auto t16 = static_cast<long long>(0) * 2;
  const auto t17 = static_cast<long long>(t16) + 0;
  const auto t18 = adj + t17;
  const auto t19 = *t18;
  const auto t20 = static_cast<long long>(0) * 2;
  const auto t21 = static_cast<long long>(t20) + 1;
  const auto t22 = adj + t21;
  const auto t23 = *t22;
  const auto t24 = static_cast<float>(64);
  const auto t25 = logf(t24);
  const auto t26 = logf(n);
  const auto t27 = t25 * t26;
  const auto t28 = static_cast<float>(i);
  const auto t29 = t28 < 3.0f;
  const auto t30 = static_cast<float>(t29 ? 1 : 0);
  const auto t31 = t30 != 0;
  const auto t32 = static_cast<float>(t31 ? 0.0f : 1.0f);
  const auto t33 = s * 1.0f;
  const auto t34 = t33 * rq;
  const auto t35 = t34 * rk;
  const auto t36 = t27 * t35;
  const auto t37 = t36 > 0.0f;
  const auto t38 = static_cast<float>(t37 ? t36 : 0.0f);
  const auto t39 = fabsf(t36);
  const auto t40 = -t39;
  const auto t41 = attn_fast_exp(t40);
  const auto t42 = 1.0f + t41;
  const auto t43 = t41 * 0.33333334f;
  const auto t44 = (-0.5f) + t43;
  const auto t45 = t41 * t44;
  const auto t46 = 1.0f + t45;
  const auto t47 = t41 * t46;
  const auto t48 = attn_fast_log(t42);
  const auto t49 = t41 < 0.015625f;
  const auto t50 = static_cast<float>(t49 ? t47 : t48);
  const auto t51 = t38 + t50;
  const auto t52 = attn_fast_div(t51, t3);
  const auto t53 = t3 == 0.0f;
  const auto t54 = static_cast<float>(t53 ? 0.0f : t52);
  const auto t55 = n * t54;
  const auto t56 = t55 - t32;
  const auto t57 = t56 <= 0.0f;
  const auto t58 = static_cast<float>(t57 ? 0.0f : t56);
  const auto t59 = attn_fast_div(t58, t15);
  const auto t60 = attn_powi(t59, 15);
  const auto t61 = t60 < 0.0f;
  const auto t62 = static_cast<float>(t61 ? 1 : 0);
  const auto t63 = t60 > 0.0f;
  const auto t64 = static_cast<float>(t63 ? 1 : 0);
  const auto t65 = t64 - t62;
  const auto t66 = t65 * t23;
  const auto t67 = g - t66;
  const auto t68 = t15 == 0.0f;
  const auto t69 = t11 == 0.0f;
  const auto t70 = t69 || t68;
  const auto t71 = t15 * t11;
  const auto t72 = attn_powi(t59, 14);
  const auto t73 = 15.0f * t72;
  const auto t74 = attn_fast_div(t73, t71);
  const auto t75 = t67 * t74;
  const auto t76 = static_cast<float>(t70 ? 0.0f : t75);
  const auto t77 = t56 > 0.0f;
  const auto t78 = static_cast<float>(t77 ? t76 : 0.0f);
  const auto t79 = t78 * n;
  const auto t80 = t51 < 0.0f;
  const auto t81 = static_cast<float>(t80 ? 1 : 0);
  const auto t82 = t51 > 0.0f;
  const auto t83 = static_cast<float>(t82 ? 1 : 0);
  const auto t84 = t83 - t81;
  const auto t85 = t84 * t19;
  const auto t86 = t79 - t85;
  const auto t87 = attn_fast_div(t86, t3);
  const auto t88 = t3 == 0.0f;
  const auto t89 = static_cast<float>(t88 ? 0.0f : t87);
  const auto t90 = fabsf(t36);
  const auto t91 = -t90;
  const auto t92 = attn_fast_exp(t91);
  const auto t93 = 1.0f + t92;
  const auto t94 = attn_fast_div(t92, t93);
  const auto t95 = attn_fast_div(1.0f, t93);
  const auto t96 = t36 >= 0.0f;
  const auto t97 = static_cast<float>(t96 ? t95 : t94);
  const auto t98 = t89 * t97;
  const auto t99 = t98 * t27;
  const auto t100 = rq * rk;
  const auto t101 = 1.0f * t100;
  const auto t102 = t99 * t101;
  const auto t103 = 0.0f + t102;
  const auto t104 = 1.0f * rk;
  const auto t105 = s * t104;
  const auto t106 = t99 * t105;
  const auto t107 = 0.0f + t106;
  const auto t108 = 1.0f * rq;
  const auto t109 = s * t108;
  const auto t110 = t99 * t109;
  const auto t111 = 0.0f + t110;
  const auto t112 = x + 0;
  *t112 = t103;
  const auto t113 = t15 == 0.0f;
  const auto t114 = t11 == 0.0f;
  const auto t115 = t114 || t113;
  const auto t116 = attn_fast_div(t58, t15);
  const auto t117 = attn_powi(t116, 15);
  const auto t118 = attn_fast_div(t117, t11);
  const auto t119 = static_cast<float>(t115 ? 0.0f : t118);
  const auto t120 = x + 1;
  *t120 = t119;
  const auto t121 = x + 2;
  *t121 = t107;
  const auto t122 = x + 3;
  *t122 = t111;
  const auto t123 = x + 4;
  *t123 = 1.0f;
}

struct Variant {
  // forward: the plan's passes, row statistics and output
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
static_assert(attn_tc::backwardGradientSharedBytes<Config, Variant>() == 60928, "the host's shared-memory size (CudaCodegen.cpp) disagrees with tc_backward.cuh");

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_rows_tc_1(attn_tc::BwdParams p) {
  attn_tc::backwardRows<Variant, Config, 1>(p);
}

extern "C" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_grad_tc(attn_tc::BwdParams p) {
  attn_tc::backwardGradient<Variant, Config>(p);
}

// Support kernels, one thread per row (rows = heads * L).
// 1/|x_r| (0 for a zero row), for l2norm: squares of x / max |x|, which neither overflow
// nor underflow at any scale bf16 holds (l2norm is scale-invariant).
extern "C" __global__ void attn_inverse_norms_tc(const Config::Elem* x, float* out, long long rows, long long d) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float m = 0.f, s = 0.f;
  for (long long c = 0; c < d; ++c) m = fmaxf(m, fabsf(static_cast<float>(x[r * d + c])));
  for (long long c = 0; c < d; ++c) {
    const float e = static_cast<float>(x[r * d + c]) / (m == 0.f ? 1.f : m);
    s += e * e;
  }
  out[r] = s == 0.f ? 0.f : 1.f / (m * sqrtf(s));
}

// adj[r][slot] = dO_r . o_r: the row adjoints the FlashAttention identity gives.
extern "C" __global__ void attn_identity_adjoint_tc(const Config::Elem* dout, const Config::Elem* o, float* adj,
                                                    long long rows, long long dv, long long slots, long long slot) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float s = 0.f;
  for (long long c = 0; c < dv; ++c) s += static_cast<float>(dout[r * dv + c]) * static_cast<float>(o[r * dv + c]);
  adj[r * slots + slot] = s;
}

// dx_r += -bar_r rinv_r^3 x_r: the l2norm's share of the gradient.
extern "C" __global__ void attn_finish_norm_tc(const float* rinv, const float* bar, const Config::Elem* x, float* dx,
                                               long long rows, long long d) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float f = -bar[r] * rinv[r] * rinv[r];  // (-bar r) r (r x): r^3 alone over- or underflows
  for (long long c = 0; c < d; ++c) dx[r * d + c] += f * (rinv[r] * static_cast<float>(x[r * d + c]));
}
