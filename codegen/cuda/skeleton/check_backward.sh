#!/usr/bin/env bash
# check_backward.sh: compiles the tensor-core backward skeleton (tc_backward.cuh, with
# tc_forward.cuh and tc_common.cuh) with hand-written example variants, exactly as attn's NVRTC
# call does (codegen/cuda/Nvrtc.cpp: --gpu-architecture=sm_XX -std=c++17 -default-device
# --include-path=<cuda>/include --ptxas-options=-v, the skeleton headers passed as NVRTC named
# headers; no host headers), and prints ptxas's registers / spills / stack frame / static smem
# per kernel, with the dynamic shared memory the launch needs.
#
# Each source holds one variant's kernels as the generator writes them (one
# attn_backward_rows_tc_P per row pass P, and attn_backward_grad_tc), all with
# __launch_bounds__(Config::kWarps * 32, 1). Each source also static_asserts that
# backwardRowsSharedBytes<Config>() and backwardGradientSharedBytes<Config, Variant>() equal
# the formulas this script computes (the ones the host has to mirror; see tc_backward.cuh).
#
# The matrix: 4 variants x {fp16, bf16} x D = Dv in {64, 128} x tiles {m64n64w4s2 (default),
# m128n128w8s2} x {sm_80, sm_90}: any spill or compile error there fails the check. Then a few
# "extra" rows exercise the other code paths (two m16 key tiles per warp: m64n128w4; warps
# splitting the head dimension: m128n64w8; sequential dimension splits: D = 256; kStages 1
# and 3); their spills are reported but only compile errors fail.
#
# What it is: a compile-only check (no GPU needed) of the skeleton's source and resource use.
# What it isn't: a correctness test (that needs a GPU and the code generator), or part of the
# build: the NVRTC driver (nvrtc_check_driver.cpp, shared with the other check script) is built
# and the variants are written in a temporary folder under /tmp.
#
# Usage: codegen/cuda/skeleton/check_backward.sh [-j N]   (N parallel compiles, default 2)
# Exit status: 0 when everything compiles and the matrix does not spill; 1 otherwise.
set -euo pipefail

