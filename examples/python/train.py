"""Trains the small GPT of model.py, whose attention is any .attn program, for a few steps.

    # token shards from attn (any tokenizer; bytes keeps the model small on a CPU)
    build/bin/attn data prepare --tokenizer bytes --out /tmp/bytes
    python3 examples/python/train.py --data /tmp/bytes --attn lssar --set p=15 --steps 50 --seq-len 64

    # or raw text files, one token per byte, no attn binary needed
    python3 examples/python/train.py --text README.md docs/*.md --attn softmax --steps 50

    # the same steps as `attn train` (same options), and its losses beside these
    build/bin/attn train --config tiny --attn stdlib/lssa.attn --data /tmp/bytes --steps 5 --seq-len 64 \\
        --micro-batch 2 --out /tmp/run
    python3 examples/python/train.py --data /tmp/bytes --attn stdlib/lssa.attn --steps 5 --seq-len 64 \\
        --micro-batch 2 --compare /tmp/run

With the same options as `attn train` (config, steps, seq-len, micro-batch, batch-tokens, lr,
warmup, min-lr-ratio, weight-decay, clip, seed) it draws the same batches (the generator of
runtime/train/Trainer.cpp: std::mt19937_64 and libstdc++'s uniform_int_distribution,
reimplemented below), starts from the same weights and takes the same AdamW steps, so its
losses are attn train's up to float32 rounding; --compare RUN prints both and fails (exit 1)
when they differ by more than --compare-tolerance.

On a GPU with a PyTorch >= 2.4: `--device cuda --compile` wraps the model in
torch.compile(fullgraph=True); attn's operators have fake kernels, so the attention call
does not break the graph. Debian 12's torch 1.13 has no torch.compile: --compile says so.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import GPT, GPTConfig  # noqa: E402

CONFIGS = {  # attn train's --config (runtime/model/Gpt2.cpp, runtime/train/Trainer.cpp)
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=256, steps=200, micro_batch=8, lr=1e-3, warmup=20),
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=512, steps=2000, micro_batch=16, lr=6e-4, warmup=100),
}
SHARD_MAGIC, SHARD_HEADER_INTS = 20240520, 256
M64 = (1 << 64) - 1


# ---- data ------------------------------------------------------------------------------------

def read_shard(path: Path) -> np.ndarray:
    """An llm.c token shard (runtime/data/Shards.h): 256 int32 of header, then uint16 tokens."""
    raw = path.read_bytes()
    header = np.frombuffer(raw[:SHARD_HEADER_INTS * 4], dtype="<i4")
    if len(header) < 3 or header[0] != SHARD_MAGIC or header[1] != 1:
        raise SystemExit(f"{path}: not an llm.c token shard (magic {SHARD_MAGIC}, version 1)")
    tokens = np.frombuffer(raw[SHARD_HEADER_INTS * 4:], dtype="<u2")
    if len(tokens) != header[2]:
        raise SystemExit(f"{path}: the header says {header[2]} tokens, the file holds {len(tokens)}")
    return tokens


def load_data(args) -> tuple[np.ndarray, int]:
    """(training tokens, padded vocabulary) as attn train loads them: every *_train_*.bin in
    name order, concatenated; a small tokenizer's vocabulary padded to a multiple of 64."""
    if args.text:
        tokens = np.frombuffer(b"".join(Path(p).read_bytes() for p in args.text), dtype=np.uint8).astype(np.uint16)
        return tokens, 256
    directory = Path(args.data)
    shards = sorted(directory.glob("*_train_*.bin"))
    if not shards:
        raise SystemExit(f"no training shards (*_train_*.bin) in {directory} (make them with attn data prepare)")
    tokens = np.concatenate([read_shard(p) for p in shards])
    vocab = 50304
    info = directory / "tokenizer.json"
    if info.is_file():
        described = json.loads(info.read_text())
        if described.get("kind") != "gpt2":
            vocab = (int(described["vocab"]) + 63) // 64 * 64
    return tokens, vocab


