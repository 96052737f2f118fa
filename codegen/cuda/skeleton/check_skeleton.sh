#!/usr/bin/env bash
# check_skeleton.sh: compiles the tensor-core forward skeleton (tc_forward.cuh, tc_common.cuh)
# with hand-written example variants, exactly as attn's NVRTC call does (codegen/cuda/Nvrtc.cpp:
# --gpu-architecture=sm_XX -std=c++17 -default-device --include-path=<cuda>/include
# --ptxas-options=-v, the skeleton headers passed as NVRTC named headers), and prints ptxas's
# registers / spills / stack frame / static smem per kernel, with the dynamic shared memory the
# launch needs (forwardSharedBytes<Config>()).
#
# Every kernel is compiled twice, differing only in the generated kernel line:
#   "lb(T)":   __launch_bounds__(Config::kWarps * 32)      (T threads, as the generator writes it)
#   "lb(T,1)": __launch_bounds__(Config::kWarps * 32, 1)   (minimum 1 block per SM)
# Without a minimum, ptxas may squeeze a kernel that needs a little over 128 or 168 registers
# down to that count (4 or 3 CTAs of 128 threads per SM) and accept a few spilled bytes; with
# the minimum it may use up to 255 registers and does not spill here. The shared memory of
# these configurations (40-80 KB per CTA) limits occupancy to 2-5 CTAs per SM anyway.
#
# What it is: a compile-only check (no GPU needed) of the skeleton's source and resource use.
# What it isn't: a correctness test (that needs a GPU and the code generator), or part of the
# build: the NVRTC driver (nvrtc_check_driver.cpp, shared with the other check script) is built
# and the variants are written in a temporary folder under /tmp.
#
# Usage: codegen/cuda/skeleton/check_skeleton.sh [-j N]   (N parallel compiles, default 2)
# Exit status: 0 when everything compiles and nothing spills under lb(T,1); 1 otherwise.
set -euo pipefail

JOBS=2
if [[ "${1:-}" == "-j" && -n "${2:-}" ]]; then JOBS=$2; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CUDA=${CUDA_HOME:-/usr/local/cuda}
WORK=$(mktemp -d /tmp/attn_tc_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- the NVRTC driver
g++ -std=c++17 -O1 -o "$WORK/driver" "$HERE/nvrtc_check_driver.cpp" -I"$CUDA/include" -L"$CUDA/lib64" -lnvrtc \
  -Wl,-rpath,"$CUDA/lib64"

# ---------------------------------------------------------------- example variants
cat >"$WORK/variants.cuh" <<'EOF'
// Hand-written stand-ins for generated variants (what the code generator will emit per program).
#pragma once
#include "tc_forward.cuh"

namespace ex {
using attn_tc::Mask;
using attn_tc::OutForm;
using attn_tc::Row;
using attn_tc::Stat;

__device__ __forceinline__ float softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); }

// The members every variant has with their usual values; variants override what differs.
struct Defaults {
  static constexpr __host__ __device__ float power(int) { return 0.0f; }
  static constexpr float kOutScale = 1.0f;
  static constexpr float kOutPower = 0.0f;
  static constexpr long long kWindowLow = 0;
  static constexpr bool kQueryNorm = false;
  static constexpr bool kKeyNorm = false;
};

// 1. causal softmax(q.k / 8): one pass, the output's Normaliser only.
struct Softmax : Defaults {
  static constexpr int kPasses = 1, kStats = 1;
  static constexpr __host__ __device__ Stat kind(int) { return Stat::Normaliser; }
  static constexpr __host__ __device__ int pass(int) { return 1; }
  static constexpr OutForm kOutForm = OutForm::OnlineExp;
  static constexpr int kOutStat = 0;
  static constexpr Mask kMask = Mask::Causal;
  template <int P>
  static __device__ __forceinline__ bool operands(const Row&, float s, long long, float, float* x) {
    x[1] = s * 0.125f;
    return true;
  }
};

