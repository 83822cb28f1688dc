"""The engine's fused kernels: accurate, and the same bits whatever instruction set they are
compiled for (what differs between machines of this kind)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstm_overfit.engine import kernels as k


def test_tanh_and_sigmoid_are_accurate():
    """The cell's gates with nothing but a bias: i = sigmoid(bias), g = tanh(bias); and the
    loss head's sigmoid, the same function."""
    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    units = len(x)
    zeros = np.zeros((1, 4 * units), np.float32)
    state = np.zeros((1, units), np.float32)
    gates, _, _, _ = cell_forward(zeros, zeros, np.tile(x, 4), state, state, np.ones(1, np.bool_))
    s, t = gates[0, :units], gates[0, 2 * units:3 * units]
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(t, np.tanh(x64), atol=3e-7)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x64)), atol=3e-7)
    head = np.empty_like(x)
    k.step_kernels()[4](len(x), x.ctypes.data, head.ctypes.data)
    assert np.array_equal(head, s)


def test_adam_matches_keras_formula():
    rng = np.random.default_rng(0)
    w, g = rng.random(50, dtype=np.float32), rng.random(50, dtype=np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    w0 = w.copy()
    alpha = np.float32(1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9))
    k.adam(w, g, m, v, alpha, np.float32(0.01))
    grad = g + 2 * np.float32(0.01) * w0
    mm = np.float32(0.1) * grad
    vv = np.float32(0.001) * grad * grad
    np.testing.assert_allclose(w, w0 - mm * alpha / (np.sqrt(vv) + 1e-7), rtol=1e-6)
    np.testing.assert_allclose(m, mm, rtol=1e-6)


def cell_forward(z, xw, bias, c_prev, h_prev, mask):
    """gemm.c's lstm_cell_forward through its numba wrapper: (gates, c, h, tanh(c))."""
    gates = np.full_like(z, np.nan)
    c, h, tc = (np.full_like(c_prev, np.nan) for _ in range(3))
    k.cell_forward(k.step_kernels(), z, xw, bias, c_prev, h_prev, mask, gates, c, h, tc)
    return gates, c, h, tc


def cell_backward(dh, dc, gates, c_prev, tc, mask):
    """gemm.c's lstm_cell_backward: (dz, the previous cell state's gradient)."""
    dz, dc = np.full_like(gates, np.nan), dc.copy()
    k.cell_backward(k.step_kernels(), dh, dc, gates, c_prev, tc, mask, dz)
    return dz, dc


def test_masked_rows_keep_their_state_and_pass_gradients():
    rows, units = 3, 2
    z = np.ones((rows, 4 * units), np.float32)
    xw = np.zeros_like(z)
    bias = np.zeros(4 * units, np.float32)
    c_prev = np.full((rows, units), 0.5, np.float32)
    h_prev = np.full((rows, units), 0.25, np.float32)
    mask = np.array([True, False, True])
    gates, c, h, tc = cell_forward(z, xw, bias, c_prev, h_prev, mask)
    assert (c[1] == 0.5).all() and (h[1] == 0.25).all()
    assert (gates[1] == 0).all() and (tc[1] == 0).all()
    assert not np.allclose(c[0], 0.5)
    dh = np.ones((rows, units), np.float32)
    dz, dc = cell_backward(dh, np.ones((rows, units), np.float32), gates, c_prev, tc, mask)
    assert (dz[1] == 0).all() and (dc[1] == 1).all()
    assert (dz[0] != 0).all() and (dc[0] != 1).all()
    dh_new = np.zeros_like(dh)
    k.carry_masked(dh_new, dh, mask)
    assert (dh_new[1] == 1).all() and (dh_new[0] == 0).all()