JOBS=2
if [[ "${1:-}" == "-j" && -n "${2:-}" ]]; then JOBS=$2; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CUDA=${CUDA_HOME:-/usr/local/cuda}
WORK=$(mktemp -d /tmp/attn_tc_bwd_check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- the NVRTC driver
g++ -std=c++17 -O1 -o "$WORK/driver" "$HERE/nvrtc_check_driver.cpp" -I"$CUDA/include" -L"$CUDA/lib64" -lnvrtc \
  -Wl,-rpath,"$CUDA/lib64"

# ---------------------------------------------------------------- example variants
cat >"$WORK/variants.cuh" <<'EOF'
// Hand-written stand-ins for generated variants: the backward members of what the code
// generator will emit per program (the forward's members besides kStats, kMask, kWindowLow,
// kQueryNorm and kKeyNorm are not used by the backward and left out).
#pragma once
#include "tc_backward.cuh"

namespace ex {
using attn_tc::BwdRow;
using attn_tc::Mask;

__device__ __forceinline__ float softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

struct Defaults {
  static constexpr long long kWindowLow = 0;
  static constexpr bool kQueryNorm = false;
  static constexpr bool kKeyNorm = false;
  static constexpr int kRowPasses = 0;
  template <int P>
  static __device__ __forceinline__ bool rowTerms(const BwdRow&, float, float, long long, float, float*) {
    return true;
  }
};

// 1. causal softmax(q.k / 8): stats = (sum, max) of the output's OnlineExp Normaliser; one
// identity adjoint T = dO·o; no row pass.
struct Softmax : Defaults {
  static constexpr int kStats = 1, kAdjoints = 1;
  static constexpr Mask kMask = Mask::Causal;
  static __device__ constexpr int level(int) { return 0; }
  static __device__ __forceinline__ bool gradTerms(const BwdRow& row, float s, float g, long long, float, float* x) {
    const float p = expf(s * 0.125f - row.stats[1]) / row.stats[0];
    x[0] = p * (g - row.adj[0]) * 0.125f;
    x[1] = p;
    x[2] = x[3] = 0.0f;
    return true;
  }
};

// 2. LSSA-like: w = softplus(s/8) / sum_j softplus(s/8) (stats[0] = that sum, stats[2] = the
// output's DeferredDivision normaliser); T = sum_j g w needs one row pass (level 1).
struct Lssa : Defaults {
  static constexpr int kStats = 2, kAdjoints = 1, kRowPasses = 1;
  static constexpr Mask kMask = Mask::Causal;
  static __device__ constexpr int level(int) { return 1; }
  template <int P>
  static __device__ __forceinline__ bool rowTerms(const BwdRow& row, float s, float g, long long, float, float* x) {
    const float total = row.stats[0];
    x[0] = g * softplus(s * 0.125f) * (total == 0.0f ? 0.0f : 1.0f / total);
    return true;
  }
  static __device__ __forceinline__ bool gradTerms(const BwdRow& row, float s, float g, long long, float, float* x) {
    const float total = row.stats[0];
    const float inv = total == 0.0f ? 0.0f : 1.0f / total;
    const float e = s * 0.125f;
    x[0] = (g - row.adj[0]) * inv * sigmoid(e) * 0.125f;
    x[1] = softplus(e) * inv;
    x[2] = x[3] = 0.0f;
    return true;
  }
};

// 3. cosine scores (both l2 norms), softmax output, expression mask (j % 3 != 0); a second
// adjoint of level 1 (a row value R summing g * p) with the optional rowFinish hook.
struct ExprCosine : Defaults {
  static constexpr int kStats = 1, kAdjoints = 2, kRowPasses = 1;
  static constexpr Mask kMask = Mask::Expr;
  static constexpr bool kQueryNorm = true;
  static constexpr bool kKeyNorm = true;
  static constexpr bool kRowFinish = true;
  static __device__ constexpr int level(int a) { return a == 0 ? 0 : 1; }
  static __device__ __forceinline__ float prob(const BwdRow& row, float e) { return expf(e - row.stats[1]) / row.stats[0]; }
  template <int P>
  static __device__ __forceinline__ bool rowTerms(const BwdRow& row, float s, float g, long long j, float rk, float* x) {
    x[1] = g * prob(row, s * row.rq * rk * 10.0f);
    return j % 3 != 0;
  }
  template <int P>
  static __device__ __forceinline__ void rowFinish(const BwdRow& row, float* adj) {
    adj[1] = adj[1] * (row.n > 0.0f ? 1.0f / row.n : 0.0f) + 0.5f * adj[0];
  }
  static __device__ __forceinline__ bool gradTerms(const BwdRow& row, float s, float g, long long j, float rk, float* x) {
    const float c = row.rq * rk * 10.0f;
    const float p = prob(row, s * c);
    const float dE = p * (g - row.adj[0] + 0.01f * row.adj[1]);
    x[0] = dE * c;
    x[1] = p;
    x[2] = dE * s * rk * 10.0f;
    x[3] = dE * s * row.rq * 10.0f;
    return j % 3 != 0;
  }
};

// 4. sliding window (128 keys), sigmoid weights re-normalised by their row sum, two row passes
// (levels 1 and 2) and an identity adjoint (level 0).
struct Window2 : Defaults {
  static constexpr int kStats = 2, kAdjoints = 3, kRowPasses = 2;
  static constexpr Mask kMask = Mask::Window;
  static constexpr long long kWindowLow = 127;
  static __device__ constexpr int level(int a) { return a; }
  template <int P>
  static __device__ __forceinline__ bool rowTerms(const BwdRow& row, float s, float g, long long, float, float* x) {
    const float w = sigmoid(s * 0.125f - row.stats[1]);
    if constexpr (P == 1) x[1] = g * w / row.n;
    if constexpr (P == 2) x[2] = (g - row.adj[1]) * w * (1.0f - w) + row.adj[0] / row.stats[0];
    return true;
  }
  static __device__ __forceinline__ bool gradTerms(const BwdRow& row, float s, float g, long long, float, float* x) {
    const float w = sigmoid(s * 0.125f - row.stats[1]);
    x[0] = (g - row.adj[1] - row.adj[2]) * w * (1.0f - w) * 0.125f;
    x[1] = w / row.n;
    x[2] = x[3] = 0.0f;
    return true;
  }
};
}  // namespace ex
EOF

# ---------------------------------------------------------------- sources and jobs
width() { if (($1 % 64 == 0)); then echo "$1"; else echo $(($1 + 8)); fi; }
# The host's formulas (tc_backward.cuh): rows 2 (M + S N)(w(D) + w(Dv)); gradient
# 2 (N (w(D) + w(Dv) + w(M)) + S M (w(D) + w(Dv))) + 4 S M rowFloats.
rows_bytes() { echo $((2 * ($2 + $5 * $3) * ($(width "$1") + $(width "$1")))); }
grad_bytes() { echo $((2 * ($3 * (2 * $(width "$1") + $(width "$2")) + $5 * $2 * 2 * $(width "$1")) + 4 * $5 * $2 * $6)); }
declare -A PASSES=([Softmax]=0 [Lssa]=1 [ExprCosine]=1 [Window2]=2)
declare -A ROWFLOATS=([Softmax]=3 [Lssa]=5 [ExprCosine]=5 [Window2]=7)

jobs_file="$WORK/jobs.txt"
: >"$jobs_file"
add_source() {  # kind variant elem d warps bn stages arch
  local kind=$1 variant=$2 elem=$3 d=$4 warps=$5 bn=$6 stages=$7 arch=$8
  local bm=$((16 * warps))
  local name="${variant}_${elem}_d${d}_m${bm}n${bn}w${warps}s${stages}"
  if [[ ! -f "$WORK/$name.cu" ]]; then
    {
      echo "#include \"variants.cuh\""
      echo "struct Config {"
      echo "  static constexpr int kWarps = $warps, kBlockM = 16 * kWarps, kBlockN = $bn, kStages = $stages;"
      echo "  using Elem = $elem;"
      echo "  static constexpr int kD = $d, kDv = $d;"
      echo "};"
      echo "using Variant = ex::$variant;"
      echo "static_assert(attn_tc::backwardRowsSharedBytes<Config>() == $(rows_bytes "$d" "$bm" "$bn" "$warps" "$stages"), \"rows smem formula\");"
      echo "static_assert(attn_tc::backwardGradientSharedBytes<Config, Variant>() == $(grad_bytes "$d" "$bm" "$bn" "$warps" "$stages" "${ROWFLOATS[$variant]}"), \"gradient smem formula\");"
      for ((p = 1; p <= ${PASSES[$variant]}; ++p)); do
        echo "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_rows_tc_$p(attn_tc::BwdParams p) {"
        echo "  attn_tc::backwardRows<Variant, Config, $p>(p);"
        echo "}"
      done
      echo "extern \"C\" __global__ void __launch_bounds__(Config::kWarps * 32, 1) attn_backward_grad_tc(attn_tc::BwdParams p) {"
      echo "  attn_tc::backwardGradient<Variant, Config>(p);"
      echo "}"
    } >"$WORK/$name.cu"
  fi
  echo "$name $arch $kind $variant $elem $d $bm $bn $warps $stages" >>"$jobs_file"
}

for variant in Softmax Lssa ExprCosine Window2; do
  for elem in __half __nv_bfloat16; do
    for d in 64 128; do
      for tile in "4 64 2" "8 128 2"; do
        read -r warps bn stages <<<"$tile"
        for arch in 80 90; do add_source matrix "$variant" "$elem" "$d" "$warps" "$bn" "$stages" "$arch"; done
      done
    done
  done
done
for variant in Lssa ExprCosine; do
  add_source extra "$variant" __half 64 4 128 2 80   # two m16 key tiles per warp
  add_source extra "$variant" __half 128 4 128 2 80  # ... and a sequential dimension split
  add_source extra "$variant" __half 64 8 64 2 80    # two warps per key group (dimension halves)
  add_source extra "$variant" __half 128 8 64 2 80
  add_source extra "$variant" __half 256 4 64 2 80   # sequential dimension split (D = 256)
  add_source extra "$variant" __half 256 4 64 1 90
  add_source extra "$variant" __half 64 4 64 1 80    # single stage
  add_source extra "$variant" __nv_bfloat16 64 4 64 3 90  # three stages
done

compile_one() {
  local work=$1 here=$2 cuda=$3 name=$4 arch=$5
  "$work/driver" "$arch" "$work/$name.cu" "$cuda/include" "$here/tc_common.cuh" "$here/tc_shape.cuh" "$here/tc_forward.cuh" \
    "$here/tc_backward.cuh" "$work/variants.cuh" >"$work/$name.sm$arch.res" 2>"$work/$name.sm$arch.log" || true
}
export -f compile_one
awk '{print $1, $2}' "$jobs_file" | xargs -P "$JOBS" -n 2 bash -c 'compile_one "$0" "$1" "$2" "$3" "$4"' "$WORK" "$HERE" "$CUDA"

# ---------------------------------------------------------------- the table
status=0
printf '%-6s %-10s %-13s %3s %-12s %5s | %-8s %4s %6s %5s %4s | %7s %5s\n' \
  kind variant elem D tile arch kernel regs spill stack smem dynSmem ms
while read -r name arch kind variant elem d bm bn warps stages; do
  res="$WORK/$name.sm$arch.res"
  ms=$(sed -n 's/^ms=//p' "$res")
  if grep -q COMPILE-ERROR "$res" || ! grep -q '^KERNEL' "$res"; then
    printf '%-6s %-10s %-13s %3s %-12s %5s | COMPILE ERROR\n' "$kind" "$variant" "$elem" "$d" "m${bm}n${bn}w${warps}s${stages}" "sm_$arch"
    sed -n 1,40p "$WORK/$name.sm$arch.log" | sed 's/^/    /'
    status=1
    continue
  fi
  while read -r _ kernel rest; do
    get() { sed -n "s/.*$1=\([0-9-]*\).*/\1/p" <<<"$rest"; }
    spill=$(($(get spill_stores) + $(get spill_loads)))
    case $kernel in
      attn_backward_rows_tc_*) short="rows_${kernel##*_}"; dyn=$(rows_bytes "$d" "$bm" "$bn" "$warps" "$stages") ;;
      *) short=grad; dyn=$(grad_bytes "$d" "$bm" "$bn" "$warps" "$stages" "${ROWFLOATS[$variant]}") ;;
    esac
    flag=""
    if [[ $spill != 0 ]]; then
      flag=" SPILL"
      if [[ $kind == matrix ]]; then status=1; fi
    fi
    if [[ $(get smem) != 0 ]]; then flag="$flag static-smem"; status=1; fi
    printf '%-6s %-10s %-13s %3s %-12s %5s | %-8s %4s %6s %5s %4s | %7s %5s%s\n' "$kind" "$variant" "$elem" "$d" \
      "m${bm}n${bn}w${warps}s${stages}" "sm_$arch" "$short" "$(get regs)" "$spill" "$(get stack)" "$(get smem)" "$dyn" "$ms" "$flag"
    ms=""
  done < <(grep '^KERNEL' "$res")
  if [[ -s "$WORK/$name.sm$arch.log" ]]; then sed -n 1,20p "$WORK/$name.sm$arch.log" | sed 's/^/    /'; fi
done <"$jobs_file"
exit $status
