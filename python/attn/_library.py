"""Finding and loading libattn_torch_ops.so, the operators torch.ops.attn.* (runtime/python/TorchOps.cpp).

Where it is looked for, first found wins:
  1. $ATTN_TORCH_OPS (a path to a built library);
  2. attn/_lib/ inside the installed package (copied there by `pip install ./python`);
  3. build/lib/ of the repository around python/ (running from a source checkout).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from . import _registration
from .errors import AttnError

LIBRARY = "libattn_torch_ops.so"
_PACKAGE = Path(__file__).resolve().parent
_loaded_from: str | None = None


def _registered() -> bool:
    try:
        torch.ops.attn.attention
        torch.ops.attn.check
    except (RuntimeError, AttributeError):
        return False
    return True


def candidates() -> list[Path]:
    found = []
    if os.environ.get("ATTN_TORCH_OPS"):
        found.append(Path(os.environ["ATTN_TORCH_OPS"]))
    found.append(_PACKAGE / "_lib" / LIBRARY)
    found.append(_PACKAGE.parent.parent / "build" / "lib" / LIBRARY)
    return found


def load(library: str | os.PathLike | None = None) -> str:
    """Loads the operator library once per process (`library`, else the first candidate that
    exists), registers its fake kernels where this torch needs them (_registration.py), and
    returns where it came from. Loading it twice would register the operators
    twice, which PyTorch refuses; so a second call returns at once."""
    global _loaded_from
    if _loaded_from is not None:
        return _loaded_from
    if _registered():  # loaded by someone else (torch.ops.load_library by hand)
        _loaded_from = "<already registered>"
        _registration.register_fakes()
        return _loaded_from
    if library is not None:
        paths = [Path(library)]
    elif os.environ.get("ATTN_TORCH_OPS"):
        paths = [Path(os.environ["ATTN_TORCH_OPS"])]  # an explicit choice: no fallback
    else:
        paths = candidates()
    for path in paths:
        if path.is_file():
            try:
                torch.ops.load_library(str(path))
            except OSError as e:
                raise AttnError(
                    f"cannot load {path}: {e}\n(the library must be built against the same LibTorch as this "
                    f"torch {torch.__version__}; on Debian 12, libtorch-dev with python3-torch)") from None
            _loaded_from = str(path)
            _registration.register_fakes()
            return _loaded_from
    raise AttnError(f"{LIBRARY} not found; looked at: " + ", ".join(str(p) for p in paths) +
                    ". Install the package with `pip install ./python`, or build the repository and set ATTN_TORCH_OPS")
