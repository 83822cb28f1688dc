"""The engine's matrix product (gemm.c): accurate, and the same bits on every instruction set
it has a path for, so an AVX-512 machine computes what an AVX2 machine computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lstm_overfit.engine import kernels as k

# (m, n, k, trans_a): the model's shapes (a step's gate product, the recurrent gradient, the
# dense head, a small model's weight gradient in slices of k) and shapes that leave every kind
# of tail (rows, vector and scalar columns, a last short slice of k), and k = 0 (all zeros).
SHAPES = [(32, 1024, 256, False), (256, 1024, 608, True), (32, 1, 128, False),
          (128, 1, 32, True), (32, 128, 992, True), (640, 512, 3, False), (7, 13, 5, False),
          (33, 40, 17, True), (33, 40, 300, True), (9, 24, 1, True), (1, 48, 70, False),
          (30, 48, 21, False), (5, 24, 0, False)]

PRODUCTS = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from lstm_overfit.engine.kernels import gemm_kernel, gemm_path
    shapes = json.loads(sys.argv[1])
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    fn = gemm_kernel()
    for m, n, kk, trans in shapes:
        a = rng.standard_normal((kk, m) if trans else (m, kk), dtype=np.float32)
        b = rng.standard_normal((kk, n), dtype=np.float32)
        c = np.full((m, n), np.nan, np.float32)
        fn(int(trans), m, n, kk, a.ctypes.data, a.shape[1], b.ctypes.data, n, c.ctypes.data, n)
        h.update(c.tobytes())
    print(gemm_path(), h.hexdigest())
""")


def products(path: str) -> tuple[str, str]:
    env = {**os.environ, "LSTM_OVERFIT_GEMM": path}
    out = subprocess.run([sys.executable, "-c", PRODUCTS, json.dumps(SHAPES)],
                         env=env, capture_output=True, text=True, check=True)
    used, digest = out.stdout.split()
    return used, digest


def paths_this_cpu_runs() -> list[str]:
    flags = Path("/proc/cpuinfo").read_text().split()
    return (["avx512"] if "avx512f" in flags else []) + ["avx2", "scalar"]


def test_every_path_gives_the_same_bits():
    found = {}
    for path in paths_this_cpu_runs():
        used, digest = products(path)
        assert used == path
        found[path] = digest
    assert len(set(found.values())) == 1, found


def operands(seed: int, m: int, n: int, kk: int, trans: bool) -> tuple[np.ndarray, np.ndarray]:
    """Normal draws for A (stored transposed when trans) and B."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((kk, m) if trans else (m, kk), dtype=np.float32),
            rng.standard_normal((kk, n), dtype=np.float32))


def in_place(a: np.ndarray, b: np.ndarray, trans: bool = False) -> np.ndarray:
    """op(A) @ B by the engine's product, reading B in place."""
    m = a.shape[1] if trans else a.shape[0]
    c = np.full((m, b.shape[1]), np.nan, np.float32)
    k.gemm_kernel()(int(trans), m, b.shape[1], b.shape[0], a.ctypes.data, a.shape[1],
                    b.ctypes.data, b.shape[1], c.ctypes.data, b.shape[1])
    return c


@pytest.mark.parametrize(("m", "n", "kk", "trans"), SHAPES)
def test_products_are_accurate(m, n, kk, trans):
    a, b = operands(1, m, n, kk, trans)
    c = in_place(a, b, trans)
    exact = (a.T if trans else a).astype(np.float64) @ b.astype(np.float64)
    # a chain of k roundings: within k ulp-sized steps of the exact sum's magnitude
    bound = kk * np.finfo(np.float32).eps * (np.abs(a.T if trans else a) @ np.abs(b))
    assert (np.abs(c - exact) <= bound + 1e-30).all()


def test_the_order_is_sequential_fused_multiply_adds():
    """Each element is fma(a[k-1], b[k-1], ... fma(a[0], b[0], 0)): added in order, one
    rounding per step. Both facts decide bits, so both are pinned with values where any other
    choice gives another number."""
    ones = np.ones((3, 16), np.float32)  # 16 columns: the vector paths, not only the tail
    # In order: 2^24 + 1 rounds back to 2^24, then - 2^24 leaves 0 (any other order gives 1).
    order = in_place(np.array([[2.0**24, 1.0, -(2.0**24)]], np.float32), ones)
    assert (order == 0).all()
    # Also across the slices of a long k (B read in place): each slice continues the chain.
    long = np.array([[2.0**24] + [1.0] * 298 + [-(2.0**24)]], np.float32)
    assert (in_place(long, np.ones((300, 16), np.float32)) == 0).all()
    # Fused: -1 + (1 + 2^-13)(1 - 2^-13) = -2^-26 exactly; rounding the product first gives 0.
    fused = in_place(np.array([[1.0, 1.0 + 2.0**-13]], np.float32),
                    np.array([[-1.0] * 16, [1.0 - 2.0**-13] * 16], np.float32))
    assert (fused == np.float32(-(2.0**-26))).all()


