// attn CUDA kernels for 'softmax': float32 path (one thread per query row or key)
// inputs f32, d = 64, dv = 64; stats: 2 reals per row, adjoints: 1 per row
enum AttnArg : int {
  kQ = 0, kK = 1, kV = 2, kO = 3, kStats = 4, kRq = 5, kRk = 6, kDout = 7,
  kAdj = 8, kDq = 9, kDk = 10, kDv = 11, kRqBar = 12, kRkBar = 13, kR0 = 14, kR1 = 15,
  kJ0 = 16, kJ1 = 17, kLq = 18, kLk = 19, kD = 20, kDvDim = 21, kFlags = 22,
  kArgCount = 23
};
#include "scalar_prelude.cuh"

ATTN_DEVICE void attn_forward(long long* args) {
  float v26[64];
  float v27[64];
  float v28[64];
  float v59[1];
  float v79[1];
  float v106[1];
  const auto t0 = reinterpret_cast<float*>(args[0]);
  const auto t1 = reinterpret_cast<float*>(args[1]);
  const auto t2 = reinterpret_cast<float*>(args[2]);
  const auto t3 = reinterpret_cast<float*>(args[3]);
  const auto t4 = reinterpret_cast<float*>(args[4]);
  const auto t5 = reinterpret_cast<float*>(args[5]);
  const auto t6 = reinterpret_cast<float*>(args[6]);
  const auto t7 = reinterpret_cast<float*>(args[7]);
  const auto t8 = reinterpret_cast<float*>(args[8]);
  const auto t9 = args[18];
  const auto t10 = args[19];
  const auto t11 = args[20];
  const auto t12 = args[21];
  const auto t13 = args[14];
  const auto t14 = args[15];
  for (long long i15 = t13; i15 < t14; i15 += 1) {
    const auto t16 = static_cast<long long>(i15) * 2;
    const auto t17 = static_cast<long long>(t16) + 0;
    const auto t18 = t4 + t17;
    *t18 = 0.0f;
    const auto t19 = static_cast<long long>(i15) * 2;
    const auto t20 = static_cast<long long>(t19) + 1;
    const auto t21 = t4 + t20;
    *t21 = (-ATTN_INF_F);
    for (long long i22 = 0; i22 < t12; i22 += 1) {
      const auto t23 = static_cast<long long>(i15) * t12;
      const auto t24 = static_cast<long long>(t23) + i22;
      const auto t25 = t3 + t24;
      *t25 = 0.0f;
    }
  }
  const auto t29 = static_cast<long long>(t10) - t9;
  const auto t30 = static_cast<long long>(t29) + t14;
  const auto t31 = static_cast<long long>(t10) < t30;
  const auto t32 = static_cast<long long>(t31 ? t10 : t30);
  for (long long i33 = 0; i33 < t32; i33 += 64) {
    for (long long i34 = t13; i34 < t14; i34 += 1) {
      const auto t35 = static_cast<long long>(t10) - t9;
      const auto t36 = static_cast<long long>(t35) + i34;
      const auto t37 = static_cast<long long>(t36) + 1;
      const auto t38 = static_cast<long long>(t37) < t10;
      const auto t39 = static_cast<long long>(t38 ? t37 : t10);
      const auto t40 = static_cast<long long>(t39) - 0;
      const auto t41 = static_cast<long long>(0) > t40;
      const auto t42 = static_cast<long long>(t41 ? 0 : t40);
      const auto t43 = static_cast<float>(t42);
      const auto t44 = static_cast<long long>(0) > i33;
      const auto t45 = static_cast<long long>(t44 ? 0 : i33);
      const auto t46 = static_cast<long long>(i33) + 64;
      const auto t47 = static_cast<long long>(t39) < t46;
      const auto t48 = static_cast<long long>(t47 ? t39 : t46);
      const auto t49 = static_cast<long long>(t48) < t32;
      const auto t50 = static_cast<long long>(t49 ? t48 : t32);
      const auto t51 = static_cast<long long>(t45) < t50;
      if (t51) {
        const auto t52 = static_cast<float>(t11);
        const auto t53 = sqrtf(t52);
        const auto t54 = static_cast<long long>(i34) * t11;
        const auto t55 = t0 + t54;
        for (long long i56 = t45; i56 < t50; i56 += 1) {
          const auto t57 = static_cast<long long>(i56) * t11;
          const auto t58 = t1 + t57;
          *v59 = 0.0f;
          for (long long i60 = 0; i60 < t11; i60 += 1) {
            const auto t61 = t58 + i60;
            const auto t62 = *t61;
            const auto t63 = t55 + i60;
            const auto t64 = *t63;
            const auto t65 = t64 * t62;
            const auto t66 = *v59;
            const auto t67 = t66 + t65;
            *v59 = t67;
          }
          const auto t68 = static_cast<long long>(i56) - i33;
          const auto t69 = v26 + t68;
          const auto t70 = *v59;
          *t69 = t70;
        }
        for (long long i71 = t45; i71 < t50; i71 += 1) {
          const auto t72 = static_cast<long long>(i71) - i33;
          const auto t73 = v26 + t72;
          const auto t74 = *t73;
          const auto t75 = static_cast<long long>(i71) - i33;
          const auto t76 = t74 * 1.0f;
          const auto t77 = t76 / t53;
          const auto t78 = v28 + t75;
          *t78 = t77;
        }
        *v79 = (-ATTN_INF_F);
        for (long long i80 = t45; i80 < t50; i80 += 1) {
          const auto t81 = static_cast<long long>(i80) - i33;
          const auto t82 = v28 + t81;
          const auto t83 = *t82;
          const auto t84 = *v79;
          const auto t85 = t84 < t83;
          const auto t86 = static_cast<float>(t85 ? t83 : t84);
          const auto t87 = t83 != t83;
          const auto t88 = static_cast<float>(t87 ? t83 : t86);
          *v79 = t88;
        }
        const auto t89 = static_cast<long long>(i34) * 2;
        const auto t90 = static_cast<long long>(t89) + 0;
        const auto t91 = t4 + t90;
        const auto t92 = static_cast<long long>(i34) * 2;
        const auto t93 = static_cast<long long>(t92) + 1;
        const auto t94 = t4 + t93;
        const auto t95 = *t94;
        const auto t96 = *t91;
        const auto t97 = *v79;
        const auto t98 = t95 < t97;
        const auto t99 = static_cast<float>(t98 ? t97 : t95);
        const auto t100 = t97 != t97;
        const auto t101 = static_cast<float>(t100 ? t97 : t99);
        const auto t102 = t95 - t101;
        const auto t103 = expf(t102);
        const auto t104 = t95 == (-ATTN_INF_F);
        const auto t105 = static_cast<float>(t104 ? 0.0f : t103);
        const auto t107 = t96 * t105;
        *v106 = t107;
        const auto t108 = static_cast<long long>(i34) * t12;
        const auto t109 = t3 + t108;
        for (long long i110 = 0; i110 < t12; i110 += 1) {
          const auto t111 = t109 + i110;
          const auto t112 = *t111;
          const auto t113 = t112 * t105;
          *t111 = t113;
        }
        const auto t114 = t101 == (-ATTN_INF_F);
        for (long long i115 = t45; i115 < t50; i115 += 1) {
          const auto t116 = static_cast<long long>(i115) - i33;
          const auto t117 = v28 + t116;
          const auto t118 = *t117;
          const auto t119 = t118 - t101;
          const auto t120 = expf(t119);
          const auto t121 = static_cast<float>(t114 ? 0.0f : t120);
          const auto t122 = *v106;
          const auto t123 = t122 + t121;
          *v106 = t123;
          const auto t124 = v27 + t116;
          *t124 = t121;
        }
        const auto t125 = *v106;
        *t91 = t125;
        *t94 = t101;
        const auto t126 = static_cast<long long>(i34) * t12;
        const auto t127 = t3 + t126;
        for (long long i128 = t45; i128 < t50; i128 += 1) {
          const auto t129 = static_cast<long long>(i128) - i33;
          const auto t130 = v27 + t129;
          const auto t131 = *t130;
          const auto t132 = static_cast<long long>(i128) * t12;
          const auto t133 = t2 + t132;
          for (long long i134 = 0; i134 < t12; i134 += 1) {
            const auto t135 = t133 + i134;
            const auto t136 = *t135;
            const auto t137 = t131 * t136;
            const auto t138 = t127 + i134;
            const auto t139 = *t138;
            const auto t140 = t139 + t137;
            *t138 = t140;
          }
        }
      }
    }
  }
  for (long long i141 = t13; i141 < t14; i141 += 1) {
    const auto t142 = static_cast<long long>(i141) * 2;
    const auto t143 = static_cast<long long>(t142) + 0;
    const auto t144 = t4 + t143;
    const auto t145 = *t144;
    const auto t146 = 1.0f / t145;
    const auto t147 = t145 == 0.0f;
    const auto t148 = static_cast<float>(t147 ? 0.0f : t146);
    const auto t149 = static_cast<long long>(i141) * t12;
    const auto t150 = t3 + t149;
    for (long long i151 = 0; i151 < t12; i151 += 1) {
      const auto t152 = t150 + i151;
      const auto t153 = *t152;
      const auto t154 = t153 * t148;
      *t152 = t154;
    }
  }
}

