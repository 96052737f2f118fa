#!/usr/bin/env python3
"""ctest `python`: installs python/ into a fresh virtual environment and tests it there.

    check_package.py --ops build/lib/libattn_torch_ops.so --attn build/bin/attn

1. Finds an interpreter with torch (PyTorch), venv, setuptools and wheel: $ATTN_PYTHON (then
   only it), else python3 on PATH, else /usr/bin/python3 (Debian's, where python3-torch
   lives). None: prints SKIPPED and exits 77, which ctest reports as skipped.
2. Creates a virtual environment in a temporary directory with --system-site-packages (for
   python3-torch) and runs `pip install --no-index --no-build-isolation ./python` in it:
   offline, with the interpreter's setuptools; the op library is the build's (--ops).
3. Runs tests/python/test_attn_package.py and tests/python/test_example.py with the
   environment's interpreter, from a directory outside the repository, so `import attn` is
   the installed copy.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIP = 77


def usable(python: str) -> str | None:
    """None when `python` has torch, venv and ensurepip; otherwise why not."""
    probe = "import torch, venv, ensurepip, setuptools, wheel"
    try:
        r = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["failed"])[-1]


def find_python() -> tuple[str | None, list[str]]:
    """The first usable interpreter; $ATTN_PYTHON, when set, is the only one tried."""
    tried, reasons = [], []
    given = os.environ.get("ATTN_PYTHON")
    for candidate in ([given] if given else [shutil.which("python3"), "/usr/bin/python3"]):
        if not candidate or candidate in tried or not Path(candidate).exists():
            continue
        tried.append(candidate)
        why = usable(candidate)
        if why is None:
            return candidate, reasons
        reasons.append(f"{candidate}: {why}")
    return None, reasons


def run(cmd: list[str], **kw) -> None:
    start = time.monotonic()
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)
    print(f"  ({time.monotonic() - start:.1f} s)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", required=True, help="the built libattn_torch_ops.so")
    ap.add_argument("--attn", required=True, help="the built attn binary (for the example's comparison)")
    args = ap.parse_args()

    python, reasons = find_python()
    if python is None:
        print("SKIPPED: python: no Python 3 with torch, venv, setuptools and wheel (install python3-torch, "
              "python3-venv, python3-setuptools, python3-wheel: scripts/setup.sh): " + "; ".join(reasons))
        return SKIP
    if not Path(args.ops).is_file():
        print(f"check_package: {args.ops}: no such file (build the attn_torch_ops target)", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="attn-python-") as tmp:
        venv = Path(tmp) / "venv"
        run([python, "-m", "venv", "--system-site-packages", str(venv)])
        vpython = str(venv / "bin" / "python")
        env = dict(os.environ, ATTN_TORCH_OPS=str(Path(args.ops).resolve()), PIP_NO_INDEX="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
        # pip builds in a copy of python/ (setup.py reads the stdlib from the repository
        # around it, so the copy keeps that layout) rather than leaving build/ and
        # *.egg-info in the source tree.
        source = Path(tmp) / "src"
        shutil.copytree(REPO / "python", source / "python", ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                                             "__pycache__"))
        shutil.copytree(REPO / "stdlib", source / "stdlib")
        run([vpython, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--quiet",
             str(source / "python")], env=env)
        # The installed package must find its own copy of the library, not $ATTN_TORCH_OPS.
        test_env = {k: v for k, v in env.items() if k != "ATTN_TORCH_OPS"}
        test_env["ATTN_BINARY"] = str(Path(args.attn).resolve())
        test_env["ATTN_REPO"] = str(REPO)
        work = Path(tmp) / "work"
        work.mkdir()
        status = 0
        for test in ("test_attn_package.py", "test_example.py"):
            r = subprocess.run([vpython, str(REPO / "tests" / "python" / test)], cwd=work, env=test_env)
            print(f"{test}: exit {r.returncode}", flush=True)
            status = status or r.returncode
        return status


if __name__ == "__main__":
    sys.exit(main())
