// attn CUDA kernels for 'lssa': float32 path (one thread per query row or key)
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
  float v63[1];
  float v75[1];
  float v76[1];
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
    *t21 = 0.0f;
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
        const auto t52 = t5 + i34;
        const auto t53 = *t52;
        const auto t54 = static_cast<float>(t11);
        const auto t55 = logf(t54);
        const auto t56 = logf(t43);
        const auto t57 = t55 * t56;
        const auto t58 = static_cast<long long>(i34) * t11;
        const auto t59 = t0 + t58;
        for (long long i60 = t45; i60 < t50; i60 += 1) {
          const auto t61 = static_cast<long long>(i60) * t11;
          const auto t62 = t1 + t61;
          *v63 = 0.0f;
          for (long long i64 = 0; i64 < t11; i64 += 1) {
            const auto t65 = t62 + i64;
            const auto t66 = *t65;
            const auto t67 = t59 + i64;
            const auto t68 = *t67;
            const auto t69 = t68 * t66;
            const auto t70 = *v63;
            const auto t71 = t70 + t69;
            *v63 = t71;
          }
          const auto t72 = static_cast<long long>(i60) - i33;
          const auto t73 = v26 + t72;
          const auto t74 = *v63;
          *t73 = t74;
        }
        const auto t77 = static_cast<long long>(i34) * 2;
        const auto t78 = static_cast<long long>(t77) + 0;
        const auto t79 = t4 + t78;
        const auto t80 = *t79;
        *v75 = t80;
        const auto t81 = static_cast<long long>(i34) * 2;
        const auto t82 = static_cast<long long>(t81) + 1;
        const auto t83 = t4 + t82;
        const auto t84 = *t83;
        *v76 = t84;
        for (long long i85 = t45; i85 < t50; i85 += 1) {
          const auto t86 = static_cast<long long>(i85) - i33;
          const auto t87 = v26 + t86;
          const auto t88 = *t87;
          const auto t89 = static_cast<long long>(i85) - i33;
          const auto t90 = t88 * 1.0f;
          const auto t91 = t90 * t53;
          const auto t92 = t6 + i85;
          const auto t93 = *t92;
          const auto t94 = t91 * t93;
          const auto t95 = t57 * t94;
          const auto t96 = t95 > 0.0f;
          const auto t97 = static_cast<float>(t96 ? t95 : 0.0f);
          const auto t98 = fabsf(t95);
          const auto t99 = -t98;
          const auto t100 = expf(t99);
          const auto t101 = 1.0f + t100;
          const auto t102 = t101 - 1.0f;
          const auto t103 = logf(t101);
          const auto t104 = t103 * t100;
          const auto t105 = t104 / t102;
          const auto t106 = t101 == 1.0f;
          const auto t107 = static_cast<float>(t106 ? t100 : t105);
          const auto t108 = t97 + t107;
          const auto t109 = fabsf(t108);
          const auto t110 = *v75;
          const auto t111 = t110 + t109;
          *v75 = t111;
          const auto t112 = v27 + t89;
          *t112 = t108;
        }
        const auto t113 = static_cast<long long>(i34) * 2;
        const auto t114 = static_cast<long long>(t113) + 0;
        const auto t115 = t4 + t114;
        const auto t116 = *v75;
        *t115 = t116;
        const auto t117 = static_cast<long long>(i34) * 2;
        const auto t118 = static_cast<long long>(t117) + 1;
        const auto t119 = t4 + t118;
        const auto t120 = *v76;
        *t119 = t120;
        const auto t121 = static_cast<long long>(i34) * t12;
        const auto t122 = t3 + t121;
        for (long long i123 = t45; i123 < t50; i123 += 1) {
          const auto t124 = static_cast<long long>(i123) - i33;
          const auto t125 = v27 + t124;
          const auto t126 = *t125;
          const auto t127 = static_cast<long long>(i123) * t12;
          const auto t128 = t2 + t127;
          for (long long i129 = 0; i129 < t12; i129 += 1) {
            const auto t130 = t128 + i129;
            const auto t131 = *t130;
            const auto t132 = t126 * t131;
            const auto t133 = t122 + i129;
            const auto t134 = *t133;
            const auto t135 = t134 + t132;
            *t133 = t135;
          }
        }
      }
    }
  }
  for (long long i136 = t13; i136 < t14; i136 += 1) {
    const auto t137 = static_cast<long long>(i136) * 2;
    const auto t138 = static_cast<long long>(t137) + 0;
    const auto t139 = t4 + t138;
    const auto t140 = *t139;
    const auto t141 = 1.0f / t140;
    const auto t142 = t140 == 0.0f;
    const auto t143 = static_cast<float>(t142 ? 0.0f : t141);
    const auto t144 = static_cast<long long>(i136) * t12;
    const auto t145 = t3 + t144;
    for (long long i146 = 0; i146 < t12; i146 += 1) {
      const auto t147 = t145 + i146;
      const auto t148 = *t147;
      const auto t149 = t148 * t143;
      *t147 = t149;
    }
  }
}