ATTN_DEVICE void attn_backward_gradient(long long* args) {
  float v23[64];
  float v24[64];
  float v25[64];
  float v26[64];
  float v27[64];
  float v70[1];
  float v87[1];
  float v99[1];
  const auto t0 = reinterpret_cast<float*>(args[0]);
  const auto t1 = reinterpret_cast<float*>(args[1]);
  const auto t2 = reinterpret_cast<float*>(args[2]);
  const auto t3 = reinterpret_cast<float*>(args[3]);
  const auto t4 = reinterpret_cast<float*>(args[4]);
  const auto t5 = reinterpret_cast<float*>(args[5]);
  const auto t6 = reinterpret_cast<float*>(args[6]);
  const auto t7 = reinterpret_cast<float*>(args[7]);
  const auto t8 = reinterpret_cast<float*>(args[8]);
  const auto t9 = args[18];
  const auto t10 = args[19];
  const auto t11 = args[20];
  const auto t12 = args[21];
  const auto t13 = args[14];
  const auto t14 = args[15];
  const auto t15 = args[16];
  const auto t16 = args[17];
  const auto t17 = args[22];
  const auto t18 = reinterpret_cast<float*>(args[9]);
  const auto t19 = reinterpret_cast<float*>(args[10]);
  const auto t20 = reinterpret_cast<float*>(args[11]);
  const auto t21 = reinterpret_cast<float*>(args[12]);
  const auto t22 = reinterpret_cast<float*>(args[13]);
  const auto t28 = static_cast<long long>(t17) & 1;
  const auto t29 = static_cast<long long>(t28) != 0;
  const auto t30 = static_cast<long long>(t17) & 2;
  const auto t31 = static_cast<long long>(t30) != 0;
  for (long long i32 = t15; i32 < t16; i32 += 64) {
    for (long long i33 = t13; i33 < t14; i33 += 1) {
      const auto t34 = static_cast<long long>(t10) - t9;
      const auto t35 = static_cast<long long>(t34) + i33;
      const auto t36 = static_cast<long long>(t35) + 1;
      const auto t37 = static_cast<long long>(t36) < t10;
      const auto t38 = static_cast<long long>(t37 ? t36 : t10);
      const auto t39 = static_cast<long long>(t38) - 0;
      const auto t40 = static_cast<long long>(0) > t39;
      const auto t41 = static_cast<long long>(t40 ? 0 : t39);
      const auto t42 = static_cast<float>(t41);
      const auto t43 = static_cast<long long>(0) > i32;
      const auto t44 = static_cast<long long>(t43 ? 0 : i32);
      const auto t45 = static_cast<long long>(i32) + 64;
      const auto t46 = static_cast<long long>(t38) < t45;
      const auto t47 = static_cast<long long>(t46 ? t38 : t45);
      const auto t48 = static_cast<long long>(t47) < t16;
      const auto t49 = static_cast<long long>(t48 ? t47 : t16);
      const auto t50 = static_cast<long long>(t44) < t49;
      if (t50) {
        const auto t51 = static_cast<long long>(i33) * 2;
        const auto t52 = static_cast<long long>(t51) + 0;
        const auto t53 = t4 + t52;
        const auto t54 = *t53;
        const auto t55 = static_cast<long long>(i33) * 2;
        const auto t56 = static_cast<long long>(t55) + 1;
        const auto t57 = t4 + t56;
        const auto t58 = *t57;
        const auto t59 = static_cast<long long>(i33) * 1;
        const auto t60 = static_cast<long long>(t59) + 0;
        const auto t61 = t8 + t60;
        const auto t62 = *t61;
        const auto t63 = static_cast<float>(t11);
        const auto t64 = sqrtf(t63);
        const auto t65 = static_cast<long long>(i33) * t11;
        const auto t66 = t0 + t65;
        for (long long i67 = t44; i67 < t49; i67 += 1) {
          const auto t68 = static_cast<long long>(i67) * t11;
          const auto t69 = t1 + t68;
          *v70 = 0.0f;
          for (long long i71 = 0; i71 < t11; i71 += 1) {
            const auto t72 = t69 + i71;
            const auto t73 = *t72;
            const auto t74 = t66 + i71;
            const auto t75 = *t74;
            const auto t76 = t75 * t73;
            const auto t77 = *v70;
            const auto t78 = t77 + t76;
            *v70 = t78;
          }
          const auto t79 = static_cast<long long>(i67) - i32;
          const auto t80 = v23 + t79;
          const auto t81 = *v70;
          *t80 = t81;
        }
        const auto t82 = static_cast<long long>(i33) * t12;
        const auto t83 = t7 + t82;
        for (long long i84 = t44; i84 < t49; i84 += 1) {
          const auto t85 = static_cast<long long>(i84) * t12;
          const auto t86 = t2 + t85;
          *v87 = 0.0f;
          for (long long i88 = 0; i88 < t12; i88 += 1) {
            const auto t89 = t86 + i88;
            const auto t90 = *t89;
            const auto t91 = t83 + i88;
            const auto t92 = *t91;
            const auto t93 = t92 * t90;
            const auto t94 = *v87;
            const auto t95 = t94 + t93;
            *v87 = t95;
          }
          const auto t96 = static_cast<long long>(i84) - i32;
          const auto t97 = v24 + t96;
          const auto t98 = *v87;
          *t97 = t98;
        }
        *v99 = 0.0f;
        for (long long i100 = t44; i100 < t49; i100 += 1) {
          const auto t101 = static_cast<long long>(i100) - i32;
          const auto t102 = v23 + t101;
          const auto t103 = *t102;
          const auto t104 = static_cast<long long>(i100) - i32;
          const auto t105 = v24 + t104;
          const auto t106 = *t105;
          const auto t107 = t106 - t62;
          const auto t108 = t103 * 1.0f;
          const auto t109 = t108 / t64;
          const auto t110 = t109 - t58;
          const auto t111 = expf(t110);
          const auto t112 = t111 / t54;
          const auto t113 = t54 == 0.0f;
          const auto t114 = static_cast<float>(t113 ? 0.0f : t112);
          const auto t115 = t114 * t107;
          const auto t116 = t115 / t64;
          const auto t117 = 1.0f * 1.0f;
          const auto t118 = 1.0f * t117;
          const auto t119 = t116 * t118;
          const auto t120 = 0.0f + t119;
          const auto t121 = v25 + t104;
          *t121 = t120;
          const auto t122 = v26 + t104;
          *t122 = t114;
          const auto t123 = v27 + t104;
          *t123 = 0.0f;
          const auto t124 = *v99;
          const auto t125 = t124 + 0.0f;
          *v99 = t125;
        }
        const auto t126 = static_cast<long long>(i33) * t11;
        const auto t127 = t0 + t126;
        const auto t128 = static_cast<long long>(i33) * t12;
        const auto t129 = t7 + t128;
        if (t29) {
          const auto t130 = static_cast<long long>(i33) * t11;
          const auto t131 = t18 + t130;
          for (long long i132 = t44; i132 < t49; i132 += 1) {
            const auto t133 = static_cast<long long>(i132) - i32;
            const auto t134 = v25 + t133;
            const auto t135 = *t134;
            const auto t136 = static_cast<long long>(i132) * t11;
            const auto t137 = t1 + t136;
            for (long long i138 = 0; i138 < t11; i138 += 1) {
              const auto t139 = t137 + i138;
              const auto t140 = *t139;
              const auto t141 = t135 * t140;
              const auto t142 = t131 + i138;
              const auto t143 = *t142;
              const auto t144 = t143 + t141;
              *t142 = t144;
            }
          }
        }
        if (t31) {
          for (long long i145 = t44; i145 < t49; i145 += 1) {
            const auto t146 = static_cast<long long>(i145) - i32;
            const auto t147 = v25 + t146;
            const auto t148 = *t147;
            const auto t149 = v26 + t146;
            const auto t150 = *t149;
            const auto t151 = static_cast<long long>(i145) * t11;
            const auto t152 = t19 + t151;
            for (long long i153 = 0; i153 < t11; i153 += 1) {
              const auto t154 = t127 + i153;
              const auto t155 = *t154;
              const auto t156 = t148 * t155;
              const auto t157 = t152 + i153;
              const auto t158 = *t157;
              const auto t159 = t158 + t156;
              *t157 = t159;
            }
            const auto t160 = static_cast<long long>(i145) * t12;
            const auto t161 = t20 + t160;
            for (long long i162 = 0; i162 < t12; i162 += 1) {
              const auto t163 = t129 + i162;
              const auto t164 = *t163;
              const auto t165 = t150 * t164;
              const auto t166 = t161 + i162;
              const auto t167 = *t166;
              const auto t168 = t167 + t165;
              *t166 = t168;
            }
          }
        }
      }
    }
  }
}

