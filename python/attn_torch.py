"""attn programs as PyTorch functions, with autograd.

    import attn_torch
    attn_torch.load("build/lib/libattn_torch_ops.so")        # once per process
    lssar = attn_torch.Attention("stdlib/lssar.attn", p=3)    # params as keywords
    o = lssar(q, k, v)                                         # q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv]
    o.sum().backward()

The work happens in libattn_torch_ops.so (runtime/python/TorchOps.cpp), which registers
torch.ops.attn.attention; this file only finds it and reads the program's text.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

_loaded = False


def load(library: str | os.PathLike | None = None) -> None:
    """Loads libattn_torch_ops.so (default: $ATTN_TORCH_OPS, else build/lib/ beside this file)."""
    global _loaded
    if _loaded:
        return
    if library is None:
        library = os.environ.get("ATTN_TORCH_OPS") or Path(__file__).resolve().parent.parent / "build" / "lib" / "libattn_torch_ops.so"
    torch.ops.load_library(str(library))
    _loaded = True


class Attention:
    """One .attn program (a file path or its text), callable on tensors."""

    def __init__(self, program: str | os.PathLike, name: str = "", backend: str = "cuda", **params):
        path = Path(program)
        self.source = path.read_text() if path.suffix == ".attn" and path.exists() else str(program)
        self.name = name
        self.backend = backend
        self.params = ",".join(f"{k}={v}" for k, v in params.items())
        load()

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str | None = None) -> torch.Tensor:
        return torch.ops.attn.attention(q, k, v, self.source, self.name, self.params, backend or self.backend)