ATTN_DEVICE void attn_backward_rows_1(long long* args) {
  float v15[64];
  float v16[64];
  float v55[1];
  float v72[1];
  float v84[1];
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
  for (long long i17 = 0; i17 < t10; i17 += 64) {
    for (long long i18 = t13; i18 < t14; i18 += 1) {
      const auto t19 = static_cast<long long>(t10) - t9;
      const auto t20 = static_cast<long long>(t19) + i18;
      const auto t21 = static_cast<long long>(t20) + 1;
      const auto t22 = static_cast<long long>(t21) < t10;
      const auto t23 = static_cast<long long>(t22 ? t21 : t10);
      const auto t24 = static_cast<long long>(t23) - 0;
      const auto t25 = static_cast<long long>(0) > t24;
      const auto t26 = static_cast<long long>(t25 ? 0 : t24);
      const auto t27 = static_cast<float>(t26);
      const auto t28 = static_cast<long long>(0) > i17;
      const auto t29 = static_cast<long long>(t28 ? 0 : i17);
      const auto t30 = static_cast<long long>(i17) + 64;
      const auto t31 = static_cast<long long>(t23) < t30;
      const auto t32 = static_cast<long long>(t31 ? t23 : t30);
      const auto t33 = static_cast<long long>(t32) < t10;
      const auto t34 = static_cast<long long>(t33 ? t32 : t10);
      const auto t35 = static_cast<long long>(t29) < t34;
      if (t35) {
        const auto t36 = static_cast<long long>(i18) * 2;
        const auto t37 = static_cast<long long>(t36) + 0;
        const auto t38 = t4 + t37;
        const auto t39 = *t38;
        const auto t40 = static_cast<long long>(i18) * 2;
        const auto t41 = static_cast<long long>(t40) + 1;
        const auto t42 = t4 + t41;
        const auto t43 = *t42;
        const auto t44 = t5 + i18;
        const auto t45 = *t44;
        const auto t46 = static_cast<float>(t11);
        const auto t47 = logf(t46);
        const auto t48 = logf(t27);
        const auto t49 = t47 * t48;
        const auto t50 = static_cast<long long>(i18) * t11;
        const auto t51 = t0 + t50;
        for (long long i52 = t29; i52 < t34; i52 += 1) {
          const auto t53 = static_cast<long long>(i52) * t11;
          const auto t54 = t1 + t53;
          *v55 = 0.0f;
          for (long long i56 = 0; i56 < t11; i56 += 1) {
            const auto t57 = t54 + i56;
            const auto t58 = *t57;
            const auto t59 = t51 + i56;
            const auto t60 = *t59;
            const auto t61 = t60 * t58;
            const auto t62 = *v55;
            const auto t63 = t62 + t61;
            *v55 = t63;
          }
          const auto t64 = static_cast<long long>(i52) - i17;
          const auto t65 = v15 + t64;
          const auto t66 = *v55;
          *t65 = t66;
        }
        const auto t67 = static_cast<long long>(i18) * t12;
        const auto t68 = t7 + t67;
        for (long long i69 = t29; i69 < t34; i69 += 1) {
          const auto t70 = static_cast<long long>(i69) * t12;
          const auto t71 = t2 + t70;
          *v72 = 0.0f;
          for (long long i73 = 0; i73 < t12; i73 += 1) {
            const auto t74 = t71 + i73;
            const auto t75 = *t74;
            const auto t76 = t68 + i73;
            const auto t77 = *t76;
            const auto t78 = t77 * t75;
            const auto t79 = *v72;
            const auto t80 = t79 + t78;
            *v72 = t80;
          }
          const auto t81 = static_cast<long long>(i69) - i17;
          const auto t82 = v16 + t81;
          const auto t83 = *v72;
          *t82 = t83;
        }
        const auto t85 = static_cast<long long>(i18) * 1;
        const auto t86 = static_cast<long long>(t85) + 0;
        const auto t87 = t8 + t86;
        const auto t88 = *t87;
        *v84 = t88;
        for (long long i89 = t29; i89 < t34; i89 += 1) {
          const auto t90 = static_cast<long long>(i89) - i17;
          const auto t91 = v15 + t90;
          const auto t92 = *t91;
          const auto t93 = static_cast<long long>(i89) - i17;
          const auto t94 = v16 + t93;
          const auto t95 = *t94;
          const auto t96 = t92 * 1.0f;
          const auto t97 = t96 * t45;
          const auto t98 = t6 + i89;
          const auto t99 = *t98;
          const auto t100 = t97 * t99;
          const auto t101 = t49 * t100;
          const auto t102 = t101 > 0.0f;
          const auto t103 = static_cast<float>(t102 ? t101 : 0.0f);
          const auto t104 = fabsf(t101);
          const auto t105 = -t104;
          const auto t106 = expf(t105);
          const auto t107 = 1.0f + t106;
          const auto t108 = t107 - 1.0f;
          const auto t109 = logf(t107);
          const auto t110 = t109 * t106;
          const auto t111 = t110 / t108;
          const auto t112 = t107 == 1.0f;
          const auto t113 = static_cast<float>(t112 ? t106 : t111);
          const auto t114 = t103 + t113;
          const auto t115 = t114 / t39;
          const auto t116 = t39 == 0.0f;
          const auto t117 = static_cast<float>(t116 ? 0.0f : t115);
          const auto t118 = t95 * t117;
          const auto t119 = *v84;
          const auto t120 = t119 + t118;
          *v84 = t120;
        }
        const auto t121 = static_cast<long long>(i18) * 1;
        const auto t122 = static_cast<long long>(t121) + 0;
        const auto t123 = t8 + t122;
        const auto t124 = *v84;
        *t123 = t124;
      }
    }
  }
  for (long long i125 = t13; i125 < t14; i125 += 1) {
    const auto t126 = static_cast<long long>(t10) - t9;
    const auto t127 = static_cast<long long>(t126) + i125;
    const auto t128 = static_cast<long long>(t127) + 1;
    const auto t129 = static_cast<long long>(t128) < t10;
    const auto t130 = static_cast<long long>(t129 ? t128 : t10);
    const auto t131 = static_cast<long long>(t130) - 0;
    const auto t132 = static_cast<long long>(0) > t131;
    const auto t133 = static_cast<long long>(t132 ? 0 : t131);
    const auto t134 = static_cast<float>(t133);
    const auto t135 = static_cast<long long>(i125) * 2;
    const auto t136 = static_cast<long long>(t135) + 0;
    const auto t137 = t4 + t136;
    const auto t138 = *t137;
    const auto t139 = static_cast<long long>(i125) * 2;
    const auto t140 = static_cast<long long>(t139) + 1;
    const auto t141 = t4 + t140;
    const auto t142 = *t141;
    const auto t143 = t5 + i125;
    const auto t144 = *t143;
    const auto t145 = static_cast<float>(t11);
    const auto t146 = logf(t145);
    const auto t147 = logf(t134);
    const auto t148 = t146 * t147;
  }
}

