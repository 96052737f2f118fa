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
  const auto t38 = expf(t37);
  const auto t39 = 1.0f + t38;
  const auto t40 = t39 - 1.0f;
  const auto t41 = logf(t39);
  const auto t42 = t41 * t38;
  const auto t43 = t42 / t40;
  const auto t44 = t39 == 1.0f;
  const auto t45 = static_cast<float>(t44 ? t38 : t43);
  const auto t46 = t35 + t45;
  const auto t47 = t46 / t3;
  const auto t48 = t3 == 0.0f;
  const auto t49 = static_cast<float>(t48 ? 0.0f : t47);
  const auto t50 = n * t49;
  const auto t51 = t50 - t28;
  const auto t52 = t51 > 0.0f;
  const auto t53 = static_cast<float>(t52 ? t51 : 0.0f);
  const auto t54 = t53 / t15;
  const auto t55 = attn_powi(t54, 15);
  const auto t56 = t55 < 0.0f;
  const auto t57 = static_cast<float>(t56 ? 1 : 0);
  const auto t58 = t55 > 0.0f;
  const auto t59 = static_cast<float>(t58 ? 1 : 0);
  const auto t60 = t59 - t57;
  const auto t61 = t60 * t19;
  const auto t62 = g - t61;
  const auto t63 = t15 == 0.0f;
  const auto t64 = t11 == 0.0f;
  const auto t65 = t64 || t63;
  const auto t66 = t15 * t11;
  const auto t67 = attn_powi(t54, 14);
  const auto t68 = 15.0f * t67;
  const auto t69 = t68 / t66;
  const auto t70 = t62 * t69;
  const auto t71 = static_cast<float>(t65 ? 0.0f : t70);
  const auto t72 = t51 > 0.0f;
  const auto t73 = static_cast<float>(t72 ? t71 : 0.0f);
  const auto t74 = t73 * n;
  const auto t75 = t74 * t49;
  const auto t76 = *v29;
  const auto t77 = t76 + t75;
  *v29 = t77;
  const auto t78 = x + 0;
  const auto t79 = *v29;
  *t78 = t79;
  const auto t80 = x + 2;
  *t80 = 1.0f;
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
  const auto t41 = expf(t40);
  const auto t42 = 1.0f + t41;
  const auto t43 = t42 - 1.0f;
  const auto t44 = logf(t42);
  const auto t45 = t44 * t41;
  const auto t46 = t45 / t43;
  const auto t47 = t42 == 1.0f;
  const auto t48 = static_cast<float>(t47 ? t41 : t46);
  const auto t49 = t38 + t48;
  const auto t50 = t49 / t3;
  const auto t51 = t3 == 0.0f;
  const auto t52 = static_cast<float>(t51 ? 0.0f : t50);
  const auto t53 = n * t52;
  const auto t54 = t53 - t32;
  const auto t55 = t54 > 0.0f;
  const auto t56 = static_cast<float>(t55 ? t54 : 0.0f);
  const auto t57 = t56 / t15;
  const auto t58 = attn_powi(t57, 15);
  const auto t59 = t58 < 0.0f;
  const auto t60 = static_cast<float>(t59 ? 1 : 0);
  const auto t61 = t58 > 0.0f;
  const auto t62 = static_cast<float>(t61 ? 1 : 0);
  const auto t63 = t62 - t60;
  const auto t64 = t63 * t23;
  const auto t65 = g - t64;
  const auto t66 = t15 == 0.0f;
  const auto t67 = t11 == 0.0f;
  const auto t68 = t67 || t66;
  const auto t69 = t15 * t11;
  const auto t70 = attn_powi(t57, 14);
  const auto t71 = 15.0f * t70;
  const auto t72 = t71 / t69;
  const auto t73 = t65 * t72;
  const auto t74 = static_cast<float>(t68 ? 0.0f : t73);
  const auto t75 = t54 > 0.0f;
  const auto t76 = static_cast<float>(t75 ? t74 : 0.0f);
  const auto t77 = t76 * n;
  const auto t78 = t49 < 0.0f;
  const auto t79 = static_cast<float>(t78 ? 1 : 0);
  const auto t80 = t49 > 0.0f;
  const auto t81 = static_cast<float>(t80 ? 1 : 0);
  const auto t82 = t81 - t79;
  const auto t83 = t82 * t19;
  const auto t84 = t77 - t83;
  const auto t85 = t84 / t3;
  const auto t86 = t3 == 0.0f;
  const auto t87 = static_cast<float>(t86 ? 0.0f : t85);
  const auto t88 = fabsf(t36);
  const auto t89 = -t88;
  const auto t90 = expf(t89);
  const auto t91 = 1.0f + t90;
  const auto t92 = t90 / t91;
  const auto t93 = 1.0f / t91;
  const auto t94 = t36 >= 0.0f;
  const auto t95 = static_cast<float>(t94 ? t93 : t92);
  const auto t96 = t87 * t95;
  const auto t97 = t96 * t27;
  const auto t98 = rq * rk;
  const auto t99 = 1.0f * t98;
  const auto t100 = t97 * t99;
  const auto t101 = 0.0f + t100;
  const auto t102 = 1.0f * rk;
  const auto t103 = s * t102;
  const auto t104 = t97 * t103;
  const auto t105 = 0.0f + t104;
  const auto t106 = 1.0f * rq;
  const auto t107 = s * t106;
  const auto t108 = t97 * t107;
  const auto t109 = 0.0f + t108;
  const auto t110 = x + 0;
  *t110 = t101;
  const auto t111 = t15 == 0.0f;
  const auto t112 = t11 == 0.0f;
  const auto t113 = t112 || t111;
  const auto t114 = t56 / t15;
  const auto t115 = attn_powi(t114, 15);
  const auto t116 = t115 / t11;
  const auto t117 = static_cast<float>(t113 ? 0.0f : t116);
  const auto t118 = x + 1;
  *t118 = t117;
  const auto t119 = x + 2;
  *t119 = t105;
  const auto t120 = x + 3;
  *t120 = t109;
  const auto t121 = x + 4;
  *t121 = 1.0f;
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
// 1/|x_r| (0 for a zero row), for l2norm.
extern "C" __global__ void attn_inverse_norms_tc(const Config::Elem* x, float* out, long long rows, long long d) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  float s = 0.f;
  for (long long c = 0; c < d; ++c) {
    const float e = static_cast<float>(x[r * d + c]);
    s += e * e;
  }
  out[r] = s == 0.f ? 0.f : 1.f / sqrtf(s);
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
  const float f = -bar[r] * rinv[r] * rinv[r] * rinv[r];
  for (long long c = 0; c < d; ++c) dx[r * d + c] += f * static_cast<float>(x[r * d + c]);
}
