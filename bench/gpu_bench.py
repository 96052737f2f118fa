#!/usr/bin/env python3
"""gpu_bench: attn's CUDA kernels against PyTorch's own attention, side by side in one process.

For each length L (B*H chosen so B*H*L is constant and the GPU is full), head dim d, causal,
bf16, forward and forward+backward: median time over --repeats runs (CUDA events, after
warm-up), TFLOP/s (causal: half the L*L score matrix; forward 4*BH*L*L*d/2 flops, backward
2.5x that), and peak memory. Rows:
  softmax   ours | SDPA (flash backend) | eager (materialised)
  lssa      ours | FlexAttention (score_mod = log(softplus(s)), q and k l2-normalised first) | eager
  lssar     ours | FlexAttention (two calls: LSSA with its log-normaliser, then the re-weighting
                   as score_mod = p*log(relu(N*a - O))) | eager
Before timing, every row is checked against eager in float32 at a small length (prints the
max relative error). The materialised versions run at B*H = --eager-bh (4) from L = 4096 on,
so that their L*L matrices fit: compare TFLOP/s, not ms, with them. Results: a table on stdout,
JSON in $OUT/gpu_bench.json (or --out; rewritten after every row, so a run cut short keeps
what it measured), and last the issue's targets as ratios of TFLOP/s per (L, d). --budget S
starts no new row after S seconds (FlexAttention compiles once per shape: most of the time).

  python3 bench/gpu_bench.py --lengths 1024,4096,8192,16384 --dims 64,128 --repeats 10
  ATTN_BENCH_ARGS="--dims 64" bash scripts/gpu/round.sh bench     # on the GPU machine

Results of 2026-11-25 (H100): docs/PERFORMANCE.md, raw in docs/gpu-runs/.

Needs: PyTorch with CUDA, build/lib/libattn_torch_ops.so (python/attn_torch.py loads it).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import attn_torch  # noqa: E402

STDLIB = Path(__file__).resolve().parent.parent / "stdlib"
P = 15  # LSSAR's power (stdlib default)


# ---------------------------------------------------------------- eager (materialised) versions
def causal_mask(L, device):
    return torch.ones(L, L, dtype=torch.bool, device=device).tril()


def eager_softmax(q, k, v):
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~causal_mask(q.shape[-2], q.device), float("-inf"))
    return torch.softmax(s.float(), dim=-1).to(q.dtype) @ v


def lssa_weights(q, k):
    L, d = q.shape[-2], q.shape[-1]
    qn, kn = F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1)
    n = torch.arange(1, L + 1, device=q.device, dtype=torch.float32).view(L, 1)
    s = math.log(d) * torch.log(n) * (qn @ kn.transpose(-1, -2))
    a = F.softplus(s) * causal_mask(L, q.device)
    return a / a.sum(-1, keepdim=True), n


def eager_lssa(q, k, v):
    a, _ = lssa_weights(q, k)
    return (a @ v.float()).to(q.dtype)


def eager_lssar(q, k, v):
    a, n = lssa_weights(q, k)
    L = q.shape[-2]
    offset = (torch.arange(L, device=q.device) >= 3).float().view(L, 1)
    r = torch.relu(n * a - offset)
    r = r / r.amax(-1, keepdim=True).clamp_min(1e-30)  # the row-max rescaling (stable)
    r = r.pow(P) * causal_mask(L, q.device)
    w = r / r.sum(-1, keepdim=True).clamp_min(1e-30)
    return (w @ v.float()).to(q.dtype)


# ---------------------------------------------------------------- PyTorch's fused kernels
def sdpa_flash(q, k, v):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


_flex = None
_masks = {}


def flex():
    global _flex
    if _flex is None:
        import torch._dynamo
        from torch.nn.attention.flex_attention import flex_attention

        # One compiled graph per (shape, score_mod): past dynamo's default limit of 8 it would fall
        # back to the unfused (materialising) path silently.
        for knob in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit"):
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, 256)
        _flex = torch.compile(flex_attention, dynamic=False)
    return _flex


def block_mask(L, device):
    from torch.nn.attention.flex_attention import create_block_mask

    if L not in _masks:
        _masks[L] = create_block_mask(lambda b, h, qi, ki: ki <= qi, None, None, L, L, device=device)
    return _masks[L]


def flex_lssa(q, k, v, return_lse=False):
    d = q.shape[-1]
    logd = math.log(d)

    def score_mod(score, b, h, qi, ki):
        s = logd * torch.log((qi + 1).float()) * score
        return torch.log(F.softplus(s))

    qn, kn = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    return flex()(qn, kn, v, score_mod=score_mod, block_mask=block_mask(q.shape[-2], q.device), scale=1.0,
                  return_lse=return_lse)


def flex_lssar(q, k, v, detach_lse=False):
    d = q.shape[-1]
    logd = math.log(d)
    _, lse = flex_lssa(q, k, v, return_lse=True)  # lse_i = log sum_j softplus(s_ij)
    if detach_lse:  # for a FlexAttention that cannot differentiate through its lse (times a cheaper backward)
        lse = lse.detach()

    def score_mod(score, b, h, qi, ki):
        s = logd * torch.log((qi + 1).float()) * score
        a = F.softplus(s) * torch.exp(-lse[b, h, qi])
        x = torch.relu((qi + 1).float() * a - torch.where(qi < 3, 0.0, 1.0))
        return P * torch.log(x)

    qn, kn = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    return flex()(qn, kn, v, score_mod=score_mod, block_mask=block_mask(q.shape[-2], q.device), scale=1.0)


# ---------------------------------------------------------------- timing
def timed(fn, backward, repeats):
    def once():
        out = fn()
        if backward:
            out.backward(grad)
        return out

    out = fn()
    grad = torch.randn_like(out)
    for _ in range(3):
        once()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        once()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2], torch.cuda.max_memory_allocated() / 2**20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="1024,2048,4096,8192,16384")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--tokens", type=int, default=16 * 16384, help="B*H*L per call")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--eager-max", type=int, default=8192, help="longest L for the materialised versions")
    ap.add_argument("--eager-bh", type=int, default=4,
                    help="B*H of the materialised versions at L >= 4096 (their L*L matrices must fit); compare TFLOP/s")
    ap.add_argument("--budget", type=float, default=0, help="seconds: start no new row after this (0: no limit)")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "gpu_bench.json"))
    args = ap.parse_args()
    t_start = time.time()  # --budget counts from here: the checks below compile too
    attn_torch.load()
    dev = torch.device("cuda")
    ours = {name: attn_torch.Attention(STDLIB / f"{name}.attn", backend="cuda") for name in ("softmax", "lssa", "lssar")}
    rows = {
        "softmax": [("ours", ours["softmax"]), ("sdpa-flash", sdpa_flash), ("eager", eager_softmax)],
        "lssa": [("ours", ours["lssa"]), ("flex", flex_lssa), ("eager", eager_lssa)],
        "lssar": [("ours", ours["lssar"]), ("flex", flex_lssar), ("eager", eager_lssar)],
    }
    print(f"# {torch.cuda.get_device_name()} torch {torch.__version__}")
    # Correctness first: every implementation against eager float32 at L = 257.
    g = torch.Generator(device=dev).manual_seed(0)
    for d in (64,):
        q, k, v = (torch.randn(2, 3, 257, d, device=dev, generator=g, dtype=torch.bfloat16) for _ in range(3))
        for name, impls in rows.items():
            want = dict(rows[name])["eager"](q.float(), k.float(), v.float())
            for label, fn in impls:
                got = fn(q, k, v).float()
                err = ((got - want).abs().max() / want.abs().max().clamp_min(1)).item()
                print(f"check {name:8s} {label:10s} d={d}: max rel err vs eager f32 {err:.2e}")
    results = []
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"{'program':8s} {'impl':10s} {'L':>6s} {'d':>4s} {'BH':>4s} {'fwd ms':>9s} {'TF/s':>6s} {'fwd+bwd ms':>11s} "
          f"{'TF/s':>6s} {'peak MiB':>9s}")
    for d in [int(x) for x in args.dims.split(",")]:
        for L in [int(x) for x in args.lengths.split(",")]:
            full_bh = max(1, args.tokens // L)
            for name, impls in rows.items():
                for label, fn in impls:
                    if label == "eager" and L > args.eager_max:
                        continue
                    if args.budget and time.time() - t_start > args.budget:
                        print(f"{name:8s} {label:10s} {L:6d} {d:4d}  skipped: --budget {args.budget:.0f} s spent")
                        continue
                    bh = min(full_bh, args.eager_bh) if label == "eager" and L >= 4096 else full_bh
                    flops = 4 * bh * L * L * d / 2
                    q, k, v = (torch.randn(1, bh, L, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
                               for _ in range(3))
                    note = ""
                    try:
                        fwd, _ = timed(lambda: fn(q, k, v), False, args.repeats)
                        try:
                            both, peak = timed(lambda: fn(q, k, v), True, args.repeats)
                        except Exception:
                            if fn is not flex_lssar:
                                raise
                            both, peak = timed(lambda: flex_lssar(q, k, v, detach_lse=True), True, args.repeats)
                            note = "lse not differentiated"
                    except Exception as e:  # out of memory, unsupported: say so, go on
                        print(f"{name:8s} {label:10s} {L:6d} {d:4d} {bh:4d} failed: {type(e).__name__}: {str(e)[:80]}")
                        del q, k, v
                        torch.cuda.empty_cache()
                        continue
                    r = dict(program=name, impl=label, L=L, d=d, bh=bh, fwd_ms=fwd, fwd_tflops=flops / fwd / 1e9,
                             fwdbwd_ms=both, fwdbwd_tflops=3.5 * flops / both / 1e9, bwd_tflops=2.5 * flops / max(both - fwd, 1e-6) / 1e9,
                             peak_mib=peak, note=note)
                    results.append(r)
                    print(f"{name:8s} {label:10s} {L:6d} {d:4d} {bh:4d} {fwd:9.3f} {r['fwd_tflops']:6.1f} {both:11.3f} "
                          f"{r['fwdbwd_tflops']:6.1f} {peak:9.0f} {note}")
                    out_path.write_text(json.dumps(results, indent=1))
                    del q, k, v
                    torch.cuda.empty_cache()
    summarize(results)


def summarize(results):
    """The issue's targets as ratios of TFLOP/s (rows may differ in B*H), one line per (L, d)."""
    by = {(r["program"], r["impl"], r["L"], r["d"]): r for r in results}

    def ratio(a, b, key):  # '*': the baseline's backward skipped its lse gradient (cheaper than the real one)
        if a not in by or b not in by:
            return "     -"
        return f"{by[a][key] / by[b][key]:6.2f}" + ("*" if by[b].get("note") else "")

    print()
    print("ratios (TFLOP/s over TFLOP/s; >1 means ours is faster)")
    print(f"{'L':>6s} {'d':>4s} {'sm fwd/SDPA':>11s} {'sm bwd/SDPA':>11s} {'lssa/sm fwd':>11s} {'lssar f+b/flex':>14s} "
          f"{'lssar f+b/eager':>15s}")
    for L, d in sorted({(r["L"], r["d"]) for r in results}, key=lambda x: (x[1], x[0])):
        print(f"{L:6d} {d:4d} {ratio(('softmax', 'ours', L, d), ('softmax', 'sdpa-flash', L, d), 'fwd_tflops'):>11s} "
              f"{ratio(('softmax', 'ours', L, d), ('softmax', 'sdpa-flash', L, d), 'bwd_tflops'):>11s} "
              f"{ratio(('lssa', 'ours', L, d), ('softmax', 'ours', L, d), 'fwd_tflops'):>11s} "
              f"{ratio(('lssar', 'ours', L, d), ('lssar', 'flex', L, d), 'fwdbwd_tflops'):>14s} "
              f"{ratio(('lssar', 'ours', L, d), ('lssar', 'eager', L, d), 'fwdbwd_tflops'):>15s}")


if __name__ == "__main__":
    main()
