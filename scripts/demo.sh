#!/usr/bin/env bash
# The main job on its built-in default (after ./scripts/setup.sh), on a CPU-only machine in
# a few minutes: the paper's experiment in miniature.
#   1. check the standard library, and show the plan the compiler makes for LSSAR;
#   2. train a tiny GPT-2 with LSSA attention (CPU backend: JIT-compiled fused kernels) on
#      the built-in corpus (State of the Union speeches, prepared on first use);
#   3. evaluate it at 1x..16x its training length with LSSA, and with LSSAR (the paper's
#      fine-tuning-free re-weighting: same weights, another attention program).
# ATTN_DEMO_STEPS (default 150, about two minutes on 2 cores) sets the training steps; the run goes to demo-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
attn=build/bin/attn
steps="${ATTN_DEMO_STEPS:-150}"
out="${ATTN_DEMO_DIR:-demo-run}"

echo "== attn check stdlib/*.attn"
"$attn" check stdlib/*.attn
echo "all $(ls stdlib/*.attn | wc -l) stdlib programs are valid"
echo
echo "== attn explain stdlib/lssar.attn"
"$attn" explain stdlib/lssar.attn
echo
echo "== attn train: tiny GPT-2, LSSA attention, $steps steps of 8 x 128 tokens"
"$attn" train --config tiny --attn stdlib/lssa.attn --backend cpu --steps "$steps" --seq-len 128 \
  --micro-batch 8 --lr 2e-3 --out "$out"
echo
echo "== attn eval: validation loss at 1x..16x the training length (128 tokens)"
"$attn" eval --ckpt "$out" --lengths 1x,2x,4x,8x,16x --max-docs 4 --out "$out/eval_lssa.json"
"$attn" eval --ckpt "$out" --attn stdlib/lssar.attn --lengths 1x,2x,4x,8x,16x --max-docs 4 \
  --out "$out/eval_lssar.json"
"$attn" plot "$out/eval_lssa.json" "$out/eval_lssar.json" --out "$out/eval.png" \
  --title "tiny GPT-2 trained with LSSA at 128 tokens"
echo
echo "results: $out/eval_lssa.json, $out/eval_lssar.json, plot $out/eval.png, training log $out/log.jsonl"
