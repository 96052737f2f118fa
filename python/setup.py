"""Builds the attn wheel: the Python sources plus two things from the repository around them.

- libattn_torch_ops.so (runtime/python/TorchOps.cpp), the operators the package calls. Found
  in this order: $ATTN_TORCH_OPS (a built library, used as it is); the repository's CMake
  build directory ($ATTN_BUILD_DIR, default build/), brought up to date with
  `cmake --build DIR --target attn_torch_ops` (configured first when it is not yet).
- stdlib/*.attn, so that `attn.compile("lssar")` works wherever the package is installed.

Both are copied into the package (attn/_lib/, attn/stdlib/); the wheel is platform-specific.
The library is linked against the LibTorch that CMake found (Debian's libtorch-dev): the
Python torch must be the same build (Debian's python3-torch), which attn checks at import.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIBRARY = "libattn_torch_ops.so"


def fail(message: str) -> None:
    sys.stderr.write(f"attn setup: {message}\n")
    raise SystemExit(1)


def op_library() -> Path:
    given = os.environ.get("ATTN_TORCH_OPS")
    if given:
        path = Path(given)
        if not path.is_file():
            fail(f"ATTN_TORCH_OPS={given}: no such file (a built {LIBRARY} was expected)")
        return path
    if not (REPO / "CMakeLists.txt").is_file():
        fail(f"no repository around {HERE} to build {LIBRARY} from; set ATTN_TORCH_OPS to a built one")
    build_dir = Path(os.environ.get("ATTN_BUILD_DIR", REPO / "build"))
    if not (build_dir / "CMakeCache.txt").is_file():
        configure = ["cmake", "-S", str(REPO), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
    jobs = os.environ.get("ATTN_BUILD_JOBS", str(os.cpu_count() or 1))
    subprocess.run(["cmake", "--build", str(build_dir), "--target", "attn_torch_ops", "-j", jobs], check=True)
    path = build_dir / "lib" / LIBRARY
    if not path.is_file():
        fail(f"the build finished without {path} (was it configured with ATTN_WITH_TORCH=OFF?)")
    return path


class BuildWithLibrary(build_py):
    def run(self) -> None:
        super().run()
        package = Path(self.build_lib) / "attn"
        (package / "_lib").mkdir(parents=True, exist_ok=True)
        shutil.copy2(op_library(), package / "_lib" / LIBRARY)
        stdlib = REPO / "stdlib"
        if stdlib.is_dir():
            (package / "stdlib").mkdir(exist_ok=True)
            for program in sorted(stdlib.glob("*.attn")):
                shutil.copy2(program, package / "stdlib" / program.name)


class BinaryDistribution(Distribution):
    """The wheel carries a shared library: platform-specific, never `py3-none-any`."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
