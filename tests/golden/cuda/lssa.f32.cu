// attn CUDA kernels for 'lssa': float32 path (one thread per query row or key)
// inputs f32, d = 64, dv = 64; stats: 2 reals per row, adjoints: 2 per row
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
  float v59[1];
  float v76[1];
  float v88[1];
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
        const auto t44 = static_cast<long long>(i18) * 2;
        const auto t45 = static_cast<long long>(t44) + 1;
        const auto t46 = t8 + t45;
        const auto t47 = *t46;
        const auto t48 = t5 + i18;
        const auto t49 = *t48;
        const auto t50 = static_cast<float>(t11);
        const auto t51 = logf(t50);
        const auto t52 = logf(t27);
        const auto t53 = t51 * t52;
        const auto t54 = static_cast<long long>(i18) * t11;
        const auto t55 = t0 + t54;
        for (long long i56 = t29; i56 < t34; i56 += 1) {
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
          const auto t68 = static_cast<long long>(i56) - i17;
          const auto t69 = v15 + t68;
          const auto t70 = *v59;
          *t69 = t70;
        }
        const auto t71 = static_cast<long long>(i18) * t12;
        const auto t72 = t7 + t71;
        for (long long i73 = t29; i73 < t34; i73 += 1) {
          const auto t74 = static_cast<long long>(i73) * t12;
          const auto t75 = t2 + t74;
          *v76 = 0.0f;
          for (long long i77 = 0; i77 < t12; i77 += 1) {
            const auto t78 = t75 + i77;
            const auto t79 = *t78;
            const auto t80 = t72 + i77;
            const auto t81 = *t80;
            const auto t82 = t81 * t79;
            const auto t83 = *v76;
            const auto t84 = t83 + t82;
            *v76 = t84;
          }
          const auto t85 = static_cast<long long>(i73) - i17;
          const auto t86 = v16 + t85;
          const auto t87 = *v76;
          *t86 = t87;
        }
        const auto t89 = static_cast<long long>(i18) * 2;
        const auto t90 = static_cast<long long>(t89) + 0;
        const auto t91 = t8 + t90;
        const auto t92 = *t91;
        *v88 = t92;
        for (long long i93 = t29; i93 < t34; i93 += 1) {
          const auto t94 = static_cast<long long>(i93) - i17;
          const auto t95 = v15 + t94;
          const auto t96 = *t95;
          const auto t97 = static_cast<long long>(i93) - i17;
          const auto t98 = v16 + t97;
          const auto t99 = *t98;
          const auto t100 = t99 - t47;
          const auto t101 = t96 * 1.0f;
          const auto t102 = t101 * t49;
          const auto t103 = t6 + i93;
          const auto t104 = *t103;
          const auto t105 = t102 * t104;
          const auto t106 = t53 * t105;
          const auto t107 = t106 > 0.0f;
          const auto t108 = static_cast<float>(t107 ? t106 : 0.0f);
          const auto t109 = fabsf(t106);
          const auto t110 = -t109;
          const auto t111 = expf(t110);
          const auto t112 = 1.0f + t111;
          const auto t113 = t112 - 1.0f;
          const auto t114 = logf(t112);
          const auto t115 = t114 * t111;
          const auto t116 = t115 / t113;
          const auto t117 = t112 == 1.0f;
          const auto t118 = static_cast<float>(t117 ? t111 : t116);
          const auto t119 = t108 + t118;
          const auto t120 = t119 / t39;
          const auto t121 = t39 == 0.0f;
          const auto t122 = static_cast<float>(t121 ? 0.0f : t120);
          const auto t123 = t122 * t100;
          const auto t124 = *v88;
          const auto t125 = t124 + t123;
          *v88 = t125;
        }
        const auto t126 = static_cast<long long>(i18) * 2;
        const auto t127 = static_cast<long long>(t126) + 0;
        const auto t128 = t8 + t127;
        const auto t129 = *v88;
        *t128 = t129;
      }
    }
  }
  for (long long i130 = t13; i130 < t14; i130 += 1) {
    const auto t131 = static_cast<long long>(t10) - t9;
    const auto t132 = static_cast<long long>(t131) + i130;
    const auto t133 = static_cast<long long>(t132) + 1;
    const auto t134 = static_cast<long long>(t133) < t10;
    const auto t135 = static_cast<long long>(t134 ? t133 : t10);
    const auto t136 = static_cast<long long>(t135) - 0;
    const auto t137 = static_cast<long long>(0) > t136;
    const auto t138 = static_cast<long long>(t137 ? 0 : t136);
    const auto t139 = static_cast<float>(t138);
    const auto t140 = static_cast<long long>(i130) * 2;
    const auto t141 = static_cast<long long>(t140) + 0;
    const auto t142 = t4 + t141;
    const auto t143 = *t142;
    const auto t144 = static_cast<long long>(i130) * 2;
    const auto t145 = static_cast<long long>(t144) + 1;
    const auto t146 = t4 + t145;
    const auto t147 = *t146;
    const auto t148 = static_cast<long long>(i130) * 2;
    const auto t149 = static_cast<long long>(t148) + 1;
    const auto t150 = t8 + t149;
    const auto t151 = *t150;
    const auto t152 = t5 + i130;
    const auto t153 = *t152;
    const auto t154 = static_cast<float>(t11);
    const auto t155 = logf(t154);
    const auto t156 = logf(t139);
    const auto t157 = t155 * t156;
  }
}

