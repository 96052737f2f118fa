// attn CUDA kernels for 'lssar': float32 path (one thread per query row or key)
// inputs f32, d = 64, dv = 64; stats: 4 reals per row, adjoints: 2 per row
enum AttnArg : int {
  kQ = 0, kK = 1, kV = 2, kO = 3, kStats = 4, kRq = 5, kRk = 6, kDout = 7,
  kAdj = 8, kDq = 9, kDk = 10, kDv = 11, kRqBar = 12, kRkBar = 13, kR0 = 14, kR1 = 15,
  kJ0 = 16, kJ1 = 17, kLq = 18, kLk = 19, kD = 20, kDvDim = 21, kFlags = 22,
  kArgCount = 23
};
#include "scalar_prelude.cuh"

ATTN_DEVICE void attn_forward(long long* args) {
  float v32[64];
  float v33[64];
  float v34[64];
  float v35[64];
  float v75[1];
  float v87[1];
  float v88[1];
  float v175[1];
  float v219[1];
  float v247[1];
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
    const auto t16 = static_cast<long long>(i15) * 4;
    const auto t17 = static_cast<long long>(t16) + 0;
    const auto t18 = t4 + t17;
    *t18 = 0.0f;
    const auto t19 = static_cast<long long>(i15) * 4;
    const auto t20 = static_cast<long long>(t19) + 1;
    const auto t21 = t4 + t20;
    *t21 = 0.0f;
    const auto t22 = static_cast<long long>(i15) * 4;
    const auto t23 = static_cast<long long>(t22) + 2;
    const auto t24 = t4 + t23;
    *t24 = 0.0f;
    const auto t25 = static_cast<long long>(i15) * 4;
    const auto t26 = static_cast<long long>(t25) + 3;
    const auto t27 = t4 + t26;
    *t27 = 0.0f;
    for (long long i28 = 0; i28 < t12; i28 += 1) {
      const auto t29 = static_cast<long long>(i15) * t12;
      const auto t30 = static_cast<long long>(t29) + i28;
      const auto t31 = t3 + t30;
      *t31 = 0.0f;
    }
  }
  const auto t36 = static_cast<long long>(t10) - t9;
  const auto t37 = static_cast<long long>(t36) + t14;
  const auto t38 = static_cast<long long>(t10) < t37;
  const auto t39 = static_cast<long long>(t38 ? t10 : t37);
  for (long long i40 = 0; i40 < t39; i40 += 64) {
    for (long long i41 = t13; i41 < t14; i41 += 1) {
      const auto t42 = static_cast<long long>(t10) - t9;
      const auto t43 = static_cast<long long>(t42) + i41;
      const auto t44 = static_cast<long long>(t43) + 1;
      const auto t45 = static_cast<long long>(t44) < t10;
      const auto t46 = static_cast<long long>(t45 ? t44 : t10);
      const auto t47 = static_cast<long long>(t46) - 0;
      const auto t48 = static_cast<long long>(0) > t47;
      const auto t49 = static_cast<long long>(t48 ? 0 : t47);
      const auto t50 = static_cast<float>(t49);
      const auto t51 = static_cast<long long>(0) > i40;
      const auto t52 = static_cast<long long>(t51 ? 0 : i40);
      const auto t53 = static_cast<long long>(i40) + 64;
      const auto t54 = static_cast<long long>(t46) < t53;
      const auto t55 = static_cast<long long>(t54 ? t46 : t53);
      const auto t56 = static_cast<long long>(t55) < t39;
      const auto t57 = static_cast<long long>(t56 ? t55 : t39);
      const auto t58 = static_cast<long long>(t52) < t57;
      if (t58) {
        const auto t59 = t5 + i41;
        const auto t60 = *t59;
        const auto t61 = static_cast<float>(t11);
        const auto t62 = logf(t61);
        const auto t63 = logf(t50);
        const auto t64 = t62 * t63;
        const auto t65 = static_cast<float>(t43);
        const auto t66 = t65 < 3.0f;
        const auto t67 = static_cast<float>(t66 ? 1 : 0);
        const auto t68 = t67 != 0;
        const auto t69 = static_cast<float>(t68 ? 0.0f : 1.0f);
        const auto t70 = static_cast<long long>(i41) * t11;
        const auto t71 = t0 + t70;
        for (long long i72 = t52; i72 < t57; i72 += 1) {
          const auto t73 = static_cast<long long>(i72) * t11;
          const auto t74 = t1 + t73;
          *v75 = 0.0f;
          for (long long i76 = 0; i76 < t11; i76 += 1) {
            const auto t77 = t74 + i76;
            const auto t78 = *t77;
            const auto t79 = t71 + i76;
            const auto t80 = *t79;
            const auto t81 = t80 * t78;
            const auto t82 = *v75;
            const auto t83 = t82 + t81;
            *v75 = t83;
          }
          const auto t84 = static_cast<long long>(i72) - i40;
          const auto t85 = v32 + t84;
          const auto t86 = *v75;
          *t85 = t86;
        }
        const auto t89 = static_cast<long long>(i41) * 4;
        const auto t90 = static_cast<long long>(t89) + 0;
        const auto t91 = t4 + t90;
        const auto t92 = *t91;
        *v87 = t92;
        const auto t93 = static_cast<long long>(i41) * 4;
        const auto t94 = static_cast<long long>(t93) + 1;
        const auto t95 = t4 + t94;
        const auto t96 = *t95;
        *v88 = t96;
        for (long long i97 = t52; i97 < t57; i97 += 1) {
          const auto t98 = static_cast<long long>(i97) - i40;
          const auto t99 = v32 + t98;
          const auto t100 = *t99;
          const auto t101 = static_cast<long long>(i97) - i40;
          const auto t102 = *v87;
          const auto t103 = t100 * 1.0f;
          const auto t104 = t103 * t60;
          const auto t105 = t6 + i97;
          const auto t106 = *t105;
          const auto t107 = t104 * t106;
          const auto t108 = t64 * t107;
          const auto t109 = t108 > 0.0f;
          const auto t110 = static_cast<float>(t109 ? t108 : 0.0f);
          const auto t111 = fabsf(t108);
          const auto t112 = -t111;
          const auto t113 = expf(t112);
          const auto t114 = 1.0f + t113;
          const auto t115 = t114 - 1.0f;
          const auto t116 = logf(t114);
          const auto t117 = t116 * t113;
          const auto t118 = t117 / t115;
          const auto t119 = t114 == 1.0f;
          const auto t120 = static_cast<float>(t119 ? t113 : t118);
          const auto t121 = t110 + t120;
          const auto t122 = fabsf(t121);
          const auto t123 = t102 + t122;
          *v87 = t123;
        }
        const auto t124 = static_cast<long long>(i41) * 4;
        const auto t125 = static_cast<long long>(t124) + 0;
        const auto t126 = t4 + t125;
        const auto t127 = *v87;
        *t126 = t127;
        const auto t128 = static_cast<long long>(i41) * 4;
        const auto t129 = static_cast<long long>(t128) + 1;
        const auto t130 = t4 + t129;
        const auto t131 = *v88;
        *t130 = t131;
      }
    }
  }
  for (long long i132 = 0; i132 < t39; i132 += 64) {
    for (long long i133 = t13; i133 < t14; i133 += 1) {
      const auto t134 = static_cast<long long>(t10) - t9;
      const auto t135 = static_cast<long long>(t134) + i133;
      const auto t136 = static_cast<long long>(t135) + 1;
      const auto t137 = static_cast<long long>(t136) < t10;
      const auto t138 = static_cast<long long>(t137 ? t136 : t10);
      const auto t139 = static_cast<long long>(t138) - 0;
      const auto t140 = static_cast<long long>(0) > t139;
      const auto t141 = static_cast<long long>(t140 ? 0 : t139);
      const auto t142 = static_cast<float>(t141);
      const auto t143 = static_cast<long long>(0) > i132;
      const auto t144 = static_cast<long long>(t143 ? 0 : i132);
      const auto t145 = static_cast<long long>(i132) + 64;
      const auto t146 = static_cast<long long>(t138) < t145;
      const auto t147 = static_cast<long long>(t146 ? t138 : t145);
      const auto t148 = static_cast<long long>(t147) < t39;
      const auto t149 = static_cast<long long>(t148 ? t147 : t39);
      const auto t150 = static_cast<long long>(t144) < t149;
      if (t150) {
        const auto t151 = static_cast<long long>(i133) * 4;
        const auto t152 = static_cast<long long>(t151) + 0;
        const auto t153 = t4 + t152;
        const auto t154 = *t153;
        const auto t155 = static_cast<long long>(i133) * 4;
        const auto t156 = static_cast<long long>(t155) + 1;
        const auto t157 = t4 + t156;
        const auto t158 = *t157;
        const auto t159 = t5 + i133;
        const auto t160 = *t159;
        const auto t161 = static_cast<float>(t11);
        const auto t162 = logf(t161);
        const auto t163 = logf(t142);
        const auto t164 = t162 * t163;
        const auto t165 = static_cast<float>(t135);
        const auto t166 = t165 < 3.0f;
        const auto t167 = static_cast<float>(t166 ? 1 : 0);
        const auto t168 = t167 != 0;
        const auto t169 = static_cast<float>(t168 ? 0.0f : 1.0f);
        const auto t170 = static_cast<long long>(i133) * t11;
        const auto t171 = t0 + t170;
        for (long long i172 = t144; i172 < t149; i172 += 1) {
          const auto t173 = static_cast<long long>(i172) * t11;
          const auto t174 = t1 + t173;
          *v175 = 0.0f;
          for (long long i176 = 0; i176 < t11; i176 += 1) {
            const auto t177 = t174 + i176;
            const auto t178 = *t177;
            const auto t179 = t171 + i176;
            const auto t180 = *t179;
            const auto t181 = t180 * t178;
            const auto t182 = *v175;
            const auto t183 = t182 + t181;
            *v175 = t183;
          }
          const auto t184 = static_cast<long long>(i172) - i132;
          const auto t185 = v32 + t184;
          const auto t186 = *v175;
          *t185 = t186;
        }
        for (long long i187 = t144; i187 < t149; i187 += 1) {
          const auto t188 = static_cast<long long>(i187) - i132;
          const auto t189 = v32 + t188;
          const auto t190 = *t189;
          const auto t191 = static_cast<long long>(i187) - i132;
          const auto t192 = t190 * 1.0f;
          const auto t193 = t192 * t160;
          const auto t194 = t6 + i187;
          const auto t195 = *t194;
          const auto t196 = t193 * t195;
          const auto t197 = t164 * t196;
          const auto t198 = t197 > 0.0f;
          const auto t199 = static_cast<float>(t198 ? t197 : 0.0f);
          const auto t200 = fabsf(t197);
          const auto t201 = -t200;
          const auto t202 = expf(t201);
          const auto t203 = 1.0f + t202;
          const auto t204 = t203 - 1.0f;
          const auto t205 = logf(t203);
          const auto t206 = t205 * t202;
          const auto t207 = t206 / t204;
          const auto t208 = t203 == 1.0f;
          const auto t209 = static_cast<float>(t208 ? t202 : t207);
          const auto t210 = t199 + t209;
          const auto t211 = t210 / t154;
          const auto t212 = t154 == 0.0f;
          const auto t213 = static_cast<float>(t212 ? 0.0f : t211);
          const auto t214 = t142 * t213;
          const auto t215 = t214 - t169;
          const auto t216 = t215 <= 0.0f;
          const auto t217 = static_cast<float>(t216 ? 0.0f : t215);
          const auto t218 = v35 + t191;
          *t218 = t217;
        }
        *v219 = 0.0f;
        for (long long i220 = t144; i220 < t149; i220 += 1) {
          const auto t221 = static_cast<long long>(i220) - i132;
          const auto t222 = v35 + t221;
          const auto t223 = *t222;
          const auto t224 = fabsf(t223);
          const auto t225 = *v219;
          const auto t226 = t225 < t224;
          const auto t227 = static_cast<float>(t226 ? t224 : t225);
          const auto t228 = t224 != t224;
          const auto t229 = static_cast<float>(t228 ? t224 : t227);
          *v219 = t229;
        }
        const auto t230 = static_cast<long long>(i133) * 4;
        const auto t231 = static_cast<long long>(t230) + 2;
        const auto t232 = t4 + t231;
        const auto t233 = static_cast<long long>(i133) * 4;
        const auto t234 = static_cast<long long>(t233) + 3;
        const auto t235 = t4 + t234;
        const auto t236 = *t235;
        const auto t237 = *t232;
        const auto t238 = *v219;
        const auto t239 = t236 < t238;
        const auto t240 = static_cast<float>(t239 ? t238 : t236);
        const auto t241 = t238 != t238;
        const auto t242 = static_cast<float>(t241 ? t238 : t240);
        const auto t243 = t236 / t242;
        const auto t244 = attn_powi(t243, 15);
        const auto t245 = t236 <= 0.0f;
        const auto t246 = static_cast<float>(t245 ? 0.0f : t244);
        const auto t248 = t237 * t246;
        *v247 = t248;
        const auto t249 = static_cast<long long>(i133) * t12;
        const auto t250 = t3 + t249;
        for (long long i251 = 0; i251 < t12; i251 += 1) {
          const auto t252 = t250 + i251;
          const auto t253 = *t252;
          const auto t254 = t253 * t246;
          *t252 = t254;
        }
        const auto t255 = t242 <= 0.0f;
        for (long long i256 = t144; i256 < t149; i256 += 1) {
          const auto t257 = static_cast<long long>(i256) - i132;
          const auto t258 = v35 + t257;
          const auto t259 = *t258;
          const auto t260 = t259 / t242;
          const auto t261 = attn_powi(t260, 15);
          const auto t262 = static_cast<float>(t255 ? 0.0f : t261);
          const auto t263 = fabsf(t262);
          const auto t264 = *v247;
          const auto t265 = t264 + t263;
          *v247 = t265;
          const auto t266 = v33 + t257;
          *t266 = t262;
        }
        const auto t267 = *v247;
        *t232 = t267;
        *t235 = t242;
        const auto t268 = static_cast<long long>(i133) * t12;
        const auto t269 = t3 + t268;
        for (long long i270 = t144; i270 < t149; i270 += 1) {
          const auto t271 = static_cast<long long>(i270) - i132;
          const auto t272 = v33 + t271;
          const auto t273 = *t272;
          const auto t274 = static_cast<long long>(i270) * t12;
          const auto t275 = t2 + t274;
          for (long long i276 = 0; i276 < t12; i276 += 1) {
            const auto t277 = t275 + i276;
            const auto t278 = *t277;
            const auto t279 = t273 * t278;
            const auto t280 = t269 + i276;
            const auto t281 = *t280;
            const auto t282 = t281 + t279;
            *t280 = t282;
          }
        }
      }
    }
  }
  for (long long i283 = t13; i283 < t14; i283 += 1) {
    const auto t284 = static_cast<long long>(i283) * 4;
    const auto t285 = static_cast<long long>(t284) + 2;
    const auto t286 = t4 + t285;
    const auto t287 = *t286;
    const auto t288 = 1.0f / t287;
    const auto t289 = t287 == 0.0f;
    const auto t290 = static_cast<float>(t289 ? 0.0f : t288);
    const auto t291 = static_cast<long long>(i283) * t12;
    const auto t292 = t3 + t291;
    for (long long i293 = 0; i293 < t12; i293 += 1) {
      const auto t294 = t292 + i293;
      const auto t295 = *t294;
      const auto t296 = t295 * t290;
      *t294 = t296;
    }
  }
}