class MT19937_64:
    """std::mt19937_64, bit for bit (checked against its published 10,000th output)."""

    def __init__(self, seed: int):
        mt = [seed & M64]
        for i in range(1, 312):
            mt.append((6364136223846793005 * (mt[-1] ^ (mt[-1] >> 62)) + i) & M64)
        self.mt, self.index = mt, 312

    def _twist(self):
        mt = self.mt
        for i in range(312):
            x = (mt[i] & 0xFFFFFFFF80000000) | (mt[(i + 1) % 312] & 0x7FFFFFFF)
            mt[i] = mt[(i + 156) % 312] ^ (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
        self.index = 0

    def __call__(self) -> int:
        if self.index >= 312:
            self._twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        return (y ^ (y >> 43)) & M64


def uniform_int(rng: MT19937_64, high: int) -> int:
    """libstdc++'s (GCC >= 11) uniform_int_distribution<int64_t>(0, high) on a 64-bit engine:
    Lemire's multiply-and-reject with a 128-bit product."""
    span = high + 1
    product = rng() * span
    if (product & M64) < span:
        threshold = ((1 << 64) - span) % span
        while (product & M64) < threshold:
            product = rng() * span
    return product >> 64


def batch(tokens: np.ndarray, B: int, T: int, seed: int, step: int, micro: int):
    """Micro-batch `micro` of step `step`: B windows of T + 1 tokens at positions drawn from a
    generator seeded by (seed, step, micro) alone (Trainer.cpp's batch())."""
    if len(tokens) < T + 2:
        raise SystemExit(f"the training data has {len(tokens)} tokens, fewer than one sequence of {T + 1}")
    rng = MT19937_64((seed * 0x9E3779B97F4A7C15 + step * 1000003 + micro) & M64)
    starts = [uniform_int(rng, len(tokens) - T - 1) for _ in range(B)]
    windows = np.stack([tokens[s:s + T + 1].astype(np.int64) for s in starts])
    return torch.from_numpy(windows[:, :-1].copy()), torch.from_numpy(windows[:, 1:].copy())


def learning_rate(args, step: int) -> float:
    """Linear warmup, then cosine to min_lr_ratio · lr at the last step (Trainer.cpp)."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    span = max(1, args.steps - 1 - args.warmup)
    progress = min(1.0, (step - args.warmup) / span)
    low = args.lr * args.min_lr_ratio
    return low + 0.5 * (args.lr - low) * (1 + math.cos(math.pi * progress))


# ---- the run ----------------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a directory of attn token shards (attn data prepare)")
    source.add_argument("--text", nargs="+", help="text files, one token per byte")
    ap.add_argument("--attn", default="softmax", help="the attention: a stdlib name, an .attn file (default softmax)")
    ap.add_argument("--set", action="append", default=[], metavar="K=V", help="a param of the program (p=15)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seq-len", type=int, default=0)
    ap.add_argument("--micro-batch", type=int, default=0)
    ap.add_argument("--batch-tokens", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.0)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=-1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", default="auto", help="attn's backend: auto, reference, cpu, cuda")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile(model, fullgraph=True) (PyTorch >= 2.4)")
    ap.add_argument("--log", help="write one JSON line per step here")
    ap.add_argument("--compare", metavar="RUN", help="an attn train run directory: compare its log's losses")
    ap.add_argument("--compare-tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    c = CONFIGS[args.config]  # resolveDefaults: 0 (or -1) means the config's default
    args.seq_len = args.seq_len or c["block_size"]
    args.steps = args.steps or c["steps"]
    args.micro_batch = args.micro_batch or c["micro_batch"]
    args.batch_tokens = args.batch_tokens or args.micro_batch * args.seq_len
    args.lr = args.lr or c["lr"]
    if args.warmup < 0:
        args.warmup = min(c["warmup"], args.steps // 10 + 1)
    if args.batch_tokens % (args.micro_batch * args.seq_len):
        ap.error("--batch-tokens must be a multiple of micro-batch x seq-len")
    params = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set expects K=V, got {item!r}")
        params[key] = value
    args.params = params
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    tokens, vocab = load_data(args)
    c = CONFIGS[args.config]
    config = GPTConfig(block_size=args.seq_len, vocab_size=vocab, n_layer=c["n_layer"], n_head=c["n_head"],
                       n_embd=c["n_embd"], attention=args.attn, attention_params=args.params, backend=args.backend)
    torch.manual_seed(args.seed)
    model = GPT(config).to(args.device)
    optimizer = model.configure_optimizers(args.weight_decay, args.lr)
    step_fn = model
    if args.compile:
        if not hasattr(torch, "compile"):
            print(f"--compile: torch {torch.__version__} has no torch.compile (it needs PyTorch >= 2.0, and attn's "
                  "fake kernels >= 2.4; Debian 12 ships 1.13)", file=sys.stderr)
            return 2
        step_fn = torch.compile(model, fullgraph=True)
    accum = args.batch_tokens // (args.micro_batch * args.seq_len)
    log = open(args.log, "w") if args.log else None
    losses = []
    print(f"train.py: {args.config} ({sum(p.numel() for p in model.parameters()):,} parameters), attention "
          f"{model.transformer.h[0].attn.attention.attention.name} on {args.backend}, {args.steps} steps of "
          f"{args.batch_tokens} tokens, {len(tokens):,} training tokens", file=sys.stderr)
    model.train()
    for step in range(args.steps):
        t0 = time.monotonic()
        lr = learning_rate(args, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(accum):
            x, y = batch(tokens, args.micro_batch, args.seq_len, args.seed, step, micro)
            _, loss = step_fn(x.to(args.device), y.to(args.device))
            loss = loss / accum
            loss.backward()
            total += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip).item()
        optimizer.step()
        if not math.isfinite(total):
            print(f"training diverged at step {step} (loss {total})", file=sys.stderr)
            return 1
        losses.append(total)
        record = {"step": step, "train_loss": total, "lr": lr, "grad_norm": norm,
                  "tokens_per_s": args.batch_tokens / (time.monotonic() - t0)}
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()
        print(f"step {step + 1}/{args.steps}  loss {total:.4f}  lr {lr:.2e}  {record['tokens_per_s']:.0f} tok/s",
              file=sys.stderr)
    if args.compare:
        return compare(args, losses)
    return 0


def compare(args, losses) -> int:
    """Prints this run's losses beside attn train's (RUN/log.jsonl); 1 when they differ."""
    path = Path(args.compare) / "log.jsonl"
    theirs = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            theirs[record["step"]] = record["train_loss"]
    worst = 0.0
    print("step  attn train   train.py     difference")
    for step, ours in enumerate(losses):
        if step not in theirs:
            print(f"{path}: no step {step}", file=sys.stderr)
            return 1
        worst = max(worst, abs(ours - theirs[step]))
        print(f"{step:4d}  {theirs[step]:.7f}  {ours:.7f}  {ours - theirs[step]:+.2e}")
    print(f"largest difference {worst:.2e} (tolerance {args.compare_tolerance:g})")
    return 0 if worst <= args.compare_tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
