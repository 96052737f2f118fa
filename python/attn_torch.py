"""The first Python entry of attn, kept working as a thin alias of the `attn` package.

New code: `import attn` (docs/PYTHON.md). This module keeps its two names:

    import attn_torch
    attn_torch.load("build/lib/libattn_torch_ops.so")        # optional: attn finds it itself
    lssar = attn_torch.Attention("stdlib/lssar.attn", p=3)    # params as keywords
    o = lssar(q, k, v)

Attention's backend still defaults to "cuda" here, as it always did (attn's is "auto").
"""
from __future__ import annotations

import os

import attn


def load(library: str | os.PathLike | None = None) -> None:
    """Loads libattn_torch_ops.so (default: $ATTN_TORCH_OPS, the installed package's copy,
    else build/lib/ of the repository)."""
    attn.load_library(library)


class Attention:
    """One .attn program (a file path or its text), callable on tensors."""

    def __init__(self, program: str | os.PathLike, name: str = "", backend: str = "cuda", **params):
        self._compiled = attn.compile(program, name=name, backend=backend, **params)
        self.source = self._compiled.source
        self.name = name
        self.backend = backend
        self.params = self._compiled._params

    def __call__(self, q, k, v, backend: str | None = None):
        if backend is None or backend == self.backend:
            return self._compiled(q, k, v)
        return attn.compile(self.source, name=self.name, backend=backend, **self._compiled.params)(q, k, v)
