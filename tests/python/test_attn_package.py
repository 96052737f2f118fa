"""The installed `attn` package (python/attn) against plain PyTorch.

Run by tests/python/check_package.py inside a fresh virtual environment where
`pip install ./python` put the package; never imports the source tree. The oracle is written
here with ordinary torch ops over the full L x L score matrix (the paper's formulas,
METHOD.md): a different code path from attn's reference backend (the IR interpreter) and
from its fused cpu kernels.
"""
from __future__ import annotations

import math
import os
import sys
import tempfile
import unittest
from pathlib import Path

import torch

import attn

SKIPPED = []


def skip(case: unittest.TestCase, why: str) -> None:
    """A case that cannot run here: said on stderr and counted as skipped, never passed."""
    print(f"SKIPPED: {case.id()}: {why}", file=sys.stderr)
    SKIPPED.append(case.id())
    case.skipTest(why)


# ---- the oracle ----------------------------------------------------------------------------

def _visible(lq: int, lk: int):
    """Causal visibility [Lq, Lk] (queries are the last Lq positions), the query positions i
    [Lq, 1] and the number of visible keys n [Lq, 1]."""
    i = torch.arange(lk - lq, lk, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(lk, dtype=torch.float64).unsqueeze(0)
    return j <= i, i, i + 1


def _l1norm(x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    x = torch.where(visible, x, torch.zeros_like(x))
    den = x.abs().sum(-1, keepdim=True)
    return torch.where(den == 0, torch.zeros_like(x), x / torch.where(den == 0, torch.ones_like(den), den))


def oracle(program: str, q, k, v, p: float = 15.0, cap: float = 50.0):
    """o = W v with W by the formula of `program` (softmax, lssa, lssar, softcap), with the
    stdlib's param defaults."""
    lq, lk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    visible, i, n = _visible(lq, lk)
    i, n = i.to(q.dtype), n.to(q.dtype)
    if program in ("softmax", "softcap"):
        s = q @ k.transpose(-1, -2) / math.sqrt(d)
        if program == "softcap":
            s = cap * torch.tanh(s / cap)
        w = torch.softmax(s.masked_fill(~visible, float("-inf")), dim=-1)
    elif program in ("lssa", "lssar"):
        qn = q / q.norm(dim=-1, keepdim=True)
        kn = k / k.norm(dim=-1, keepdim=True)
        s = math.log(d) * torch.log(n) * (qn @ kn.transpose(-1, -2))
        w = _l1norm(torch.nn.functional.softplus(s), visible)
        if program == "lssar":
            offset = (i >= 3).to(q.dtype)
            w = _l1norm(torch.relu(n * w - offset) ** p, visible)
    else:
        raise ValueError(program)
    return torch.where(visible, w, torch.zeros_like(w)) @ v


def _inputs(shape_q, shape_k, dv, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*shape_q, generator=g, dtype=torch.float64)
    k = torch.randn(*shape_k, generator=g, dtype=torch.float64)
    v = torch.randn(*shape_k[:-1], dv, generator=g, dtype=torch.float64)
    return [t.to(dtype).requires_grad_() for t in (q, k, v)]


def _grads(out, inputs, dout):
    for t in inputs:
        t.grad = None
    out.backward(dout)
    return [t.grad.clone() for t in inputs]


# (program, params, B, H, Lq, Lk, D, Dv): L = 1, 37 and 501, Lq < Lk, Dv != D.
SHAPES = [
    ("softmax", {}, 2, 2, 1, 1, 16, 16),
    ("softmax", {}, 1, 2, 37, 37, 16, 8),
    ("softmax", {}, 1, 1, 501, 501, 16, 16),
    ("lssa", {}, 2, 1, 37, 37, 16, 16),
    ("lssa", {}, 1, 1, 501, 501, 16, 16),
    ("lssar", {"p": 15}, 1, 2, 1, 1, 16, 16),
    ("lssar", {"p": 15}, 2, 1, 37, 37, 16, 8),
    ("lssar", {"p": 15}, 1, 1, 501, 501, 16, 16),
    ("lssar", {"p": 3}, 1, 2, 5, 37, 32, 16),
    ("softcap", {"cap": 2.5}, 1, 1, 37, 37, 16, 16),  # a float param, small enough to matter
]


def _max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


class Against(unittest.TestCase):
    """Forward and backward of stdlib programs against the oracle."""

    def check(self, dtype, tol, backends):
        for n, (program, params, B, H, lq, lk, d, dv) in enumerate(SHAPES):
            q64, k64, v64 = _inputs((B, H, lq, d), (B, H, lk, d), dv, torch.float64, seed=100 + n)
            dout = torch.randn(B, H, lq, dv, generator=torch.Generator().manual_seed(7 + n), dtype=torch.float64)
            want = oracle(program, q64, k64, v64, **params)
            want_grads = _grads(want, [q64, k64, v64], dout)
            scale = max(1.0, want.abs().max().item())
            for backend in backends:
                f = attn.compile(program, backend=backend, **params)
                q, k, v = (t.detach().to(dtype).requires_grad_() for t in (q64, k64, v64))
                o = f(q, k, v)
                where = f"{program} {params} {backend} {dtype} q{list(q.shape)} k{list(k.shape)} v{list(v.shape)}"
                self.assertEqual(o.dtype, dtype, where)
                self.assertEqual(tuple(o.shape), (B, H, lq, dv), where)
                self.assertLess(_max_err(o, want), tol * scale, where)
                grads = _grads(o, [q, k, v], dout.to(dtype))
                for name, g, w in zip("qkv", grads, want_grads):
                    self.assertLess(_max_err(g, w), tol * max(1.0, w.abs().max().item()), f"d{name}: {where}")

    def test_float64(self):
        self.check(torch.float64, 1e-9, ["reference", "cpu", "auto"])

    def test_float32(self):
        self.check(torch.float32, 1e-4, ["reference", "cpu"])

    def test_two_dimensional(self):
        q, k, v = _inputs((37, 16), (37, 16), 16, torch.float64, seed=3)
        o = attn.compile("lssar", backend="cpu", p=15)(q, k, v)
        want = oracle("lssar", q.unsqueeze(0).unsqueeze(0), k[None, None], v[None, None])[0, 0]
        self.assertEqual(tuple(o.shape), (37, 16))
        self.assertLess(_max_err(o, want), 1e-9)


class GroupedQueryAttention(unittest.TestCase):
    """k, v with H_kv heads, H_q = G * H_kv (MQA: H_kv = 1), against the oracle on k and v
    repeated over each group (repeat_interleave: query head h reads key head h // G; the
    oracle's autograd sums dk, dv over the group through the repeat)."""

    def test_against_repeated_keys(self):
        for n, (program, params, hq, hkv, L) in enumerate([
                ("softmax", {}, 4, 2, 37), ("softmax", {}, 8, 1, 1), ("lssa", {}, 8, 1, 37),
                ("lssar", {"p": 15}, 4, 2, 37), ("lssar", {"p": 15}, 8, 1, 501)]):
            q64, k64, v64 = _inputs((2, hq, L, 16), (2, hkv, L, 16), 8, torch.float64, seed=300 + n)
            dout = torch.randn(2, hq, L, 8, generator=torch.Generator().manual_seed(30 + n), dtype=torch.float64)
            G = hq // hkv
            want = oracle(program, q64, k64.repeat_interleave(G, 1), v64.repeat_interleave(G, 1), **params)
            want_grads = _grads(want, [q64, k64, v64], dout)
            for backend in ("reference", "cpu"):
                for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
                    f = attn.compile(program, backend=backend, **params)
                    q, k, v = (t.detach().to(dtype).requires_grad_() for t in (q64, k64, v64))
                    o = f(q, k, v)
                    where = f"{program} {backend} {dtype} Hq={hq} Hkv={hkv} L={L}"
                    self.assertEqual(tuple(o.shape), (2, hq, L, 8), where)
                    self.assertLess(_max_err(o, want), tol * max(1.0, want.abs().max().item()), where)
                    grads = _grads(o, [q, k, v], dout.to(dtype))
                    self.assertEqual(tuple(grads[1].shape), (2, hkv, L, 16), where)
                    for name, g, w in zip("qkv", grads, want_grads):
                        self.assertLess(_max_err(g, w), tol * max(1.0, w.abs().max().item()), f"d{name}: {where}")

    def test_meta_shapes(self):
        if not hasattr(torch.ops.attn, "attention"):
            skip(self, "operator not registered")
        f = attn.compile("softmax")
        q = torch.empty(2, 8, 37, 16, device="meta")
        k = torch.empty(2, 2, 37, 16, device="meta")
        v = torch.empty(2, 2, 37, 8, device="meta")
        self.assertEqual(tuple(f(q, k, v).shape), (2, 8, 37, 8))
        dq, dk, dv = torch.ops.attn.attention_backward(f(q, k, v), q, k, v, f.source, "", "", "auto")
        self.assertEqual([tuple(t.shape) for t in (dq, dk, dv)], [(2, 8, 37, 16), (2, 2, 37, 16), (2, 2, 37, 8)])


def _per_document(program: str) -> str:
    """The stdlib program's text with its mask scoped `per document`."""
    text = (attn.stdlib_dir() / f"{program}.attn").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.strip().startswith("mask "):
            line = line.rstrip() + " per document"
        out.append(line)
    return "\n".join(out) + "\n"


class Documents(unittest.TestCase):
    """Packed documents (`mask causal per document`): the oracle run on each document alone,
    the documents given as ids ([L] and [B, L]) or as cu_seqlens offsets."""

    def test_against_each_document_alone(self):
        lengths = [37, 1, 101]
        L = sum(lengths)
        ids = torch.cat([torch.full((n,), d, dtype=torch.int64) for d, n in enumerate(lengths)])
        offsets = torch.tensor([0, 37, 38, L], dtype=torch.int32)
        for n, (program, params, hq, hkv) in enumerate([("softmax", {}, 2, 2), ("lssa", {}, 4, 2),
                                                        ("lssar", {"p": 15}, 8, 1)]):
            q64, k64, v64 = _inputs((2, hq, L, 16), (2, hkv, L, 16), 8, torch.float64, seed=400 + n)
            dout = torch.randn(2, hq, L, 8, generator=torch.Generator().manual_seed(40 + n), dtype=torch.float64)
            G = hq // hkv
            parts, start = [], 0
            for length in lengths:
                sl = slice(start, start + length)
                parts.append(oracle(program, q64[:, :, sl], k64[:, :, sl].repeat_interleave(G, 1),
                                    v64[:, :, sl].repeat_interleave(G, 1), **params))
                start += length
            want = torch.cat(parts, dim=2)
            want_grads = _grads(want, [q64, k64, v64], dout)
            text = _per_document(program)
            for backend in ("reference", "cpu"):
                f = attn.compile(text, backend=backend, **params)
                for how, kwargs in (("ids", {"documents": ids}), ("batch ids", {"documents": ids.expand(2, L)}),
                                    ("cu_seqlens", {"cu_seqlens": offsets})):
                    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
                        q, k, v = (t.detach().to(dtype).requires_grad_() for t in (q64, k64, v64))
                        o = f(q, k, v, **kwargs)
                        where = f"{program} {backend} {how} {dtype} Hq={hq} Hkv={hkv}"
                        self.assertLess(_max_err(o, want), tol * max(1.0, want.abs().max().item()), where)
                        grads = _grads(o, [q, k, v], dout.to(dtype))
                        for name, g, w in zip("qkv", grads, want_grads):
                            self.assertLess(_max_err(g, w), tol * max(1.0, w.abs().max().item()), f"d{name}: {where}")

    def test_errors(self):
        f = attn.compile(_per_document("softmax"), backend="cpu")
        q = torch.randn(1, 2, 6, 16)
        for kwargs, expected in (
                ({"documents": torch.tensor([0, 0, 1, 1, 0, 2])}, "position 4 has id 0 after 1"),
                ({"documents": torch.zeros(6)}, "document ids have dtype Float"),
                ({"documents": torch.zeros(5, dtype=torch.int64)}, "document ids have shape [5]"),
                ({"cu_seqlens": torch.tensor([0, 4, 5])}, "end at 5 but the sequence has 6 positions"),
                ({"cu_seqlens": torch.tensor([1, 6])}, "must start at 0")):
            with self.subTest(expected=expected):
                with self.assertRaises(attn.AttnError) as e:
                    f(q, q, q, **kwargs)
                self.assertIn(expected, str(e.exception))
        with self.assertRaises(attn.AttnError) as e:
            attn.compile("softmax", backend="cpu")(q, q, q, documents=torch.zeros(6, dtype=torch.int64))
        self.assertIn("is not per document", str(e.exception))
        with self.assertRaises(TypeError):
            f(q, q, q, documents=[0, 0, 0, 0, 0, 0])


class Gradcheck(unittest.TestCase):
    """torch.autograd.gradcheck: the op's gradients against finite differences of itself."""

    def test_gradcheck(self):
        for program, params in (("softmax", {}), ("lssa", {}), ("lssar", {"p": 15}), ("lssar", {"p": 3})):
            for backend in ("reference", "cpu"):
                f = attn.compile(program, backend=backend, **params)
                q, k, v = _inputs((1, 2, 6, 16), (1, 2, 9, 16), 8, torch.float64, seed=11)
                with self.subTest(program=program, params=params, backend=backend):
                    self.assertTrue(torch.autograd.gradcheck(f, (q, k, v), eps=1e-6, atol=1e-7, rtol=1e-5))


class Api(unittest.TestCase):
    def test_stdlib_by_name_path_and_text(self):
        names = attn.stdlib()
        for expected in ("softmax", "lssa", "lssar"):
            self.assertIn(expected, names)
        q, k, v = _inputs((1, 1, 37, 16), (1, 1, 37, 16), 16, torch.float64, seed=5)
        by_name = attn.compile("lssar", p=15, backend="reference")(q, k, v)
        by_path = attn.compile("stdlib/lssar.attn", p=15, backend="reference")(q, k, v)
        text = (attn.stdlib_dir() / "lssar.attn").read_text()
        by_text = attn.compile(text, p=15, backend="reference")(q, k, v)
        self.assertEqual(_max_err(by_name, by_path), 0.0)
        self.assertEqual(_max_err(by_name, by_text), 0.0)
        # p reached the program: p = 3 gives other numbers, which the oracle agrees with.
        p3 = attn.compile("lssar", p=3, backend="reference")(q, k, v)
        self.assertGreater(_max_err(p3, by_name), 1e-6)
        self.assertLess(_max_err(p3, oracle("lssar", q, k, v, p=3)), 1e-9)

    def test_module(self):
        layer = attn.Attention("lssar", p=15, backend="cpu")
        self.assertIsInstance(layer, torch.nn.Module)
        self.assertEqual(list(layer.parameters()), [])
        self.assertIn("lssar", repr(layer))
        q, k, v = _inputs((2, 2, 37, 16), (2, 2, 37, 16), 16, torch.float64, seed=9)
        o = layer(q, k, v)
        self.assertLess(_max_err(o, oracle("lssar", q, k, v)), 1e-9)
        o.square().sum().backward()
        self.assertTrue(all(t.grad is not None and t.grad.abs().sum() > 0 for t in (q, k, v)))

    def test_half_precision_inputs_run_in_float32(self):
        q, k, v = _inputs((1, 2, 37, 16), (1, 2, 37, 16), 16, torch.float64, seed=4)
        want = oracle("softmax", q, k, v)
        o = attn.compile("softmax", backend="cpu")(q.bfloat16(), k.bfloat16(), v.bfloat16())
        self.assertEqual(o.dtype, torch.bfloat16)
        self.assertLess(_max_err(o, want), 2e-2)

    def test_meta_tensors_give_shapes_without_running(self):
        if not hasattr(torch.ops.attn, "attention"):
            skip(self, "operator not registered")
        f = attn.compile("lssar", p=15)
        q = torch.empty(2, 3, 37, 16, device="meta")
        v = torch.empty(2, 3, 37, 8, device="meta")
        o = f(q, q, v)
        self.assertEqual(o.device.type, "meta")
        self.assertEqual(tuple(o.shape), (2, 3, 37, 8))
        dq, dk, dv = torch.ops.attn.attention_backward(o, q, q, v, f.source, "", "p=15", "auto")
        self.assertEqual([tuple(t.shape) for t in (dq, dk, dv)], [(2, 3, 37, 16), (2, 3, 37, 16), (2, 3, 37, 8)])
        with self.assertRaises(attn.AttnError) as e:
            f(q, torch.empty(2, 3, 37, 12, device="meta"), v)
        self.assertIn("same head dimension", str(e.exception))

    def test_alias_attn_torch(self):
        import attn_torch
        attn_torch.load()
        q, k, v = _inputs((1, 1, 37, 16), (1, 1, 37, 16), 16, torch.float64, seed=6)
        old = attn_torch.Attention("stdlib/lssar.attn", backend="cpu", p=3)(q, k, v)
        self.assertLess(_max_err(old, oracle("lssar", q, k, v, p=3)), 1e-9)

    def test_installed_copy_is_used(self):
        path = attn.library_path()
        self.assertTrue(path.endswith("libattn_torch_ops.so"), path)
        self.assertIn("site-packages", path)
        self.assertIn("site-packages", str(attn.stdlib_dir()))


class Errors(unittest.TestCase):
    def test_broken_program_text(self):
        with self.assertRaises(attn.CompileError) as e:
            attn.compile("attention a {\n  out qq\n}\n")
        message = str(e.exception)
        self.assertIn("<source>:2:7: error: unknown name 'qq'", message)
        self.assertNotIn("Exception raised from", message)  # no C++ backtrace

    def test_broken_file_is_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "broken.attn"
            path.write_text("attention broken {\n  mask causal\n  let s = dot(q, kk)\n  out softmax(s)\n}\n")
            with self.assertRaises(attn.CompileError) as e:
                attn.compile(path)
            self.assertRegex(str(e.exception), r"broken\.attn:3:\d+: error: unknown name 'kk'")
            self.assertIsInstance(e.exception, RuntimeError)

    def test_params(self):
        with self.assertRaises(attn.CompileError) as e:
            attn.compile("lssar", r=3)
        self.assertIn("unknown param 'r'", str(e.exception))
        with self.assertRaises(attn.CompileError) as e:
            attn.compile("lssar", p="abc")
        self.assertIn("p", str(e.exception))

    def test_unknown_names(self):
        with self.assertRaises(attn.AttnError) as e:
            attn.compile("lssr")
        self.assertIn("did you mean 'lssar'", str(e.exception))
        with self.assertRaises(FileNotFoundError):
            attn.compile("no/such/file.attn")
        with self.assertRaises(attn.AttnError) as e:
            attn.compile("softmax", backend="tpu")
        self.assertIn("unknown backend 'tpu'", str(e.exception))

    def test_bad_tensors(self):
        f = attn.compile("softmax", backend="cpu")
        q = torch.randn(1, 2, 8, 16)
        cases = [
            ((q.long(), q.long(), q.long()), "dtype"),
            ((q, torch.randn(1, 2, 8, 8), q), "same head dimension"),
            ((q, q, torch.randn(1, 2, 7, 16)), "same length"),
            ((torch.randn(8, 16), q, q), "same rank"),
            ((torch.randn(2, 8, 16), torch.randn(2, 8, 16), torch.randn(2, 8, 16)), "[B, H, L, D] or [L, D]"),
            ((q, q.double(), q), "same dtype"),
            ((torch.randn(1, 2, 9, 16), q, q), "more rows than k"),
            ((torch.randn(2, 2, 8, 16), q, q), "agree on batch"),
            ((q, torch.randn(1, 3, 8, 16), torch.randn(1, 3, 8, 16)), "(H_q = 2) must be a multiple of k and v's (H_kv = 3)"),
            ((torch.randn(1, 4, 8, 16), q, torch.randn(1, 1, 8, 16)), "same number of heads"),
        ]
        for args, expected in cases:
            with self.subTest(expected=expected):
                with self.assertRaises(attn.AttnError) as e:
                    f(*args)
                self.assertIn(expected, str(e.exception))
        with self.assertRaises(TypeError):
            f(q, q, [1.0])

    def test_cuda_backend_without_a_gpu(self):
        if torch.cuda.is_available():
            skip(self, "a GPU is present: the refusal cannot be observed")
        q = torch.randn(1, 1, 8, 16)
        with self.assertRaises(attn.AttnError) as e:
            attn.compile("softmax", backend="cuda")(q, q, q)
        self.assertIn("cuda", str(e.exception).lower())

    def test_double_backward_refused(self):
        # Asking for differentiable gradients is refused at once, rather than handing back
        # gradients whose own gradients would silently be zero.
        f = attn.compile("softmax", backend="reference")
        q, k, v = _inputs((1, 1, 8, 16), (1, 1, 8, 16), 16, torch.float64, seed=2)
        with self.assertRaises(RuntimeError) as e:
            torch.autograd.grad(f(q, k, v).sum(), q, create_graph=True)
        self.assertIn("double backward", str(e.exception))
        (gq,) = torch.autograd.grad(f(q, k, v).sum(), q)  # the plain gradient still works
        self.assertFalse(gq.requires_grad)


class TorchCompile(unittest.TestCase):
    def test_fullgraph(self):
        if not hasattr(torch, "compile"):
            skip(self, f"torch {torch.__version__} has no torch.compile (needs >= 2.0; Debian 12 ships 1.13)")
        f = attn.compile("lssar", p=15, backend="cpu")
        q, k, v = _inputs((1, 2, 37, 16), (1, 2, 37, 16), 16, torch.float32, seed=8)
        compiled = torch.compile(lambda q, k, v: f(q, k, v).sum(), fullgraph=True)
        loss = compiled(q, k, v)
        loss.backward()
        self.assertLess(abs(loss.item() - oracle("lssar", q.double(), k.double(), v.double()).sum().item()), 1e-3)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    if SKIPPED:
        print(f"{len(SKIPPED)} case(s) skipped: {', '.join(SKIPPED)}", file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() else 1)