def test_an_unknown_path_is_refused_with_the_allowed_ones():
    env = {**os.environ, "LSTM_OVERFIT_GEMM": "sse9"}
    code = "from lstm_overfit.engine import kernels as k; k.gemm_kernel()"
    out = subprocess.run([sys.executable, "-c", code],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "LSTM_OVERFIT_GEMM='sse9': allowed are avx512, avx2 and scalar" in out.stderr


# Shapes big enough to be split among helpers: by columns (wide n) and by rows (narrow n).
SPLIT = [(32, 1024, 256, False), (32, 256, 1024, False), (256, 1024, 608, True),
         (640, 1024, 3, False), (512, 40, 129, False), (300, 33, 700, True), (5, 3, 9000, False)]


@pytest.mark.parametrize(("m", "n", "kk", "trans"), SPLIT + SHAPES)
def test_a_product_split_among_idle_cores_gives_the_same_bits(m, n, kk, trans):
    a, b = operands(2, m, n, kk, trans)
    results = []
    try:
        for helpers in (0, 1, 3):
            assert k.lend_cores(helpers) == helpers
            results.append(in_place(a, b, trans))
    finally:
        k.lend_cores(0)
    assert not np.isnan(results[0]).any()
    assert all(np.array_equal(results[0], r) for r in results[1:])


# A lent helper on the caller's own core: it runs only when the caller does not.
HELPER_ON_MY_CORE = textwrap.dedent("""
    import os
    import numpy as np
    from lstm_overfit.engine import kernels as k
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the helper thread inherits it
    fn = k.gemm_kernel()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 128), dtype=np.float32)
    b = rng.standard_normal((128, 512), dtype=np.float32)
    def product():
        c = np.full((32, 512), np.nan, np.float32)
        fn(0, 32, 512, 128, a.ctypes.data, 128, b.ctypes.data, 512, c.ctypes.data, 512)
        return c
    alone = product()
    k.lend_cores(1)
    same = all(np.array_equal(product(), alone) for _ in range(200))
    k.lend_cores(0)
    print(same, k.parts_taken_back())
""")


def test_a_part_no_helper_started_is_computed_by_its_caller_with_the_same_bits():
    """A lent core the system gives to someone else (here: the helper shares the caller's
    core) does not keep the caller waiting: the caller computes the part itself."""
    out = subprocess.run([sys.executable, "-c", HELPER_ON_MY_CORE], capture_output=True,
                         text=True, check=True, timeout=120)
    same, taken = out.stdout.split()
    assert same == "True"
    assert int(taken) > 0


@pytest.mark.parametrize(("m", "n", "kk", "trans"), SPLIT + SHAPES)
def test_a_product_from_packed_panels_gives_the_same_bits(m, n, kk, trans):
    """B packed once (lstm_gemm_pack) and read from its panels: alone and split among idle
    cores (by rows), the bits of the product that reads B in place."""
    a, b = operands(3, m, n, kk, trans)
    plain = in_place(a, b, trans)
    product, pack = k.step_kernels()[:2]
    packed = k.packed_buffer(kk, n)
    assert packed.size == 0 or packed.ctypes.data % 64 == 0  # empty: no whole vector of columns
    pack(kk, n, b.ctypes.data, n, packed.ctypes.data)
    try:
        for helpers in (0, 1, 3):
            assert k.lend_cores(helpers) == helpers
            c = np.full((m, n), np.nan, np.float32)
            product(int(trans), m, n, kk, a.ctypes.data, a.shape[1], b.ctypes.data, n,
                    c.ctypes.data, n, packed.ctypes.data)
            assert np.array_equal(c, plain), helpers
    finally:
        k.lend_cores(0)


def test_packed_panels_give_the_same_bits_on_every_path():
    script = PRODUCTS.replace(
        "fn(int(trans), m, n, kk, a.ctypes.data, a.shape[1], b.ctypes.data, n, c.ctypes.data, n)",
        "packed = k.packed_buffer(kk, n); pack(kk, n, b.ctypes.data, n, packed.ctypes.data); "
        "fn(int(trans), m, n, kk, a.ctypes.data, a.shape[1], b.ctypes.data, n, c.ctypes.data, "
        "n, packed.ctypes.data)").replace(
        "fn = gemm_kernel()",
        "from lstm_overfit.engine import kernels as k; fn, pack = k.step_kernels()[:2]")
    assert "packed.ctypes.data)" in script and "step_kernels" in script
    digests = set()
    for path in paths_this_cpu_runs():
        env = {**os.environ, "LSTM_OVERFIT_GEMM": path}
        out = subprocess.run([sys.executable, "-c", script, json.dumps(SHAPES)], env=env,
                             capture_output=True, text=True, check=True)
        used, digest = out.stdout.split()
        assert used == path
        digests.add(digest)
    assert digests == {products("scalar")[1]}
