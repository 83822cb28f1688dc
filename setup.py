"""The one compiled part of the package (the engine's matrix product, gemm.c); everything else
is declared in pyproject.toml."""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "src/lstm_overfit/engine/gemm.c"

setup(ext_modules=[Extension(
    "lstm_overfit.engine._gemm", [SOURCE],
    # The library knows which source it was built from: kernels.py refuses a stale build.
    define_macros=[("GEMM_SOURCE_SHA256", '"%s"' % hashlib.sha256(Path(SOURCE).read_bytes()).hexdigest())],
    # The bits rest on every multiply-add being the explicit fused one the code names: no
    # contraction or reassociation of anything else by the compiler.
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"],
)])
