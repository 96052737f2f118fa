"""attn: attention mechanisms written as .attn programs, compiled to fused kernels, as
PyTorch operators with autograd (docs/PYTHON.md).

    import attn
    lssar = attn.compile("lssar", p=15)            # a stdlib name, a path or program text
    o = lssar(q, k, v)                              # q, k [B, H, L, D], v [B, H, L, Dv]
    o.sum().backward()
    layer = attn.Attention("stdlib/softmax.attn")   # the same as an nn.Module

The operators are torch.ops.attn.attention / attention_backward / check
(runtime/python/TorchOps.cpp), loaded from libattn_torch_ops.so on first use.
"""
from __future__ import annotations

from . import _library
from .errors import AttnError, CompileError
from .program import BACKENDS, Attention, CompiledAttention, compile, stdlib, stdlib_dir

__version__ = "0.1.0"
__all__ = ["Attention", "AttnError", "BACKENDS", "CompileError", "CompiledAttention", "compile", "library_path",
           "load_library", "stdlib", "stdlib_dir"]


def load_library(library=None) -> str:
    """Loads libattn_torch_ops.so (by default from where attn/_library.py says) once per
    process and registers its fake kernels where this torch needs them; returns its path."""
    return _library.load(library)


def library_path() -> str:
    """Where the operator library was loaded from."""
    return load_library()