ATTN_DEVICE void attn_backward_rows_1(long long* args) {
  float v15[64];
  float v16[64];
  float v72[1];
  float v89[1];
  float v101[1];
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
        const auto t36 = static_cast<long long>(i18) * 4;
        const auto t37 = static_cast<long long>(t36) + 0;
        const auto t38 = t4 + t37;
        const auto t39 = *t38;
        const auto t40 = static_cast<long long>(i18) * 4;
        const auto t41 = static_cast<long long>(t40) + 1;
        const auto t42 = t4 + t41;
        const auto t43 = *t42;
        const auto t44 = static_cast<long long>(i18) * 4;
        const auto t45 = static_cast<long long>(t44) + 2;
        const auto t46 = t4 + t45;
        const auto t47 = *t46;
        const auto t48 = static_cast<long long>(i18) * 4;
        const auto t49 = static_cast<long long>(t48) + 3;
        const auto t50 = t4 + t49;
        const auto t51 = *t50;
        const auto t52 = static_cast<long long>(i18) * 2;
        const auto t53 = static_cast<long long>(t52) + 1;
        const auto t54 = t8 + t53;
        const auto t55 = *t54;
        const auto t56 = t5 + i18;
        const auto t57 = *t56;
        const auto t58 = static_cast<float>(t11);
        const auto t59 = logf(t58);
        const auto t60 = logf(t27);
        const auto t61 = t59 * t60;
        const auto t62 = static_cast<float>(t20);
        const auto t63 = t62 < 3.0f;
        const auto t64 = static_cast<float>(t63 ? 1 : 0);
        const auto t65 = t64 != 0;
        const auto t66 = static_cast<float>(t65 ? 0.0f : 1.0f);
        const auto t67 = static_cast<long long>(i18) * t11;
        const auto t68 = t0 + t67;
        for (long long i69 = t29; i69 < t34; i69 += 1) {
          const auto t70 = static_cast<long long>(i69) * t11;
          const auto t71 = t1 + t70;
          *v72 = 0.0f;
          for (long long i73 = 0; i73 < t11; i73 += 1) {
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
          const auto t82 = v15 + t81;
          const auto t83 = *v72;
          *t82 = t83;
        }
        const auto t84 = static_cast<long long>(i18) * t12;
        const auto t85 = t7 + t84;
        for (long long i86 = t29; i86 < t34; i86 += 1) {
          const auto t87 = static_cast<long long>(i86) * t12;
          const auto t88 = t2 + t87;
          *v89 = 0.0f;
          for (long long i90 = 0; i90 < t12; i90 += 1) {
            const auto t91 = t88 + i90;
            const auto t92 = *t91;
            const auto t93 = t85 + i90;
            const auto t94 = *t93;
            const auto t95 = t94 * t92;
            const auto t96 = *v89;
            const auto t97 = t96 + t95;
            *v89 = t97;
          }
          const auto t98 = static_cast<long long>(i86) - i17;
          const auto t99 = v16 + t98;
          const auto t100 = *v89;
          *t99 = t100;
        }
        const auto t102 = static_cast<long long>(i18) * 2;
        const auto t103 = static_cast<long long>(t102) + 0;
        const auto t104 = t8 + t103;
        const auto t105 = *t104;
        *v101 = t105;
        for (long long i106 = t29; i106 < t34; i106 += 1) {
          const auto t107 = static_cast<long long>(i106) - i17;
          const auto t108 = v15 + t107;
          const auto t109 = *t108;
          const auto t110 = static_cast<long long>(i106) - i17;
          const auto t111 = v16 + t110;
          const auto t112 = *t111;
          const auto t113 = t109 * 1.0f;
          const auto t114 = t113 * t57;
          const auto t115 = t6 + i106;
          const auto t116 = *t115;
          const auto t117 = t114 * t116;
          const auto t118 = t61 * t117;
          const auto t119 = t118 > 0.0f;
          const auto t120 = static_cast<float>(t119 ? t118 : 0.0f);
          const auto t121 = fabsf(t118);
          const auto t122 = -t121;
          const auto t123 = expf(t122);
          const auto t124 = 1.0f + t123;
          const auto t125 = t124 - 1.0f;
          const auto t126 = logf(t124);
          const auto t127 = t126 * t123;
          const auto t128 = t127 / t125;
          const auto t129 = t124 == 1.0f;
          const auto t130 = static_cast<float>(t129 ? t123 : t128);
          const auto t131 = t120 + t130;
          const auto t132 = t131 / t39;
          const auto t133 = t39 == 0.0f;
          const auto t134 = static_cast<float>(t133 ? 0.0f : t132);
          const auto t135 = t27 * t134;
          const auto t136 = t135 - t66;
          const auto t137 = t136 <= 0.0f;
          const auto t138 = static_cast<float>(t137 ? 0.0f : t136);
          const auto t139 = t138 / t51;
          const auto t140 = attn_powi(t139, 15);
          const auto t141 = t140 < 0.0f;
          const auto t142 = static_cast<float>(t141 ? 1 : 0);
          const auto t143 = t140 > 0.0f;
          const auto t144 = static_cast<float>(t143 ? 1 : 0);
          const auto t145 = t144 - t142;
          const auto t146 = t145 * t55;
          const auto t147 = t112 - t146;
          const auto t148 = t51 == 0.0f;
          const auto t149 = t47 == 0.0f;
          const auto t150 = t149 || t148;
          const auto t151 = t51 * t47;
          const auto t152 = attn_powi(t139, 14);
          const auto t153 = 15.0f * t152;
          const auto t154 = t153 / t151;
          const auto t155 = t147 * t154;
          const auto t156 = static_cast<float>(t150 ? 0.0f : t155);
          const auto t157 = t136 > 0.0f;
          const auto t158 = static_cast<float>(t157 ? t156 : 0.0f);
          const auto t159 = t158 * t27;
          const auto t160 = t159 * t134;
          const auto t161 = *v101;
          const auto t162 = t161 + t160;
          *v101 = t162;
        }
        const auto t163 = static_cast<long long>(i18) * 2;
        const auto t164 = static_cast<long long>(t163) + 0;
        const auto t165 = t8 + t164;
        const auto t166 = *v101;
        *t165 = t166;
      }
    }
  }
  for (long long i167 = t13; i167 < t14; i167 += 1) {
    const auto t168 = static_cast<long long>(t10) - t9;
    const auto t169 = static_cast<long long>(t168) + i167;
    const auto t170 = static_cast<long long>(t169) + 1;
    const auto t171 = static_cast<long long>(t170) < t10;
    const auto t172 = static_cast<long long>(t171 ? t170 : t10);
    const auto t173 = static_cast<long long>(t172) - 0;
    const auto t174 = static_cast<long long>(0) > t173;
    const auto t175 = static_cast<long long>(t174 ? 0 : t173);
    const auto t176 = static_cast<float>(t175);
    const auto t177 = static_cast<long long>(i167) * 4;
    const auto t178 = static_cast<long long>(t177) + 0;
    const auto t179 = t4 + t178;
    const auto t180 = *t179;
    const auto t181 = static_cast<long long>(i167) * 4;
    const auto t182 = static_cast<long long>(t181) + 1;
    const auto t183 = t4 + t182;
    const auto t184 = *t183;
    const auto t185 = static_cast<long long>(i167) * 4;
    const auto t186 = static_cast<long long>(t185) + 2;
    const auto t187 = t4 + t186;
    const auto t188 = *t187;
    const auto t189 = static_cast<long long>(i167) * 4;
    const auto t190 = static_cast<long long>(t189) + 3;
    const auto t191 = t4 + t190;
    const auto t192 = *t191;
    const auto t193 = static_cast<long long>(i167) * 2;
    const auto t194 = static_cast<long long>(t193) + 1;
    const auto t195 = t8 + t194;
    const auto t196 = *t195;
    const auto t197 = t5 + i167;
    const auto t198 = *t197;
    const auto t199 = static_cast<float>(t11);
    const auto t200 = logf(t199);
    const auto t201 = logf(t176);
    const auto t202 = t200 * t201;
    const auto t203 = static_cast<float>(t169);
    const auto t204 = t203 < 3.0f;
    const auto t205 = static_cast<float>(t204 ? 1 : 0);
    const auto t206 = t205 != 0;
    const auto t207 = static_cast<float>(t206 ? 0.0f : 1.0f);
  }
}