ATTN_DEVICE void attn_backward_gradient(long long* args) {
  float v23[64];
  float v24[64];
  float v25[64];
  float v26[64];
  float v27[64];
  float v78[1];
  float v95[1];
  float v107[1];
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
        const auto t59 = static_cast<long long>(i33) * 2;
        const auto t60 = static_cast<long long>(t59) + 0;
        const auto t61 = t8 + t60;
        const auto t62 = *t61;
        const auto t63 = static_cast<long long>(i33) * 2;
        const auto t64 = static_cast<long long>(t63) + 1;
        const auto t65 = t8 + t64;
        const auto t66 = *t65;
        const auto t67 = t5 + i33;
        const auto t68 = *t67;
        const auto t69 = static_cast<float>(t11);
        const auto t70 = logf(t69);
        const auto t71 = logf(t42);
        const auto t72 = t70 * t71;
        const auto t73 = static_cast<long long>(i33) * t11;
        const auto t74 = t0 + t73;
        for (long long i75 = t44; i75 < t49; i75 += 1) {
          const auto t76 = static_cast<long long>(i75) * t11;
          const auto t77 = t1 + t76;
          *v78 = 0.0f;
          for (long long i79 = 0; i79 < t11; i79 += 1) {
            const auto t80 = t77 + i79;
            const auto t81 = *t80;
            const auto t82 = t74 + i79;
            const auto t83 = *t82;
            const auto t84 = t83 * t81;
            const auto t85 = *v78;
            const auto t86 = t85 + t84;
            *v78 = t86;
          }
          const auto t87 = static_cast<long long>(i75) - i32;
          const auto t88 = v23 + t87;
          const auto t89 = *v78;
          *t88 = t89;
        }
        const auto t90 = static_cast<long long>(i33) * t12;
        const auto t91 = t7 + t90;
        for (long long i92 = t44; i92 < t49; i92 += 1) {
          const auto t93 = static_cast<long long>(i92) * t12;
          const auto t94 = t2 + t93;
          *v95 = 0.0f;
          for (long long i96 = 0; i96 < t12; i96 += 1) {
            const auto t97 = t94 + i96;
            const auto t98 = *t97;
            const auto t99 = t91 + i96;
            const auto t100 = *t99;
            const auto t101 = t100 * t98;
            const auto t102 = *v95;
            const auto t103 = t102 + t101;
            *v95 = t103;
          }
          const auto t104 = static_cast<long long>(i92) - i32;
          const auto t105 = v24 + t104;
          const auto t106 = *v95;
          *t105 = t106;
        }
        *v107 = 0.0f;
        for (long long i108 = t44; i108 < t49; i108 += 1) {
          const auto t109 = static_cast<long long>(i108) - i32;
          const auto t110 = v23 + t109;
          const auto t111 = *t110;
          const auto t112 = static_cast<long long>(i108) - i32;
          const auto t113 = v24 + t112;
          const auto t114 = *t113;
          const auto t115 = t111 * 1.0f;
          const auto t116 = t115 * t68;
          const auto t117 = t6 + i108;
          const auto t118 = *t117;
          const auto t119 = t116 * t118;
          const auto t120 = t72 * t119;
          const auto t121 = t120 > 0.0f;
          const auto t122 = static_cast<float>(t121 ? t120 : 0.0f);
          const auto t123 = fabsf(t120);
          const auto t124 = -t123;
          const auto t125 = expf(t124);
          const auto t126 = 1.0f + t125;
          const auto t127 = t126 - 1.0f;
          const auto t128 = logf(t126);
          const auto t129 = t128 * t125;
          const auto t130 = t129 / t127;
          const auto t131 = t126 == 1.0f;
          const auto t132 = static_cast<float>(t131 ? t125 : t130);
          const auto t133 = t122 + t132;
          const auto t134 = t133 < 0.0f;
          const auto t135 = static_cast<float>(t134 ? 1 : 0);
          const auto t136 = t133 > 0.0f;
          const auto t137 = static_cast<float>(t136 ? 1 : 0);
          const auto t138 = t137 - t135;
          const auto t139 = t138 * t62;
          const auto t140 = t138 * t66;
          const auto t141 = t114 - t140;
          const auto t142 = t141 - t139;
          const auto t143 = t142 / t54;
          const auto t144 = t54 == 0.0f;
          const auto t145 = static_cast<float>(t144 ? 0.0f : t143);
          const auto t146 = fabsf(t120);
          const auto t147 = -t146;
          const auto t148 = expf(t147);
          const auto t149 = 1.0f + t148;
          const auto t150 = t148 / t149;
          const auto t151 = 1.0f / t149;
          const auto t152 = t120 >= 0.0f;
          const auto t153 = static_cast<float>(t152 ? t151 : t150);
          const auto t154 = t145 * t153;
          const auto t155 = t154 * t72;
          const auto t156 = t68 * t118;
          const auto t157 = 1.0f * t156;
          const auto t158 = t155 * t157;
          const auto t159 = 0.0f + t158;
          const auto t160 = 1.0f * t118;
          const auto t161 = t111 * t160;
          const auto t162 = t155 * t161;
          const auto t163 = 0.0f + t162;
          const auto t164 = 1.0f * t68;
          const auto t165 = t111 * t164;
          const auto t166 = t155 * t165;
          const auto t167 = 0.0f + t166;
          const auto t168 = v25 + t112;
          *t168 = t159;
          const auto t169 = v26 + t112;
          const auto t170 = t133 / t54;
          const auto t171 = t54 == 0.0f;
          const auto t172 = static_cast<float>(t171 ? 0.0f : t170);
          *t169 = t172;
          const auto t173 = v27 + t112;
          *t173 = t167;
          const auto t174 = *v107;
          const auto t175 = t174 + t163;
          *v107 = t175;
        }
        const auto t176 = static_cast<long long>(i33) * t11;
        const auto t177 = t0 + t176;
        const auto t178 = static_cast<long long>(i33) * t12;
        const auto t179 = t7 + t178;
        if (t29) {
          const auto t180 = static_cast<long long>(i33) * t11;
          const auto t181 = t18 + t180;
          for (long long i182 = t44; i182 < t49; i182 += 1) {
            const auto t183 = static_cast<long long>(i182) - i32;
            const auto t184 = v25 + t183;
            const auto t185 = *t184;
            const auto t186 = static_cast<long long>(i182) * t11;
            const auto t187 = t1 + t186;
            for (long long i188 = 0; i188 < t11; i188 += 1) {
              const auto t189 = t187 + i188;
              const auto t190 = *t189;
              const auto t191 = t185 * t190;
              const auto t192 = t181 + i188;
              const auto t193 = *t192;
              const auto t194 = t193 + t191;
              *t192 = t194;
            }
          }
          const auto t195 = t21 + i33;
          const auto t196 = *v107;
          const auto t197 = *t195;
          const auto t198 = t197 + t196;
          *t195 = t198;
        }
        if (t31) {
          for (long long i199 = t44; i199 < t49; i199 += 1) {
            const auto t200 = static_cast<long long>(i199) - i32;
            const auto t201 = v25 + t200;
            const auto t202 = *t201;
            const auto t203 = v26 + t200;
            const auto t204 = *t203;
            const auto t205 = static_cast<long long>(i199) * t11;
            const auto t206 = t19 + t205;
            for (long long i207 = 0; i207 < t11; i207 += 1) {
              const auto t208 = t177 + i207;
              const auto t209 = *t208;
              const auto t210 = t202 * t209;
              const auto t211 = t206 + i207;
              const auto t212 = *t211;
              const auto t213 = t212 + t210;
              *t211 = t213;
            }
            const auto t214 = static_cast<long long>(i199) * t12;
            const auto t215 = t20 + t214;
            for (long long i216 = 0; i216 < t12; i216 += 1) {
              const auto t217 = t179 + i216;
              const auto t218 = *t217;
              const auto t219 = t204 * t218;
              const auto t220 = t215 + i216;
              const auto t221 = *t220;
              const auto t222 = t221 + t219;
              *t220 = t222;
            }
            const auto t223 = t22 + i199;
            const auto t224 = v27 + t200;
            const auto t225 = *t224;
            const auto t226 = *t223;
            const auto t227 = t226 + t225;
            *t223 = t227;
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
