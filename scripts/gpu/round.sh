#!/usr/bin/env bash
# One round on the lent GPU machine: build, check, sanitize, tune, benchmark, train — the steps
# named on the command line (default: all), in that order, inside one device call.
#
#   bash scripts/gpu/round.sh build test sanitize          # a fresh machine: build and prove
#   bash scripts/gpu/round.sh tune bench train             # the same warm machine: measure
#   bash scripts/gpu/round.sh profile                       # ncu: why (bench/profile_kernels.py)
#
# Every step has a time budget (seconds, from the environment) and the whole round a deadline
# (ATTN_ROUND_DEADLINE, default 570 s: the device tool's limit is 600), so a slow step is cut
# short and the steps after it still run and report; the exit status is 1 if any step failed,
# timed out or was skipped. Logs go to $OUT (the tool brings back at most
# 8 files: build.sh writes 3, this script at most 5: tests.log, sanitizer.log, tune.log,
# bench.log + gpu_bench.json, train.log). The last thing printed is a table of the steps.
#
# Budgets: ATTN_T_TEST (300), ATTN_T_SANITIZE (150), ATTN_T_TUNE (120), ATTN_T_BENCH (330),
# ATTN_T_TRAIN (90), ATTN_T_PROFILE (240). Bench arguments: ATTN_BENCH_ARGS; head dims to tune: ATTN_TUNE_DIMS ("64 128"). Needs gpu-bundle/ carried for `build`,
# data/ carried for `train` (the tokenizer and the built-in corpus).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 3
out=${OUT:-$PWD/build-gpu-logs}
mkdir -p "$out"
bin=$PWD/build-gpu/bin
export bin out
deadline=${ATTN_ROUND_DEADLINE:-570}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build test sanitize tune bench train)
export ATTN_TORCH_OPS=$PWD/build-gpu/lib/libattn_torch_ops.so
export PYTHONUNBUFFERED=1
summary=()
failed=0

# budget NAME DEFAULT: the step's seconds, cut to what is left before the deadline.
budget() {
  local want=$1 left=$((deadline - SECONDS - 5))
  [ "$left" -lt "$want" ] && want=$left
  [ "$want" -lt 1 ] && want=1
  echo "$want"
}
# run NAME LOG SECONDS CMD...: one step, timed, its output to LOG (and the end of it to stdout).
run() {
  local name=$1 log=$2 secs=$3; shift 3
  local t0=$SECONDS rc
  echo; echo "=== round.sh: $name (budget ${secs}s, ${SECONDS}s into the round) ==="
  if [ "$secs" -le 5 ]; then
    failed=1
    summary+=("$(printf '%-10s %-8s %6s  %s' "$name" skipped 0 "no time left")")
    return
  fi
  timeout -k 5 "$secs" "$@" >>"$log" 2>&1
  rc=$?
  tail -n 25 "$log"
  local status=ok
  [ $rc -ne 0 ] && status="rc=$rc" && failed=1
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status=timeout
  summary+=("$(printf '%-10s %-8s %6d  %s' "$name" "$status" $((SECONDS - t0)) "$(basename "$log")")")
}

