"""attn.compile and attn.Attention: .attn programs as differentiable PyTorch functions."""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import torch

from . import _library
from .errors import AttnError, CompileError, translate

BACKENDS = ("auto", "reference", "cpu", "cuda")
_PACKAGE = Path(__file__).resolve().parent
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def stdlib_dir() -> Path:
    """The stdlib programs: copied into the installed package, else the repository's stdlib/."""
    bundled = _PACKAGE / "stdlib"
    return bundled if bundled.is_dir() else _PACKAGE.parent.parent / "stdlib"


def stdlib() -> list[str]:
    """The names of the stdlib programs (attn.compile accepts each as it is)."""
    return sorted(p.stem for p in stdlib_dir().glob("*.attn"))


def _compiling() -> bool:
    """True while torch.compile traces (a newer torch); the plain call path is taken then."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    dynamo = getattr(torch, "_dynamo", None)
    return bool(dynamo is not None and hasattr(dynamo, "is_compiling") and dynamo.is_compiling())


def _param_text(name: str, value) -> str:
    if not _NAME.fullmatch(name):
        raise CompileError(f"'{name}' is not a param name")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise CompileError(f"param {name}: expected an int, float, bool or str, got {type(value).__name__}")
    if "," in text:
        raise CompileError(f"param {name}={text}: a value cannot contain ','")
    return f"{name}={text}"


def _resolve(program: str | os.PathLike) -> tuple[str, str]:
    """(source text, the name diagnostics use) of a path, a stdlib name or program text."""
    if isinstance(program, os.PathLike) or (isinstance(program, str) and program.endswith(".attn")):
        path = Path(program)
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(program)
        # "stdlib/lssar.attn" from anywhere: the package's copy of the stdlib.
        if path.parent.name == "stdlib" and (stdlib_dir() / path.name).is_file():
            return (stdlib_dir() / path.name).read_text(encoding="utf-8"), str(program)
        raise FileNotFoundError(f"{program}: no such .attn file")
    if not isinstance(program, str):
        raise TypeError(f"attn.compile: expected a path, a stdlib name or program text, got {type(program).__name__}")
    if _NAME.fullmatch(program):
        path = stdlib_dir() / f"{program}.attn"
        if not path.is_file():
            close = difflib.get_close_matches(program, stdlib(), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; the stdlib has: {', '.join(stdlib())}"
            raise AttnError(f"no stdlib program '{program}'{hint}")
        return path.read_text(encoding="utf-8"), f"stdlib/{program}.attn"
    return program, "<source>"


class CompiledAttention:
    """One compiled .attn program: call it on (q, k, v).

    q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv] (or all three [L, D]); Lq <= Lk, the
    queries being the last Lq positions; float16, bfloat16, float32 or float64, one dtype and
    one device. Returns [B, H, Lq, Dv] (or [Lq, Dv]) in q's dtype, with autograd.

    Packed documents, for a program whose mask is `per document`: `documents`, an int32 or
    int64 tensor [Lk] or [B, Lk] of document ids (non-decreasing: each document one
    contiguous run), or `cu_seqlens`, the cumulative offsets [0, end_1, ..., Lk] of
    FlashAttention's varlen interface. Each row then sees only its own document's keys."""

    def __init__(self, source: str, path: str, name: str, params: dict, backend: str):
        if backend not in BACKENDS:
            raise AttnError(f"unknown backend '{backend}' (expected {', '.join(BACKENDS)})")
        _library.load()
        self.source = source
        self.path = path
        self.params = dict(params)
        self.backend = backend
        self._params = ",".join(_param_text(k, v) for k, v in params.items())
        try:
            # Compiles now (cached in the library), so a broken program fails here, located.
            self.name = torch.ops.attn.check(source, name, self._params, path)
        except RuntimeError as e:
            raise translate(e, CompileError) from None
        self._name = name

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, documents: torch.Tensor | None = None,
                 cu_seqlens: torch.Tensor | None = None) -> torch.Tensor:
        op = torch.ops.attn.attention
        if _compiling():
            return op(q, k, v, self.source, self._name, self._params, self.backend, documents, cu_seqlens)
        for label, t in (("q", q), ("k", k), ("v", v)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{self.name}: {label} must be a torch.Tensor, got {type(t).__name__}")
        for label, t in (("documents", documents), ("cu_seqlens", cu_seqlens)):
            if t is not None and not isinstance(t, torch.Tensor):
                raise TypeError(f"{self.name}: {label} must be a torch.Tensor or None, got {type(t).__name__}")
        try:
            return op(q, k, v, self.source, self._name, self._params, self.backend, documents, cu_seqlens)
        except RuntimeError as e:
            raise translate(e) from None

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"attn.compile({self.path!r}{params}, backend={self.backend!r})  # attention {self.name}"


def compile(program: str | os.PathLike, *, name: str = "", backend: str = "auto", **params) -> CompiledAttention:
    """Compiles an .attn program: a path ("stdlib/lssar.attn"), a stdlib name ("lssar") or
    the program's text. `name` picks one attention of a file that defines several; keyword
    arguments override its params (p=15). `backend`: auto (cuda for CUDA tensors, the
    JIT-compiled cpu kernels otherwise), reference (LibTorch ops, any device), cpu, cuda.
    Raises CompileError with the compiler's located message for a program that does not
    compile."""
    source, path = _resolve(program)
    return CompiledAttention(source, path, name, params, backend)


class Attention(torch.nn.Module):
    """An .attn program as an nn.Module without parameters: forward(q, k, v) -> o.

    Takes what attn.compile takes. It holds no weights: put it where a model's
    scaled_dot_product_attention call was (the projections stay the model's)."""

    def __init__(self, program: str | os.PathLike, *, name: str = "", backend: str = "auto", **params):
        super().__init__()
        self.attention = compile(program, name=name, backend=backend, **params)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, documents: torch.Tensor | None = None,
                cu_seqlens: torch.Tensor | None = None) -> torch.Tensor:
        return self.attention(q, k, v, documents=documents, cu_seqlens=cu_seqlens)

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.attention.params.items())
        return f"{self.attention.path!r}{params}, backend={self.attention.backend!r}"