def test_the_cell_updates_its_state_in_place_as_inference_does():
    rng = np.random.default_rng(1)
    z, xw = (rng.standard_normal((5, 4 * 11), dtype=np.float32) for _ in range(2))
    bias = rng.standard_normal(4 * 11, dtype=np.float32)
    c0, h0 = (rng.standard_normal((5, 11), dtype=np.float32) for _ in range(2))
    mask = np.array([True, True, False, True, True])
    _, c_new, h_new, _ = cell_forward(z, xw, bias, c0, h0, mask)
    c, h = c0.copy(), h0.copy()
    work = np.empty_like(z), np.empty_like(c0)
    k.cell_forward(k.step_kernels(), z, xw, bias, c, h, mask, work[0], c, h, work[1])
    assert np.array_equal(c, c_new) and np.array_equal(h, h_new)
    assert np.array_equal(c[2], c0[2]) and np.array_equal(h[2], h0[2])


# The cell's formulas as numpy float32 operations, one rounding each, in the order the
# engine's docs give them: the reference the C paths must match bit for bit. tanh is Eigen's
# ptanh_float, its constants as Eigen writes them (numpy reads each as a double, then rounds).
CLAMP = np.float32(7.90531110763549805)
ALPHA = [np.float32(a) for a in (-2.76076847742355e-16, 2.00018790482477e-13,
                                 -8.60467152213735e-11, 5.12229709037114e-08,
                                 1.48572235717979e-05, 6.37261928875436e-04,
                                 4.89352455891786e-03)]  # x^13 ... x^1
BETA = [np.float32(b) for b in (1.19825839466702e-06, 1.18534705686654e-04,
                                2.26843463243900e-03, 4.89352518554385e-03)]  # x^6 ... x^0


def _tanh32(x):
    x = np.where(x > CLAMP, CLAMP, x)
    x = np.where(x < -CLAMP, -CLAMP, x)
    x2 = x * x
    p = x2 * ALPHA[0] + ALPHA[1]
    for a in ALPHA[2:]:
        p = x2 * p + a
    p = x * p
    q = x2 * BETA[0] + BETA[1]
    for b in BETA[2:]:
        q = x2 * q + b
    return p / q


def _sigmoid32(x):
    return k.HALF * _tanh32(k.HALF * x) + k.HALF


def reference_forward(z, xw, bias, c_prev):
    pre = (xw + z) + bias
    i, f, g, o = np.split(pre, 4, axis=1)
    i, f, g, o = _sigmoid32(i), _sigmoid32(f), _tanh32(g), _sigmoid32(o)
    c = f * c_prev + i * g
    t = _tanh32(c)
    return np.concatenate([i, f, g, o], axis=1), c, o * t, t


def reference_backward(dh, dc, gates, c_prev, tc):
    i, f, g, o = np.split(gates, 4, axis=1)
    one = k.ONE
    d = dc + (dh * o) * (one - tc * tc)
    dz = np.concatenate([((d * g) * i) * (one - i), ((d * c_prev) * f) * (one - f),
                         (d * i) * (one - g * g), ((dh * tc) * o) * (one - o)], axis=1)
    return dz, d * f


CELL_SHAPES = [(32, 128), (32, 32), (5, 13), (3, 8), (2, 1)]  # vectors, tails, a unit


def cell_operands(rows, units, seed=0):
    rng = np.random.default_rng(seed)

    def r(*shape):  # wide enough that the clamps at +-7.9 take part
        return (rng.standard_normal(shape) * 6).astype(np.float32)

    return r(rows, 4 * units), r(rows, 4 * units), r(4 * units), r(rows, units), r(rows, units)


@pytest.mark.parametrize(("rows", "units"), CELL_SHAPES)
def test_the_cell_computes_its_formulas_with_float32_rounding(rows, units):
    z, xw, bias, c_prev, dh = cell_operands(rows, units)
    mask = np.ones(rows, np.bool_)
    got = cell_forward(z, xw, bias, c_prev, c_prev, mask)
    for ours, ref in zip(got, reference_forward(z, xw, bias, c_prev), strict=True):
        assert np.array_equal(ours.view(np.uint32), ref.view(np.uint32))
    gates, tc = got[0], got[3]
    dc = (c_prev * np.float32(0.5)).astype(np.float32)
    got_b = cell_backward(dh, dc, gates, c_prev, tc, mask)
    for ours, ref in zip(got_b, reference_backward(dh, dc, gates, c_prev, tc), strict=True):
        assert np.array_equal(ours.view(np.uint32), ref.view(np.uint32))
    assert np.abs(gates).max() <= 1 and np.isfinite(got_b[0]).all()