ATTN_DEVICE void attn_backward_gradient(long long* args) {
  float v23[64];
  float v24[64];
  float v25[64];
  float v26[64];
  float v27[64];
  float v74[1];
  float v91[1];
  float v103[1];
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
        const auto t63 = t5 + i33;
        const auto t64 = *t63;
        const auto t65 = static_cast<float>(t11);
        const auto t66 = logf(t65);
        const auto t67 = logf(t42);
        const auto t68 = t66 * t67;
        const auto t69 = static_cast<long long>(i33) * t11;
        const auto t70 = t0 + t69;
        for (long long i71 = t44; i71 < t49; i71 += 1) {
          const auto t72 = static_cast<long long>(i71) * t11;
          const auto t73 = t1 + t72;
          *v74 = 0.0f;
          for (long long i75 = 0; i75 < t11; i75 += 1) {
            const auto t76 = t73 + i75;
            const auto t77 = *t76;
            const auto t78 = t70 + i75;
            const auto t79 = *t78;
            const auto t80 = t79 * t77;
            const auto t81 = *v74;
            const auto t82 = t81 + t80;
            *v74 = t82;
          }
          const auto t83 = static_cast<long long>(i71) - i32;
          const auto t84 = v23 + t83;
          const auto t85 = *v74;
          *t84 = t85;
        }
        const auto t86 = static_cast<long long>(i33) * t12;
        const auto t87 = t7 + t86;
        for (long long i88 = t44; i88 < t49; i88 += 1) {
          const auto t89 = static_cast<long long>(i88) * t12;
          const auto t90 = t2 + t89;
          *v91 = 0.0f;
          for (long long i92 = 0; i92 < t12; i92 += 1) {
            const auto t93 = t90 + i92;
            const auto t94 = *t93;
            const auto t95 = t87 + i92;
            const auto t96 = *t95;
            const auto t97 = t96 * t94;
            const auto t98 = *v91;
            const auto t99 = t98 + t97;
            *v91 = t99;
          }
          const auto t100 = static_cast<long long>(i88) - i32;
          const auto t101 = v24 + t100;
          const auto t102 = *v91;
          *t101 = t102;
        }
        *v103 = 0.0f;
        for (long long i104 = t44; i104 < t49; i104 += 1) {
          const auto t105 = static_cast<long long>(i104) - i32;
          const auto t106 = v23 + t105;
          const auto t107 = *t106;
          const auto t108 = static_cast<long long>(i104) - i32;
          const auto t109 = v24 + t108;
          const auto t110 = *t109;
          const auto t111 = t107 * 1.0f;
          const auto t112 = t111 * t64;
          const auto t113 = t6 + i104;
          const auto t114 = *t113;
          const auto t115 = t112 * t114;
          const auto t116 = t68 * t115;
          const auto t117 = t116 > 0.0f;
          const auto t118 = static_cast<float>(t117 ? t116 : 0.0f);
          const auto t119 = fabsf(t116);
          const auto t120 = -t119;
          const auto t121 = expf(t120);
          const auto t122 = 1.0f + t121;
          const auto t123 = t122 - 1.0f;
          const auto t124 = logf(t122);
          const auto t125 = t124 * t121;
          const auto t126 = t125 / t123;
          const auto t127 = t122 == 1.0f;
          const auto t128 = static_cast<float>(t127 ? t121 : t126);
          const auto t129 = t118 + t128;
          const auto t130 = t129 < 0.0f;
          const auto t131 = static_cast<float>(t130 ? 1 : 0);
          const auto t132 = t129 > 0.0f;
          const auto t133 = static_cast<float>(t132 ? 1 : 0);
          const auto t134 = t133 - t131;
          const auto t135 = t134 * t62;
          const auto t136 = t110 - t135;
          const auto t137 = t136 / t54;
          const auto t138 = t54 == 0.0f;
          const auto t139 = static_cast<float>(t138 ? 0.0f : t137);
          const auto t140 = fabsf(t116);
          const auto t141 = -t140;
          const auto t142 = expf(t141);
          const auto t143 = 1.0f + t142;
          const auto t144 = t142 / t143;
          const auto t145 = 1.0f / t143;
          const auto t146 = t116 >= 0.0f;
          const auto t147 = static_cast<float>(t146 ? t145 : t144);
          const auto t148 = t139 * t147;
          const auto t149 = t148 * t68;
          const auto t150 = t64 * t114;
          const auto t151 = 1.0f * t150;
          const auto t152 = t149 * t151;
          const auto t153 = 0.0f + t152;
          const auto t154 = 1.0f * t114;
          const auto t155 = t107 * t154;
          const auto t156 = t149 * t155;
          const auto t157 = 0.0f + t156;
          const auto t158 = 1.0f * t64;
          const auto t159 = t107 * t158;
          const auto t160 = t149 * t159;
          const auto t161 = 0.0f + t160;
          const auto t162 = v25 + t108;
          *t162 = t153;
          const auto t163 = v26 + t108;
          const auto t164 = t129 / t54;
          const auto t165 = t54 == 0.0f;
          const auto t166 = static_cast<float>(t165 ? 0.0f : t164);
          *t163 = t166;
          const auto t167 = v27 + t108;
          *t167 = t161;
          const auto t168 = *v103;
          const auto t169 = t168 + t157;
          *v103 = t169;
        }
        const auto t170 = static_cast<long long>(i33) * t11;
        const auto t171 = t0 + t170;
        const auto t172 = static_cast<long long>(i33) * t12;
        const auto t173 = t7 + t172;
        if (t29) {
          const auto t174 = static_cast<long long>(i33) * t11;
          const auto t175 = t18 + t174;
          for (long long i176 = t44; i176 < t49; i176 += 1) {
            const auto t177 = static_cast<long long>(i176) - i32;
            const auto t178 = v25 + t177;
            const auto t179 = *t178;
            const auto t180 = static_cast<long long>(i176) * t11;
            const auto t181 = t1 + t180;
            for (long long i182 = 0; i182 < t11; i182 += 1) {
              const auto t183 = t181 + i182;
              const auto t184 = *t183;
              const auto t185 = t179 * t184;
              const auto t186 = t175 + i182;
              const auto t187 = *t186;
              const auto t188 = t187 + t185;
              *t186 = t188;
            }
          }
          const auto t189 = t21 + i33;
          const auto t190 = *v103;
          const auto t191 = *t189;
          const auto t192 = t191 + t190;
          *t189 = t192;
        }
        if (t31) {
          for (long long i193 = t44; i193 < t49; i193 += 1) {
            const auto t194 = static_cast<long long>(i193) - i32;
            const auto t195 = v25 + t194;
            const auto t196 = *t195;
            const auto t197 = v26 + t194;
            const auto t198 = *t197;
            const auto t199 = static_cast<long long>(i193) * t11;
            const auto t200 = t19 + t199;
            for (long long i201 = 0; i201 < t11; i201 += 1) {
              const auto t202 = t171 + i201;
              const auto t203 = *t202;
              const auto t204 = t196 * t203;
              const auto t205 = t200 + i201;
              const auto t206 = *t205;
              const auto t207 = t206 + t204;
              *t205 = t207;
            }
            const auto t208 = static_cast<long long>(i193) * t12;
            const auto t209 = t20 + t208;
            for (long long i210 = 0; i210 < t12; i210 += 1) {
              const auto t211 = t173 + i210;
              const auto t212 = *t211;
              const auto t213 = t198 * t212;
              const auto t214 = t209 + i210;
              const auto t215 = *t214;
              const auto t216 = t215 + t213;
              *t214 = t216;
            }
            const auto t217 = t22 + i193;
            const auto t218 = v27 + t194;
            const auto t219 = *t218;
            const auto t220 = *t217;
            const auto t221 = t220 + t219;
            *t217 = t221;
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
extern "C" __global__ void attn_backward_rows_1_f32(AttnScalarParams p) {
  long long r;
  if (!attn_thread(p.args[kLq], &r)) return;
  long long a[kArgCount];
  attn_head_args(p, blockIdx.y, a);
  a[kR0] = r;
  a[kR1] = r + 1;
  attn_backward_rows_1(a);
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
  for (long long g = 0; g < p.group; ++g) {
    long long a[kArgCount];
    attn_head_args(p, blockIdx.y * p.group + g, a);
    a[kR0] = 0;
    a[kR1] = a[kLq];
    a[kJ0] = j;
    a[kJ1] = j + 1;
    a[kFlags] = 2;
    attn_backward_gradient(a);
  }
}
#endif  // __CUDACC__