// 2. LSSA-like: pass 1 sums softplus(s/8) per row; pass 2 outputs softplus(s/8) / that sum,
// deferred division by sum |y|.
struct Lssa : Defaults {
  static constexpr int kPasses = 2, kStats = 2;
  static constexpr __host__ __device__ Stat kind(int s) { return s == 0 ? Stat::Sum : Stat::Normaliser; }
  static constexpr __host__ __device__ int pass(int s) { return s == 0 ? 1 : 2; }
  static constexpr OutForm kOutForm = OutForm::DeferredDivision;
  static constexpr int kOutStat = 1;
  static constexpr Mask kMask = Mask::Causal;
  template <int P>
  static __device__ __forceinline__ bool operands(const Row& row, float s, long long, float, float* x) {
    const float sp = softplus(s * 0.125f);
    if constexpr (P == 1) {
      x[0] = sp;
    } else {
      const float total = row.stats[0];
      x[2] = sp * (total == 0.0f ? 0.0f : 1.0f / total);
    }
    return true;
  }
};

// 3. expression mask (even keys only), cosine scores with both norms, softmax output.
struct ExprCosine : Defaults {
  static constexpr int kPasses = 1, kStats = 1;
  static constexpr __host__ __device__ Stat kind(int) { return Stat::Normaliser; }
  static constexpr __host__ __device__ int pass(int) { return 1; }
  static constexpr OutForm kOutForm = OutForm::OnlineExp;
  static constexpr int kOutStat = 0;
  static constexpr Mask kMask = Mask::Expr;
  static constexpr bool kQueryNorm = true;
  static constexpr bool kKeyNorm = true;
  template <int P>
  static __device__ __forceinline__ bool operands(const Row& row, float s, long long j, float rk, float* x) {
    x[1] = s * row.rq * rk * 10.0f;
    return j % 2 == 0;
  }
};

// 4. power output (p = 2) after a pass with an OnlinePower (p = 3) and an OnlineExp statistic;
// no mask.
struct Power : Defaults {
  static constexpr int kPasses = 2, kStats = 3;
  static constexpr __host__ __device__ Stat kind(int s) {
    return s == 0 ? Stat::OnlinePower : s == 1 ? Stat::OnlineExp : Stat::Normaliser;
  }
  static constexpr __host__ __device__ int pass(int s) { return s < 2 ? 1 : 2; }
  static constexpr __host__ __device__ float power(int s) { return s == 0 ? 3.0f : 0.0f; }
  static constexpr OutForm kOutForm = OutForm::OnlinePower;
  static constexpr int kOutStat = 2;
  static constexpr float kOutPower = 2.0f;
  static constexpr Mask kMask = Mask::Full;
  template <int P>
  static __device__ __forceinline__ bool operands(const Row& row, float s, long long, float, float* x) {
    if constexpr (P == 1) {
      x[0] = s;
      x[1] = s * 0.125f;
    } else {
      const float m = row.stats[1];  // pass 1's power maximum
      x[3] = s * 0.125f + (m > 0.0f ? 0.01f * logf(m) : 0.0f);
    }
    return true;
  }
};

// 5. Direct output (y = s / (8 n), scaled by 0.5) with Max, Min, Mean and Count statistics in
// the same pass, sliding-window mask of 128 keys.
struct DirectMax : Defaults {
  static constexpr int kPasses = 1, kStats = 4;
  static constexpr __host__ __device__ Stat kind(int s) {
    return s == 0 ? Stat::Max : s == 1 ? Stat::Min : s == 2 ? Stat::Mean : Stat::Count;
  }
  static constexpr __host__ __device__ int pass(int) { return 1; }
  static constexpr OutForm kOutForm = OutForm::Direct;
  static constexpr int kOutStat = -1;
  static constexpr float kOutScale = 0.5f;
  static constexpr Mask kMask = Mask::Window;
  static constexpr long long kWindowLow = 127;
  template <int P>
  static __device__ __forceinline__ bool operands(const Row& row, float s, long long, float, float* x) {
    const float e = s * 0.125f;
    x[0] = e;
    x[1] = e;
    x[2] = e;
    x[3] = 0.0f;
    x[4] = e / row.n;
    return true;
  }
};
}  // namespace ex
EOF

# ---------------------------------------------------------------- the matrix
# variant, element, D (= Dv), kBlockN, kWarps, kStages
CONFIGS=("64 64 4 2" "128 64 4 2" "64 128 8 2")
VARIANTS=(Softmax Lssa ExprCosine Power DirectMax)
ELEMS=(__half __nv_bfloat16)
ARCHS=(80 90)