CELL_DIGEST = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    from lstm_overfit.engine import kernels as k
    h = hashlib.sha256()
    for rows, units in json.loads(sys.argv[1]):
        rng = np.random.default_rng(units)
        z, xw = ((rng.standard_normal((rows, 4 * units)) * 6).astype(np.float32) for _ in "ab")
        bias = rng.standard_normal(4 * units).astype(np.float32)
        c_prev, h_prev, dh = (rng.standard_normal((rows, units)).astype(np.float32) for _ in "abc")
        mask = rng.random(rows) > 0.2
        gates = np.full_like(z, np.nan)
        c, hh, tc = (np.full_like(c_prev, np.nan) for _ in "abc")
        fns = k.step_kernels()
        k.cell_forward(fns, z, xw, bias, c_prev, h_prev, mask, gates, c, hh, tc)
        dz, dc = np.full_like(z, np.nan), c_prev.copy()
        k.cell_backward(fns, dh, dc, gates, c_prev, tc, mask, dz)
        h.update(b"".join(a.tobytes() for a in (gates, c, hh, tc, dz, dc)))
    print(k.gemm_path(), h.hexdigest())
""")


def test_the_cell_gives_the_same_bits_on_every_path():
    """The vector paths against the plain C one, masked rows and unit tails included."""
    from test_gemm import paths_this_cpu_runs

    digests = {}
    for path in paths_this_cpu_runs():
        env = {**os.environ, "LSTM_OVERFIT_GEMM": path}
        out = subprocess.run([sys.executable, "-c", CELL_DIGEST, json.dumps(CELL_SHAPES)],
                             env=env, capture_output=True, text=True, check=True)
        used, digests[path] = out.stdout.split()
        assert used == path
    assert len(set(digests.values())) == 1, digests


KERNEL_DIGEST = textwrap.dedent("""
    import hashlib
    import numpy as np
    from lstm_overfit.engine import kernels as k
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4096) * 6).astype(np.float32)
    logit, y, idx = x[:512].copy(), (x[512:1024] > 0).astype(np.float32), np.arange(512)
    dpred = np.zeros_like(logit)
    loss = np.float64(k.logistic_head(k.step_kernels(), logit, y, idx, 500, dpred))
    w, m, v = (rng.random(1000, dtype=np.float32) for _ in range(3))
    k.adam(w, rng.random(1000, dtype=np.float32), m, v, np.float32(1e-3), np.float32(1e-3))
    q = k.orthonormal_columns(rng.standard_normal((64, 256)))
    print(hashlib.sha256(b"".join(a.tobytes() for a in (loss, dpred, w, m, v, q))).hexdigest())
""")


def test_kernels_give_the_same_bits_for_every_instruction_set(tmp_path):
    """Compiled for a plain x86-64 (SSE2), for AVX2 and for AVX-512 targets: one digest.
    (A target the CPU lacks compiles but is only run where LLVM did not use its extra
    instructions; the plain and host targets always run.)"""
    digests = {}
    for cpu in ("generic", "haswell", ""):
        env = dict(os.environ)
        if cpu:  # each target its own cache; the host's is the package's, as stages use it
            env.update(NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path / cpu))
        out = subprocess.run([sys.executable, "-c", KERNEL_DIGEST], env=env, capture_output=True,
                             text=True, check=True)
        digests[cpu or "host"] = out.stdout.strip()
    assert len(set(digests.values())) == 1, digests
    assert hashlib.sha256(b"").hexdigest() not in digests.values()
