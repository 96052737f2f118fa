"""Output shapes without data for torch.compile, on a torch that has torch.library.register_fake.

PyTorch >= 2.4 traces custom operators through "fake" kernels registered from Python with
torch.library.register_fake; older ones (Debian's 1.13) use Meta kernels registered in C++.
TorchOps.cpp registers its Meta kernels only when built against a LibTorch older than 2.4,
and register_fake refuses an operator that already has one: so this registers the fake
kernels exactly when the C++ side did not. The shapes are the ones TorchOps.cpp's Meta
kernels give, and its CPU/CUDA kernels check the rest (dtypes, devices) when they run.
"""
from __future__ import annotations

import torch


def _has_meta(op: str) -> bool:
    return bool(torch._C._dispatch_has_kernel_for_dispatch_key(op, "Meta"))


def register_fakes() -> bool:
    """Registers the fake kernels where this torch wants them; True when it did."""
    register_fake = getattr(torch.library, "register_fake", None)
    if register_fake is None or _has_meta("attn::attention"):
        return False

    @register_fake("attn::attention")
    def _attention_fake(q, k, v, source, name="", params="", backend="auto", documents=None, cu_seqlens=None):
        if q.dim() not in (2, 4) or k.dim() != q.dim() or v.dim() != q.dim():
            raise RuntimeError(f"attn: q, k and v must all be [B, H, L, D] or [L, D]; got "
                               f"{list(q.shape)}, {list(k.shape)}, {list(v.shape)}")
        return q.new_empty((*q.shape[:-1], v.shape[-1]))

    @register_fake("attn::attention_backward")
    def _attention_backward_fake(dout, q, k, v, source, name, params, backend, documents=None, cu_seqlens=None):
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)

    return True
