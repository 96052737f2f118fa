#!/usr/bin/env bash
# Issue 17's GPU measurements in one device call (written and dry-run here; NOT yet run on a
# GPU): GPT-2 124M at sequence 1024, bf16, 50 steps of 65,536 tokens, trained by `attn train`
# with softmax, LSSA and LSSAR and by the PyTorch peer (bench/gpt2_peer.py: SDPA-flash +
# torch.compile) on the same data; tokens/s, MFU and the loss after 50 steps; then `attn
# train` as one rank of a torchrun-style group (NCCL with one rank).
#
#   bash scripts/gpu/round.sh build && bash scripts/gpu/issue17.sh     # carry gpu-bundle, data
#   ATTN_ISSUE17_DRY_RUN=1 bash scripts/gpu/issue17.sh                 # here: print the commands
#
# Budget: about 5 minutes after the build (3 x ~40 s of attn train, ~90 s of the peer with its
# compile, 20 s of NCCL); each step has a timeout, the whole script stays under 8 minutes.
# Writes to $OUT: issue17.log (everything), issue17.json (the numbers), and the targets' table
# at the end of the log. Settings: ATTN_ISSUE17_STEPS (50), ATTN_ISSUE17_MICRO (64),
# ATTN_ISSUE17_BATCH (65536), ATTN_ISSUE17_PROGRAMS ("softmax lssa lssar").
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 3
out=${OUT:-$PWD/build-gpu-logs}
mkdir -p "$out"
bin=${ATTN_GPU_BIN:-$PWD/build-gpu/bin}
work=${ATTN_ISSUE17_WORK:-/tmp/attn-issue17}
steps=${ATTN_ISSUE17_STEPS:-50}
micro=${ATTN_ISSUE17_MICRO:-64}
batch=${ATTN_ISSUE17_BATCH:-65536}
programs=(${ATTN_ISSUE17_PROGRAMS:-softmax lssa lssar})
dry=${ATTN_ISSUE17_DRY_RUN:-0}
log=$out/issue17.log
: > "$log"

say() { echo "$*" | tee -a "$log"; }
# step SECONDS CMD...: runs (or, dry, prints) a command with a timeout, output to the log.
step() {
  local secs=$1; shift
  say "+ $*"
  [ "$dry" = 1 ] && return 0
  timeout -k 5 "$secs" "$@" >>"$log" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && say "  (exit $rc)"
  return $rc
}

mkdir -p "$work"
say "=== issue17.sh: $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
step 120 "$bin/attn" data prepare --out "$work/sotu" || say "data prepare failed: is data/ carried?"
step 60 "$bin/attn" data inspect "$work/sotu" --seq-len 1024 --lengths 1x,2x,4x

for p in "${programs[@]}"; do
  step 150 "$bin/attn" train --config 124m --attn "stdlib/$p.attn" --backend cuda --device cuda \
    --data "$work/sotu" --steps "$steps" --micro-batch "$micro" --batch-tokens "$batch" --log-every 10 \
    --warmup 5 --checkpoint-every 1000000 --quiet --out "$work/run-$p"
done
step 240 python3 bench/gpt2_peer.py --data "$work/sotu" --steps "$steps" --micro-batch "$micro" \
  --batch-tokens "$batch" --warmup 5 --out "$work/peer.json"
# NCCL with one rank, as torchrun --nproc_per_node=1 would start it.
step 90 env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
  "$bin/attn" train --config 124m --attn stdlib/lssa.attn --backend cuda --device cuda --data "$work/sotu" \
  --steps 5 --micro-batch 16 --batch-tokens 16384 --quiet --out "$work/run-nccl1"

[ "$dry" = 1 ] && exit 0
# The table: median tokens/s over the steps after the first 3 (log.jsonl's per-interval
# numbers), the loss after the last step, against the issue's targets.
python3 - "$work" "$out/issue17.json" "${programs[@]}" <<'EOF' 2>&1 | tee -a "$log"
import json, os, statistics, sys
work, dest, programs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = {}
for p in programs:
    path = os.path.join(work, f"run-{p}", "log.jsonl")
    if not os.path.exists(path):
        rows[p] = None
        continue
    lines = [json.loads(l) for l in open(path)]
    rows[p] = {"tokens_per_s": statistics.median(l["tokens_per_s"] for l in lines[3:] or lines),
               "loss": lines[-1]["train_loss"], "steps": len(lines)}
peer = json.load(open(os.path.join(work, "peer.json"))) if os.path.exists(os.path.join(work, "peer.json")) else None
nccl = os.path.exists(os.path.join(work, "run-nccl1", "checkpoint", "state.json"))
print(f"{'program':10} {'tokens/s':>10} {'loss':>8}")
for p, r in rows.items():
    print(f"{p:10} {r['tokens_per_s']:10.0f} {r['loss']:8.4f}" if r else f"{p:10} {'failed':>10}")
if peer:
    print(f"{'peer':10} {peer['tokens_per_s']:10.0f} {peer['loss']:8.4f}  (MFU {100 * peer['mfu']:.1f} %)")
soft = rows.get("softmax")
checks = []
if soft and peer:
    checks.append(("softmax >= 1.0x peer tokens/s", soft["tokens_per_s"] / peer["tokens_per_s"], 1.0))
    checks.append(("softmax loss within 2 % of peer", abs(soft["loss"] / peer["loss"] - 1), 0.02))
if soft:
    checks.append(("softmax >= 400,000 tokens/s", soft["tokens_per_s"] / 400000, 1.0))
    for p, need in (("lssa", 0.85), ("lssar", 0.7)):
        if rows.get(p):
            checks.append((f"{p} >= {need}x softmax", rows[p]["tokens_per_s"] / soft["tokens_per_s"], need))
for name, value, target in checks:
    ok = value <= target if "within" in name else value >= target
    print(f"  {'met ' if ok else 'MISS'} {name}: {value:.3f} (target {target})")
print(f"  {'met ' if nccl else 'MISS'} NCCL with one rank trained and checkpointed")
json.dump({"attn": rows, "peer": peer, "nccl_one_rank": nccl}, open(dest, "w"), indent=2)
EOF
