#!/usr/bin/env python3
"""profile_kernels: one forward + backward of softmax, LSSA and LSSAR (ours) and of SDPA-flash,
for Nsight Compute, and a summary of its report. Issue 7's "why" for each missed target.

On the GPU machine (scripts/gpu/round.sh profile does this):

  ncu --profile-from-start off --section SpeedOfLight --section Occupancy --section LaunchStats \\
      --section WarpStateStats --section ComputeWorkloadAnalysis --csv --page details \\
      python3 bench/profile_kernels.py run > profile.csv
  python3 bench/profile_kernels.py summary profile.csv

`run` warms up (module load, NVRTC compiles, autotuned tiles) outside the profiled range, then
profiles one call of each between torch.cuda.profiler.start() and stop(). `summary` prints per
kernel: duration, SM and memory throughput (% of peak), registers, theoretical and achieved
occupancy, issue-slot use, IPC and warp cycles per issued instruction (latency-bound when high).
"""
import csv
import sys
from collections import OrderedDict, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(L=8192, d=64, bh=32):
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT / "python"))
    import attn_torch

    attn_torch.load()
    dev = torch.device("cuda")
    ours = {n: attn_torch.Attention(ROOT / "stdlib" / f"{n}.attn", backend="cuda") for n in ("softmax", "lssa", "lssar")}

    def sdpa(q, k, v):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    fns = [("sdpa", sdpa)] + list(ours.items())
    q, k, v = (torch.randn(1, bh, L, d, device=dev, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    grad = torch.randn(1, bh, L, d, device=dev, dtype=torch.bfloat16)

    def once(fn):
        fn(q, k, v).backward(grad)

    for _, fn in fns:  # warm-up: compiles, loads, caches
        once(fn)
        once(fn)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    for name, fn in fns:
        torch.cuda.nvtx.range_push(name)
        once(fn)
        torch.cuda.nvtx.range_pop()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    print(f"profiled L={L} d={d} B*H={bh}: " + ", ".join(n for n, _ in fns), file=sys.stderr)


WANTED = OrderedDict([
    ("Duration", "time"),
    ("Compute (SM) Throughput", "SM %"),
    ("Memory Throughput", "mem %"),
    ("Registers Per Thread", "regs"),
    ("Theoretical Occupancy", "theo occ %"),
    ("Achieved Occupancy", "ach occ %"),
    ("Issue Slots Busy", "issue %"),
    ("Executed Ipc Active", "IPC"),
    ("Warp Cycles Per Issued Instruction", "cyc/issue"),
])


def summary(path):
    rows = defaultdict(dict)
    order = []
    with open(path, newline="") as f:
        lines = [l for l in f if l.startswith('"')]  # ncu prints its own lines before the CSV
    for r in csv.DictReader(lines):
        key = (r["ID"], r["Kernel Name"][:48])
        if key not in rows:
            order.append(key)
        name, unit, value = r["Metric Name"], r["Metric Unit"], r["Metric Value"]
        if name in WANTED:
            rows[key][name] = f"{value} {unit}".strip() if name == "Duration" else value
    print(f"{'id':>3s} {'kernel':48s} " + " ".join(f"{h:>11s}" for h in WANTED.values()))
    for key in order:
        print(f"{key[0]:>3s} {key[1]:48s} " + " ".join(f"{rows[key].get(m, '-'):>11s}" for m in WANTED))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run()
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
