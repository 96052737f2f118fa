"""attn's exceptions: what the compiler or the operator refused, with its located message."""
from __future__ import annotations

PREFIX = "attn: "


class AttnError(RuntimeError):
    """An error in what the user gave attn: a program, a tensor, a param, a backend.

    `message` is attn's own text (for a program: `FILE:LINE:COL: error: ...` lines with the
    source line and a caret), without PyTorch's decoration."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CompileError(AttnError):
    """The .attn program (or a param override) does not compile."""


def translate(error: RuntimeError, kind: type[AttnError] = AttnError) -> BaseException:
    """The AttnError for a RuntimeError raised by torch.ops.attn.*; other errors unchanged."""
    text = str(error)
    at = text.find(PREFIX)
    if at < 0:
        return error
    return kind(text[at + len(PREFIX):].rstrip())
