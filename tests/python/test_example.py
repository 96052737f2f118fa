"""examples/python (the small GPT whose attention is any .attn program), with the installed attn.

Run by tests/python/check_package.py inside its virtual environment. $ATTN_REPO is the
repository (the example and the text it trains on), $ATTN_BINARY the built attn.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch

REPO = Path(os.environ.get("ATTN_REPO", Path(__file__).resolve().parents[2]))
EXAMPLE = REPO / "examples" / "python" / "train.py"
ATTN = os.environ.get("ATTN_BINARY", str(REPO / "build" / "bin" / "attn"))
TEXT = sorted(str(p) for p in (REPO / "docs").glob("*.md"))


def train_py(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def losses(log: Path) -> list[float]:
    return [json.loads(line)["train_loss"] for line in log.read_text().splitlines() if line.strip()]


class Example(unittest.TestCase):
    def test_loss_falls_with_an_attn_program(self):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "log.jsonl"
            r = train_py("--text", *TEXT, "--attn", "stdlib/lssar.attn", "--set", "p=15", "--steps", "12",
                         "--seq-len", "32", "--micro-batch", "4", "--lr", "3e-3", "--log", str(log), cwd=tmp)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("attention lssar", r.stderr)
            got = losses(log)
            self.assertEqual(len(got), 12)
            # From ln(256) = 5.55 at random weights, byte-level text is learnt quickly: the
            # last three steps' mean is far below the first step's loss.
            self.assertGreater(got[0], 5.0)
            self.assertLess(sum(got[-3:]) / 3, got[0] - 1.0, got)

    def test_same_losses_as_attn_train(self):
        if not Path(ATTN).is_file():
            self.fail(f"{ATTN}: the attn binary is missing")
        with tempfile.TemporaryDirectory() as tmp:
            data, run = Path(tmp) / "data", Path(tmp) / "run"
            prep = subprocess.run([ATTN, "data", "prepare", *TEXT, "--tokenizer", "bytes", "--out", str(data)],
                                  capture_output=True, text=True, timeout=300)
            self.assertEqual(prep.returncode, 0, prep.stderr)
            common = ["--data", str(data), "--config", "tiny", "--steps", "4", "--seq-len", "32",
                      "--micro-batch", "2", "--batch-tokens", "128", "--lr", "2e-3", "--seed", "5"]
            trained = subprocess.run([ATTN, "train", "--attn", str(REPO / "stdlib" / "lssa.attn"), "--backend", "cpu",
                                      *common, "--out", str(run)], capture_output=True, text=True, timeout=600)
            self.assertEqual(trained.returncode, 0, trained.stderr)
            log = Path(tmp) / "py.jsonl"
            r = train_py(*common, "--attn", "lssa", "--backend", "cpu", "--log", str(log), "--compare", str(run),
                         "--compare-tolerance", "2e-5", cwd=tmp)
            print(r.stdout)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            theirs, ours = losses(run / "log.jsonl"), losses(log)
            self.assertEqual(len(theirs), 4)
            self.assertEqual(len(ours), 4)
            for a, b in zip(theirs, ours):
                self.assertAlmostEqual(a, b, delta=2e-5)
            # The comparison can fail: another seed gives other batches and weights.
            other = train_py(*[a if a != "5" else "6" for a in common], "--attn", "lssa", "--backend", "cpu",
                             "--compare", str(run), "--compare-tolerance", "2e-5", cwd=tmp)
            self.assertEqual(other.returncode, 1, other.stdout + other.stderr)

    def test_compile_flag_on_this_torch(self):
        if hasattr(torch, "compile"):
            print(f"SKIPPED: {self.id()}: torch {torch.__version__} has torch.compile; the refusal is for 1.13",
                  file=sys.stderr)
            self.skipTest("torch.compile exists")
        with tempfile.TemporaryDirectory() as tmp:
            r = train_py("--text", *TEXT, "--steps", "1", "--compile", cwd=tmp)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("has no torch.compile", r.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
