"""The engine's fused kernels: accurate, and the same bits whatever instruction set they are
compiled for (what differs between machines of this kind)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np

from lstm_overfit.engine import kernels as k


def test_tanh_and_sigmoid_are_accurate():
    from numba import njit

    @njit
    def both(x, t, s):
        for i in range(x.shape[0]):
            t[i] = k.tanh(x[i])
            s[i] = k.sigmoid(x[i])

    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    t, s = np.empty_like(x), np.empty_like(x)
    both(x, t, s)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(t, np.tanh(x64), atol=3e-7)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x64)), atol=3e-7)


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


def test_masked_rows_keep_their_state_and_pass_gradients():
    rows, units = 3, 2
    z = np.ones((rows, 4 * units), np.float32)
    xw = np.zeros_like(z)
    bias = np.zeros(4 * units, np.float32)
    c_prev = np.full((rows, units), 0.5, np.float32)
    h_prev = np.full((rows, units), 0.25, np.float32)
    mask = np.array([True, False, True])
    gates = np.zeros_like(z)
    c, h, tc = (np.zeros_like(c_prev) for _ in range(3))
    k.lstm_forward_step(z, xw, bias, c_prev, h_prev, mask, gates, c, h, tc)
    assert (c[1] == 0.5).all() and (h[1] == 0.25).all()
    assert not np.allclose(c[0], 0.5)
    dh = np.ones((rows, units), np.float32)
    dc = np.ones((rows, units), np.float32)
    dz = np.ones_like(z)
    k.lstm_backward_step(dh, dc, gates, c_prev, tc, mask, dz)
    assert (dz[1] == 0).all() and (dc[1] == 1).all()
    dh_new = np.zeros_like(dh)
    k.carry_masked(dh_new, dh, mask)
    assert (dh_new[1] == 1).all() and (dh_new[0] == 0).all()


KERNEL_DIGEST = textwrap.dedent("""
    import hashlib
    import numpy as np
    from lstm_overfit.engine import kernels as k
    rng = np.random.default_rng(0)
    rows, units = 32, 64
    z = (rng.standard_normal((rows, 4 * units)) * 3).astype(np.float32)
    xw = rng.random((rows, 4 * units), dtype=np.float32)
    bias = rng.random(4 * units, dtype=np.float32)
    c_prev = rng.standard_normal((rows, units)).astype(np.float32)
    h_prev = np.zeros_like(c_prev)
    mask = np.ones(rows, np.bool_)
    gates = np.zeros_like(z)
    c, h, tc = (np.zeros_like(c_prev) for _ in range(3))
    k.lstm_forward_step(z, xw, bias, c_prev, h_prev, mask, gates, c, h, tc)
    dh = rng.standard_normal((rows, units)).astype(np.float32)
    dc = np.zeros_like(dh)
    dz = np.zeros_like(z)
    k.lstm_backward_step(dh, dc, gates, c_prev, tc, mask, dz)
    w, m, v = (rng.random(1000, dtype=np.float32) for _ in range(3))
    k.adam(w, rng.random(1000, dtype=np.float32), m, v, np.float32(1e-3), np.float32(1e-3))
    q = k.orthonormal_columns(rng.standard_normal((64, 256)))
    print(hashlib.sha256(b"".join(a.tobytes() for a in (gates, c, h, dz, dc, w, m, v, q))).hexdigest())
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