for step in "${steps[@]}"; do
  case $step in
    build)
      t0=$SECONDS
      ATTN_GPU_TARGETS=${ATTN_GPU_TARGETS:-attn attn_tests attn_torch_ops cuda_report} bash scripts/gpu/build.sh
      rc=$?
      summary+=("$(printf '%-10s %-8s %6d  %s' build "$([ $rc -eq 0 ] && echo ok || echo "rc=$rc")" $((SECONDS - t0)) gpu-build.log)")
      if [ $rc -ne 0 ]; then
        printf '%s\n' "${summary[@]}"
        exit $rc
      fi
      nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv >>"$out/gpu-env.txt" 2>&1
      ;;
    test)
      # The six cases in parallel (each compiles its own kernels; the disk cache takes concurrent writers).
      # A case that finds no GPU (or a LibTorch that sees no CUDA device) skips, and attn_tests then
      # exits 77: that is a failure here, as any non-zero status is.
      log=$out/tests.log
      : >"$log"
      secs=$(budget "${ATTN_T_TEST:-300}")
      # Each case has its own timeout, inside the step's, so its output is gathered even when one is cut short.
      run_tests() {
        local pids=() rc=0 i=0
        rm -f "$out"/.tests.*
        for tc in "every stdlib program*" "*at L = 4095 on the GPU*" "random programs*" "sanitizer set*" "exact math*" "softmax in bf16*"; do
          i=$((i + 1))
          timeout -k 2 "$((TEST_SECS - 8))" "$bin/attn_tests" -ts=gpu -tc="$tc" --no-intro=true >"$out/.tests.$i" 2>&1 &
          pids+=($!)
        done
        for p in "${pids[@]}"; do wait "$p" || rc=1; done
        cat "$out"/.tests.* && rm -f "$out"/.tests.*
        return $rc
      }
      export -f run_tests
      export TEST_SECS=$((secs > 10 ? secs : 10))
      run test "$log" "$secs" bash -c run_tests
      ;;
    sanitize)
      # memcheck, racecheck and synccheck on the small set (softmax, LSSA, LSSAR; bf16 tensor cores and f32),
      # each tensor its own allocation so an overrun leaves it.
      log=$out/sanitizer.log
      : >"$log"
      san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
      for tool in memcheck racecheck synccheck; do
        secs=$(budget "${ATTN_T_SANITIZE:-150}")
        run "san-$tool" "$log" "$secs" env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$san" --tool "$tool" --error-exitcode 9 \
          --print-limit 20 "$bin/attn_tests" -ts=gpu -tc="sanitizer set*" --no-intro=true
      done
      ;;
    tune)
      log=$out/tune.log
      : >"$log"
      secs=$(budget "${ATTN_T_TUNE:-120}")
      tune_all() {
        for d in ${ATTN_TUNE_DIMS:-64 128}; do
          for p in softmax lssa lssar; do
            "$bin/attn" tune "stdlib/$p.attn" --dtype bf16 --head-dim "$d" --lengths 1024,4096,16384 --repeats 5 || return 1
          done
        done
        cat "${ATTN_CACHE_DIR:-$HOME/.cache/attn}/cuda/tuning.txt"
      }
      export -f tune_all
      export ATTN_TUNE_DIMS
      run tune "$log" "$secs" bash -c tune_all
      ;;
    bench)
      log=$out/bench.log
      : >"$log"
      secs=$(budget "${ATTN_T_BENCH:-330}")
      # shellcheck disable=SC2086
      run bench "$log" "$secs" python3 bench/gpu_bench.py --budget $((secs > 40 ? secs - 20 : 20)) --out "$out/gpu_bench.json" \
        ${ATTN_BENCH_ARGS:-}
      ;;
    train)
      log=$out/train.log
      : >"$log"
      secs=$(budget "${ATTN_T_TRAIN:-90}")
      train_gpu() {
        local r=/tmp/attn-train-gpu
        rm -rf "$r"
        "$bin/attn" train --config 124m --attn stdlib/lssa.attn --backend cuda --device cuda --steps 12 --micro-batch 16 \
          --batch-tokens 16384 --quiet --out "$r" || return 1
        cat "$r/log.jsonl"
        python3 - "$r/log.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
tps = [r["tokens_per_s"] for r in rows[2:]] or [r["tokens_per_s"] for r in rows]
print(f"124m LSSA cuda bf16: loss {rows[0]['train_loss']:.3f} -> {rows[-1]['train_loss']:.3f}; "
      f"median tokens/s after 2 warm-up steps: {statistics.median(tps):.0f}")
EOF
      }
      export -f train_gpu
      run train "$log" "$secs" bash -c train_gpu
      ;;
    profile)
      # Nsight Compute on one forward + backward of SDPA-flash and our softmax/LSSA/LSSAR at L = 8192
      # (bench/profile_kernels.py): throughput, occupancy, registers, issue rate per kernel.
      log=$out/profile.log
      : >"$log"
      secs=$(budget "${ATTN_T_PROFILE:-240}")
      profile_all() {
        local ncu
        ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
        [ -n "$ncu" ] || { echo "no ncu on this machine"; return 1; }
        "$ncu" --profile-from-start off --section SpeedOfLight --section Occupancy --section LaunchStats \
          --section WarpStateStats --section ComputeWorkloadAnalysis --csv --page details \
          python3 bench/profile_kernels.py run >"$out/profile.csv" || return 1
        python3 bench/profile_kernels.py summary "$out/profile.csv"
      }
      export -f profile_all
      run profile "$log" "$secs" bash -c profile_all
      ;;
    *)
      echo "round.sh: unknown step '$step' (build, test, sanitize, tune, bench, train, profile)"
      exit 2
      ;;
  esac
done

echo
echo "=== round.sh: summary ($SECONDS s) ==="
printf '%-10s %-8s %6s  %s\n' step status secs log
printf '%s\n' "${summary[@]}"
exit $failed