ATTN_DEVICE void attn_backward_gradient(long long* args) {
  float v23[64];
  float v24[64];
  float v25[64];
  float v26[64];
  float v27[64];
  float v91[1];
  float v108[1];
  float v120[1];
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
        const auto t51 = static_cast<long long>(i33) * 4;
        const auto t52 = static_cast<long long>(t51) + 0;
        const auto t53 = t4 + t52;
        const auto t54 = *t53;
        const auto t55 = static_cast<long long>(i33) * 4;
        const auto t56 = static_cast<long long>(t55) + 1;
        const auto t57 = t4 + t56;
        const auto t58 = *t57;
        const auto t59 = static_cast<long long>(i33) * 4;
        const auto t60 = static_cast<long long>(t59) + 2;
        const auto t61 = t4 + t60;
        const auto t62 = *t61;
        const auto t63 = static_cast<long long>(i33) * 4;
        const auto t64 = static_cast<long long>(t63) + 3;
        const auto t65 = t4 + t64;
        const auto t66 = *t65;
        const auto t67 = static_cast<long long>(i33) * 2;
        const auto t68 = static_cast<long long>(t67) + 0;
        const auto t69 = t8 + t68;
        const auto t70 = *t69;
        const auto t71 = static_cast<long long>(i33) * 2;
        const auto t72 = static_cast<long long>(t71) + 1;
        const auto t73 = t8 + t72;
        const auto t74 = *t73;
        const auto t75 = t5 + i33;
        const auto t76 = *t75;
        const auto t77 = static_cast<float>(t11);
        const auto t78 = logf(t77);
        const auto t79 = logf(t42);
        const auto t80 = t78 * t79;
        const auto t81 = static_cast<float>(t35);
        const auto t82 = t81 < 3.0f;
        const auto t83 = static_cast<float>(t82 ? 1 : 0);
        const auto t84 = t83 != 0;
        const auto t85 = static_cast<float>(t84 ? 0.0f : 1.0f);
        const auto t86 = static_cast<long long>(i33) * t11;
        const auto t87 = t0 + t86;
        for (long long i88 = t44; i88 < t49; i88 += 1) {
          const auto t89 = static_cast<long long>(i88) * t11;
          const auto t90 = t1 + t89;
          *v91 = 0.0f;
          for (long long i92 = 0; i92 < t11; i92 += 1) {
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
          const auto t101 = v23 + t100;
          const auto t102 = *v91;
          *t101 = t102;
        }
        const auto t103 = static_cast<long long>(i33) * t12;
        const auto t104 = t7 + t103;
        for (long long i105 = t44; i105 < t49; i105 += 1) {
          const auto t106 = static_cast<long long>(i105) * t12;
          const auto t107 = t2 + t106;
          *v108 = 0.0f;
          for (long long i109 = 0; i109 < t12; i109 += 1) {
            const auto t110 = t107 + i109;
            const auto t111 = *t110;
            const auto t112 = t104 + i109;
            const auto t113 = *t112;
            const auto t114 = t113 * t111;
            const auto t115 = *v108;
            const auto t116 = t115 + t114;
            *v108 = t116;
          }
          const auto t117 = static_cast<long long>(i105) - i32;
          const auto t118 = v24 + t117;
          const auto t119 = *v108;
          *t118 = t119;
        }
        *v120 = 0.0f;
        for (long long i121 = t44; i121 < t49; i121 += 1) {
          const auto t122 = static_cast<long long>(i121) - i32;
          const auto t123 = v23 + t122;
          const auto t124 = *t123;
          const auto t125 = static_cast<long long>(i121) - i32;
          const auto t126 = v24 + t125;
          const auto t127 = *t126;
          const auto t128 = t124 * 1.0f;
          const auto t129 = t128 * t76;
          const auto t130 = t6 + i121;
          const auto t131 = *t130;
          const auto t132 = t129 * t131;
          const auto t133 = t80 * t132;
          const auto t134 = t133 > 0.0f;
          const auto t135 = static_cast<float>(t134 ? t133 : 0.0f);
          const auto t136 = fabsf(t133);
          const auto t137 = -t136;
          const auto t138 = expf(t137);
          const auto t139 = 1.0f + t138;
          const auto t140 = t139 - 1.0f;
          const auto t141 = logf(t139);
          const auto t142 = t141 * t138;
          const auto t143 = t142 / t140;
          const auto t144 = t139 == 1.0f;
          const auto t145 = static_cast<float>(t144 ? t138 : t143);
          const auto t146 = t135 + t145;
          const auto t147 = t146 / t54;
          const auto t148 = t54 == 0.0f;
          const auto t149 = static_cast<float>(t148 ? 0.0f : t147);
          const auto t150 = t42 * t149;
          const auto t151 = t150 - t85;
          const auto t152 = t151 <= 0.0f;
          const auto t153 = static_cast<float>(t152 ? 0.0f : t151);
          const auto t154 = t153 / t66;
          const auto t155 = attn_powi(t154, 15);
          const auto t156 = t155 < 0.0f;
          const auto t157 = static_cast<float>(t156 ? 1 : 0);
          const auto t158 = t155 > 0.0f;
          const auto t159 = static_cast<float>(t158 ? 1 : 0);
          const auto t160 = t159 - t157;
          const auto t161 = t160 * t74;
          const auto t162 = t127 - t161;
          const auto t163 = t66 == 0.0f;
          const auto t164 = t62 == 0.0f;
          const auto t165 = t164 || t163;
          const auto t166 = t66 * t62;
          const auto t167 = attn_powi(t154, 14);
          const auto t168 = 15.0f * t167;
          const auto t169 = t168 / t166;
          const auto t170 = t162 * t169;
          const auto t171 = static_cast<float>(t165 ? 0.0f : t170);
          const auto t172 = t151 > 0.0f;
          const auto t173 = static_cast<float>(t172 ? t171 : 0.0f);
          const auto t174 = t173 * t42;
          const auto t175 = t146 < 0.0f;
          const auto t176 = static_cast<float>(t175 ? 1 : 0);
          const auto t177 = t146 > 0.0f;
          const auto t178 = static_cast<float>(t177 ? 1 : 0);
          const auto t179 = t178 - t176;
          const auto t180 = t179 * t70;
          const auto t181 = t174 - t180;
          const auto t182 = t181 / t54;
          const auto t183 = t54 == 0.0f;
          const auto t184 = static_cast<float>(t183 ? 0.0f : t182);
          const auto t185 = fabsf(t133);
          const auto t186 = -t185;
          const auto t187 = expf(t186);
          const auto t188 = 1.0f + t187;
          const auto t189 = t187 / t188;
          const auto t190 = 1.0f / t188;
          const auto t191 = t133 >= 0.0f;
          const auto t192 = static_cast<float>(t191 ? t190 : t189);
          const auto t193 = t184 * t192;
          const auto t194 = t193 * t80;
          const auto t195 = t76 * t131;
          const auto t196 = 1.0f * t195;
          const auto t197 = t194 * t196;
          const auto t198 = 0.0f + t197;
          const auto t199 = 1.0f * t131;
          const auto t200 = t124 * t199;
          const auto t201 = t194 * t200;
          const auto t202 = 0.0f + t201;
          const auto t203 = 1.0f * t76;
          const auto t204 = t124 * t203;
          const auto t205 = t194 * t204;
          const auto t206 = 0.0f + t205;
          const auto t207 = v25 + t125;
          *t207 = t198;
          const auto t208 = v26 + t125;
          const auto t209 = t66 == 0.0f;
          const auto t210 = t62 == 0.0f;
          const auto t211 = t210 || t209;
          const auto t212 = t153 / t66;
          const auto t213 = attn_powi(t212, 15);
          const auto t214 = t213 / t62;
          const auto t215 = static_cast<float>(t211 ? 0.0f : t214);
          *t208 = t215;
          const auto t216 = v27 + t125;
          *t216 = t206;
          const auto t217 = *v120;
          const auto t218 = t217 + t202;
          *v120 = t218;
        }
        const auto t219 = static_cast<long long>(i33) * t11;
        const auto t220 = t0 + t219;
        const auto t221 = static_cast<long long>(i33) * t12;
        const auto t222 = t7 + t221;
        if (t29) {
          const auto t223 = static_cast<long long>(i33) * t11;
          const auto t224 = t18 + t223;
          for (long long i225 = t44; i225 < t49; i225 += 1) {
            const auto t226 = static_cast<long long>(i225) - i32;
            const auto t227 = v25 + t226;
            const auto t228 = *t227;
            const auto t229 = static_cast<long long>(i225) * t11;
            const auto t230 = t1 + t229;
            for (long long i231 = 0; i231 < t11; i231 += 1) {
              const auto t232 = t230 + i231;
              const auto t233 = *t232;
              const auto t234 = t228 * t233;
              const auto t235 = t224 + i231;
              const auto t236 = *t235;
              const auto t237 = t236 + t234;
              *t235 = t237;
            }
          }
          const auto t238 = t21 + i33;
          const auto t239 = *v120;
          const auto t240 = *t238;
          const auto t241 = t240 + t239;
          *t238 = t241;
        }
        if (t31) {
          for (long long i242 = t44; i242 < t49; i242 += 1) {
            const auto t243 = static_cast<long long>(i242) - i32;
            const auto t244 = v25 + t243;
            const auto t245 = *t244;
            const auto t246 = v26 + t243;
            const auto t247 = *t246;
            const auto t248 = static_cast<long long>(i242) * t11;
            const auto t249 = t19 + t248;
            for (long long i250 = 0; i250 < t11; i250 += 1) {
              const auto t251 = t220 + i250;
              const auto t252 = *t251;
              const auto t253 = t245 * t252;
              const auto t254 = t249 + i250;
              const auto t255 = *t254;
              const auto t256 = t255 + t253;
              *t254 = t256;
            }
            const auto t257 = static_cast<long long>(i242) * t12;
            const auto t258 = t20 + t257;
            for (long long i259 = 0; i259 < t12; i259 += 1) {
              const auto t260 = t222 + i259;
              const auto t261 = *t260;
              const auto t262 = t247 * t261;
              const auto t263 = t258 + i259;
              const auto t264 = *t263;
              const auto t265 = t264 + t262;
              *t263 = t265;
            }
            const auto t266 = t22 + i242;
            const auto t267 = v27 + t243;
            const auto t268 = *t267;
            const auto t269 = *t266;
            const auto t270 = t269 + t268;
            *t266 = t270;
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