#ifdef __CUDACC__
extern "C" __global__ void attn_forward_f32(AttnScalarParams p) {
  long long r;
  if (!attn_thread(p.args[kLq], &r)) return;
  long long a[kArgCount];
  attn_head_args(p, blockIdx.y, a);
  a[kR0] = r;
  a[kR1] = r + 1;
  attn_forward(a);
}
extern "C" __global__ void attn_backward_dq_f32(AttnScalarParams p) {
  long long r;
  if (!attn_thread(p.args[kLq], &r)) return;
  long long a[kArgCount];
  attn_head_args(p, blockIdx.y, a);
  a[kR0] = r;
  a[kR1] = r + 1;
  a[kJ0] = 0;
  a[kJ1] = a[kLk];
  a[kFlags] = 1;
  attn_backward_gradient(a);
}
extern "C" __global__ void attn_backward_dkdv_f32(AttnScalarParams p) {
  long long j;
  if (!attn_thread(p.args[kLk], &j)) return;
  long long a[kArgCount];
  attn_head_args(p, blockIdx.y, a);
  a[kR0] = 0;
  a[kR1] = a[kLq];
  a[kJ0] = j;
  a[kJ1] = j + 1;
  a[kFlags] = 2;
  attn_backward_gradient(a);
}
#endif  // __CUDACC__