jobs_file="$WORK/jobs.txt"
: >"$jobs_file"
for variant in "${VARIANTS[@]}"; do
  for elem in "${ELEMS[@]}"; do
    for cfg in "${CONFIGS[@]}"; do
      read -r d bn warps stages <<<"$cfg"
      name="${variant}_${elem}_d${d}_n${bn}_w${warps}_s${stages}"
      for lb in plain min1; do
        extra=""
        if [[ $lb == min1 ]]; then extra=", 1"; fi
        cat >"$WORK/$name.$lb.cu" <<EOF
#include "variants.cuh"
struct Config {
  static constexpr int kWarps = $warps, kBlockM = 16 * kWarps, kBlockN = $bn, kStages = $stages;
  using Elem = $elem;
  static constexpr int kD = $d, kDv = $d;
};
using Variant = ex::$variant;
extern "C" __global__ void __launch_bounds__(Config::kWarps * 32$extra) attn_forward_tc(attn_tc::FwdParams p) {
  attn_tc::forward<Variant, Config>(p);
}
EOF
      done
      for arch in "${ARCHS[@]}"; do
        echo "$name $arch $variant $elem $d $bn $warps $stages" >>"$jobs_file"
      done
    done
  done
done

compile_one() {
  local work=$1 here=$2 cuda=$3 name=$4 arch=$5 lb=$6
  local out
  out=$("$work/driver" "$arch" "$work/$name.$lb.cu" "$cuda/include" "$here/tc_common.cuh" "$here/tc_shape.cuh" "$here/tc_forward.cuh" \
    "$work/variants.cuh" 2>"$work/$name.sm$arch.$lb.log") || true
  echo "$name $arch $out" >"$work/$name.sm$arch.$lb.res"
}
export -f compile_one
awk '{print $1, $2, "plain"; print $1, $2, "min1"}' "$jobs_file" |
  xargs -P "$JOBS" -n 3 bash -c 'compile_one "$0" "$1" "$2" "$3" "$4" "$5"' "$WORK" "$HERE" "$CUDA"

# ---------------------------------------------------------------- the table
# forwardSharedBytes<Config>(): a tile row of c elements takes c (c % 64 == 0: swizzled) or
# c + 8 (padded) elements, 2 bytes each.
width() { if (($1 % 64 == 0)); then echo "$1"; else echo $(($1 + 8)); fi; }
status=0
printf '%-10s %-13s %3s %3s %1s %1s %5s | %-22s | %-22s | %6s %5s\n' \
  variant elem D N W S arch "lb(T): regs spill stk" "lb(T,1): regs spill stk" dynSmem ms
while read -r name arch variant elem d bn warps stages; do
  dyn=$((2 * (16 * warps * $(width "$d") + stages * bn * 2 * $(width "$d"))))
  cols=()
  ms=""
  for lb in plain min1; do
    res=$(cat "$WORK/$name.sm$arch.$lb.res")
    if [[ "$res" == *COMPILE-ERROR* || "$res" != *regs=* ]]; then
      cols+=("COMPILE ERROR")
      status=1
      continue
    fi
    get() { sed -n "s/.*$1=\([0-9-]*\).*/\1/p" <<<"$res"; }
    spill=$(($(get spill_stores) + $(get spill_loads)))
    cols+=("$(printf '%4s %5s %4s' "$(get regs)" "$spill" "$(get stack)")")
    ms=$(get ms)
    if [[ $lb == min1 && $spill != 0 ]]; then status=1; fi
    smem=$(get smem)
    if [[ $smem != 0 ]]; then echo "  unexpected static shared memory: $smem bytes"; status=1; fi
  done
  printf '%-10s %-13s %3s %3s %1s %1s %5s | %-22s | %-22s | %6s %5s\n' \
    "$variant" "$elem" "$d" "$bn" "$warps" "$stages" "sm_$arch" "${cols[0]}" "${cols[1]}" "$dyn" "$ms"
  for lb in plain min1; do
    if [[ -s "$WORK/$name.sm$arch.$lb.log" ]]; then sed -n 1,30p "$WORK/$name.sm$arch.$lb.log" | sed 's/^/    /'; fi
  done
done <"$jobs_file"
exit $status
