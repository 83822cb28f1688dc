"""The LSTM engine's compiled parts (numba): one optimizer step, and the elementwise loops
between its matrix products.

Matrix products go to the package's own kernel (gemm.c, called through ctypes: `gemm_kernel()`),
and so does the LSTM cell's elementwise work of a time step (`step_kernels()`), so a whole step
runs without the GIL and without Python in between: runs train side by side on threads. A
product's every output element is one chain of fused multiply-adds in a fixed order, and the
cell evaluates each element with the same multiplies, adds and divisions on every path, so both
give the same bits with AVX-512, AVX2 or none, at the speed of the widest the CPU has.
Everything else is a fused loop compiled without fast-math and with numpy's error model: LLVM
may vectorize a loop but never reorders, contracts or fuses float operations, so a kernel gives
the same bits for every vector width and instruction set (`tests/engine/test_kernels.py`
compiles them for a plain x86-64 target in a subprocess and compares).

tanh and sigmoid, in the cell and in the classifier's loss head, are gemm.c's: the rational
approximation TensorFlow's CPU kernels use (Eigen's `ptanh_float`, accurate to a few ulp), and
sigmoid(x) = tanh(x / 2) / 2 + 1/2.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
from pathlib import Path

import numpy as np
from numba import njit

F32 = np.float32
ONE, HALF, ZERO, TWO = F32(1.0), F32(0.5), F32(0.0), F32(2.0)

JIT = {"nogil": True, "cache": True, "error_model": "numpy", "fastmath": False}


@functools.cache
def _gemm_library() -> ctypes.CDLL:
    """gemm.c's library. Its instruction-set path is fixed here, before any thread calls it
    (LSTM_OVERFIT_GEMM may ask for a narrower one than the CPU's widest)."""
    import os

    from lstm_overfit.engine import _gemm

    lib = ctypes.CDLL(_gemm.__file__)
    lib.lstm_gemm_source.restype = ctypes.c_char_p
    source = Path(__file__).with_name("gemm.c")
    # DVC reruns a stage when gemm.c changes; results must not come from an older build of it.
    if source.exists() and lib.lstm_gemm_source().decode() != hashlib.sha256(
            source.read_bytes()).hexdigest():
        raise RuntimeError(f"{_gemm.__file__} was built from another {source.name}: "
                           "rebuild it with `pip install --no-deps -e .` (make does)")
    lib.lstm_gemm_path.restype = ctypes.c_char_p
    if lib.lstm_gemm_path() is None:
        raise RuntimeError(f"LSTM_OVERFIT_GEMM={os.environ.get('LSTM_OVERFIT_GEMM')!r}: allowed "
                           "are avx512, avx2 and scalar, as far as this CPU runs them")
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    lib.lstm_gemm.argtypes = [i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64]
    lib.lstm_gemm.restype = None
    lib.lstm_gemm_packed.argtypes = [i32, i64, i64, i64, ptr, i64, ptr, i64, ptr, i64, ptr]
    lib.lstm_gemm_packed.restype = None
    lib.lstm_gemm_pack.argtypes = [i64, i64, ptr, i64, ptr]
    lib.lstm_gemm_pack.restype = None
    lib.lstm_gemm_packed_size.argtypes = [i64, i64]
    lib.lstm_gemm_packed_size.restype = i64
    lib.lstm_gemm_lend.argtypes = [i32]
    lib.lstm_gemm_lend.restype = i32
    lib.lstm_gemm_taken_back.restype = ctypes.c_longlong
    lib.lstm_cell_forward.argtypes = [i64, i64] + [ptr] * 10
    lib.lstm_cell_forward.restype = None
    lib.lstm_cell_backward.argtypes = [i64, i64] + [ptr] * 7
    lib.lstm_cell_backward.restype = None
    lib.lstm_sigmoid.argtypes = [i64, ptr, ptr]
    lib.lstm_sigmoid.restype = None
    return lib


def gemm_kernel():
    """`lstm_gemm` as a ctypes function that compiled code calls (see `gemm`)."""
    return _gemm_library().lstm_gemm


def step_kernels():
    """gemm.c's other functions that compiled code calls, as one tuple (numba dispatches a
    call with one more ctypes argument of its own slowly, ~1 ms a step; inside a tuple, not):
    `lstm_gemm_packed` and `lstm_gemm_pack` (a matrix that many products multiply by, the
    recurrent kernel at every time step, is packed once and read from its panels, which changes
    no bits), then `lstm_cell_forward` and `lstm_cell_backward` (see `cell_forward`), and
    `lstm_sigmoid` (see `logistic_head`)."""
    lib = _gemm_library()
    return (lib.lstm_gemm_packed, lib.lstm_gemm_pack, lib.lstm_cell_forward,
            lib.lstm_cell_backward, lib.lstm_sigmoid)


def packed_buffer(k: int, n: int) -> np.ndarray:
    """Room for a k x n matrix packed by `pack`, 64-byte aligned as the kernel reads it."""
    floats = _gemm_library().lstm_gemm_packed_size(k, n)
    raw = np.zeros(floats + 16, np.float32)
    start = (-raw.ctypes.data % 64) // 4
    return raw[start:start + floats]


def lend_cores(count: int) -> int:
    """Let `count` idle cores help the products that run (0: none; see gemm.c). Lower it only
    once no product runs. Returns how many helpers there are."""
    return _gemm_library().lstm_gemm_lend(count)


def parts_taken_back() -> int:
    """How many parts of split products their callers computed themselves, since the library
    loaded, because no helper had started them (a lent core the system gave to someone else)."""
    return _gemm_library().lstm_gemm_taken_back()


def gemm_path() -> str:
    """The instruction set the matrix product runs on here: avx512, avx2 or scalar."""
    return _gemm_library().lstm_gemm_path().decode()


@njit(inline="always", **JIT)
def gemm(fn, trans_a, m, n, k, a, lda, b, ldb, c, ldc):
    """c (m x n, row-major) = op(a) @ b, op(a) = a.T if trans_a."""
    fn(1 if trans_a else 0, m, n, k, a.ctypes.data, lda, b.ctypes.data, ldb, c.ctypes.data, ldc)


@njit(inline="always", **JIT)
def pack(pack_fn, b, out):
    """out = b's panels (b: k x n, row-major), for `gemm_packed`."""
    pack_fn(b.shape[0], b.shape[1], b.ctypes.data, b.shape[1], out.ctypes.data)


@njit(inline="always", **JIT)
def gemm_packed(fn, m, n, k, a, lda, packed, b, c, ldc):
    """c (m x n) = a @ b, b read from `packed` (its panels) and, right of its last whole
    vector of columns, from b itself."""
    fn(0, m, n, k, a.ctypes.data, lda, b.ctypes.data, n, c.ctypes.data, ldc, packed.ctypes.data)


@njit(**JIT)
def transpose(a, out):
    """out = a.T: the backward pass multiplies by a weight's transpose, which the kernel
    reads as a row-major matrix."""
    rows, cols = a.shape
    block = 16  # a square of a and of out at a time: both stay in cache (256 x 1024: 0.63 -> 0.17 ms)
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        for j0 in range(0, cols, block):
            j1 = min(cols, j0 + block)
            for r in range(r0, r1):
                for j in range(j0, j1):
                    out[j, r] = a[r, j]


@njit(inline="always", **JIT)
def cell_forward(fns, z, xw, bias, c_prev, h_prev, mask, gates, c, h, tc):
    """One time step of every row (gemm.c's lstm_cell_forward): z = h_prev @ U on entry
    (Keras' gate order i, f, g, o); stores the gates and tanh(c) the backward step needs. A
    masked row (padding) keeps its previous state, as `keras.layers.LSTM` does for a masked
    step. c, h may be c_prev, h_prev (inference updates them in place)."""
    fns[2](z.shape[0], c.shape[1], z.ctypes.data, xw.ctypes.data, bias.ctypes.data,
           c_prev.ctypes.data, h_prev.ctypes.data, mask.ctypes.data, gates.ctypes.data,
           c.ctypes.data, h.ctypes.data, tc.ctypes.data)


@njit(inline="always", **JIT)
def cell_backward(fns, dh, dc, gates, c_prev, tc, mask, dz):
    """Backpropagates one time step (gemm.c's lstm_cell_backward): writes dz (the gate
    pre-activations' gradient) and turns dc into the gradient of the previous cell state. A
    masked row passes dh and dc through."""
    fns[3](dh.shape[0], dh.shape[1], dh.ctypes.data, dc.ctypes.data, gates.ctypes.data,
           c_prev.ctypes.data, tc.ctypes.data, mask.ctypes.data, dz.ctypes.data)


@njit(**JIT)
def infer(gemm_fn, fns, xt, mask, kernel, recurrent, bias, dense, dense_bias, xw, z, c, h, gates,
          tc, packed_u, out):
    """Inference-mode outputs of the rows in xt (steps x rows x features) into out: the
    regression output or the classifier's logit. fns: `step_kernels()`; xw, z, c, h, gates,
    tc, packed_u are work arrays."""
    steps, rows, features = xt.shape
    units = recurrent.shape[0]
    four = 4 * units
    gemm_p, pack_fn = fns[0], fns[1]
    gemm(gemm_fn, False, steps * rows, four, features, xt, features, kernel, four, xw, four)
    pack(pack_fn, recurrent, packed_u)
    h[:] = ZERO
    c[:] = ZERO
    for t in range(steps):
        if t:
            gemm_packed(gemm_p, rows, four, units, h, units, packed_u, recurrent, z, four)
        else:
            z[:] = ZERO
        cell_forward(fns, z, xw[t], bias, c, h, mask[t], gates, c, h, tc)
    gemm(gemm_fn, False, rows, 1, units, h, units, dense, 1, out, 1)
    for r in range(rows):
        out[r] += dense_bias[0]


@njit(**JIT)
def carry_masked(dh_new, dh, mask):
    """A masked step's output is the previous output: its gradient flows on unchanged."""
    rows, units = dh.shape
    for r in range(rows):
        if not mask[r]:
            for j in range(units):
                dh_new[r, j] += dh[r, j]


@njit(**JIT)
def column_sums(a, out):
    """out[j] = sum over rows of a[:, j], rows in order (a deterministic reduction)."""
    rows, cols = a.shape
    for j in range(cols):
        out[j] = ZERO
    for r in range(rows):
        for j in range(cols):
            out[j] += a[r, j]


@njit(**JIT)
def gather_time_major(x, idx, out):
    """out[t, b] = x[idx[b], t]: a batch of (n, steps, features) as (steps, batch, features)."""
    rows = idx.shape[0]
    steps, features = x.shape[1], x.shape[2]
    for b in range(rows):
        for t in range(steps):
            for k in range(features):
                out[t, b, k] = x[idx[b], t, k]


@njit(**JIT)
def embed_time_major(table, tokens, idx, out, mask):
    """out[t, b] = table[tokens[idx[b], t]] and mask[t, b] = token != 0 (0 is padding)."""
    rows = idx.shape[0]
    steps, dim = tokens.shape[1], table.shape[1]
    for b in range(rows):
        for t in range(steps):
            tok = tokens[idx[b], t]
            mask[t, b] = tok != 0
            for k in range(dim):
                out[t, b, k] = table[tok, k]


@njit(**JIT)
def embed_gradient(dx, tokens, idx, grad):
    """grad[token] += dx[t, b] for every step of the batch, in order (zeroes grad first)."""
    rows = idx.shape[0]
    steps, dim = tokens.shape[1], grad.shape[1]
    for v in range(grad.shape[0]):
        for k in range(dim):
            grad[v, k] = ZERO
    for t in range(steps):
        for b in range(rows):
            tok = tokens[idx[b], t]
            for k in range(dim):
                grad[tok, k] += dx[t, b, k]


@njit(**JIT)
def dropout(h, u, rate, out):
    """Keras' Dropout in training mode: keep where u >= rate, scaled by 1 / (1 - rate)."""
    scale = ONE / (ONE - rate)
    rows, units = h.shape
    for r in range(rows):
        for j in range(units):
            out[r, j] = h[r, j] * scale if u[r, j] >= rate else ZERO


@njit(**JIT)
def adam(w, g, m, v, alpha, l2):
    """keras.optimizers.Adam's update, term for term, after adding the L2 penalty's gradient
    (2 * l2 * w, as `keras.regularizers.L2` puts l2 * sum(w ** 2) in the loss)."""
    flat_w, flat_g, flat_m, flat_v = w.ravel(), g.ravel(), m.ravel(), v.ravel()
    b1, b2, eps = F32(1.0 - 0.9), F32(1.0 - 0.999), F32(1e-7)
    penalty = TWO * l2
    for k in range(flat_w.shape[0]):
        grad = flat_g[k] + penalty * flat_w[k] if l2 != ZERO else flat_g[k]
        mk = flat_m[k] + (grad - flat_m[k]) * b1
        vk = flat_v[k] + (grad * grad - flat_v[k]) * b2
        flat_m[k] = mk
        flat_v[k] = vk
        flat_w[k] -= (mk * alpha) / (np.sqrt(vk) + eps)


@njit(**JIT)
def squared_error_head(pred, y, idx, count, dpred):
    """MSE of the first `count` rows (the rest pad the epoch's last batch): the summed
    squared error in float64, and the loss gradient 2 (pred - y) / count per row."""
    total = 0.0
    scale = TWO / F32(count)
    for b in range(pred.shape[0]):
        if b < count:
            err = pred[b] - y[idx[b]]
            total += float(err) * float(err)
            dpred[b] = err * scale
        else:
            dpred[b] = ZERO
    return total


@njit(**JIT)
def logistic_head(fns, logit, y, idx, count, dpred):
    """Binary cross-entropy of a sigmoid output, computed from its logit as Keras does for
    Dense(activation="sigmoid"): the summed loss in float64, gradient (sigmoid - y) / count
    (the cell's sigmoid, gemm.c's lstm_sigmoid; fns: `step_kernels()`)."""
    total = 0.0
    inv = ONE / F32(count)
    fns[4](count, logit.ctypes.data, dpred.ctypes.data)
    for b in range(logit.shape[0]):
        if b < count:
            z = float(logit[b])
            t = float(y[idx[b]])
            total += max(z, 0.0) - z * t + np.log1p(np.exp(-abs(z)))
            dpred[b] = (dpred[b] - y[idx[b]]) * inv
        else:
            dpred[b] = ZERO
    return total


@njit(**JIT)
def train_step(gemm_fn, fns, x, tokens, y, idx, u, rate, logistic, w, g, m, v, l2, alpha,
               buf):
    """One optimizer step of one run on the rows `idx`, in place: forward, backward through
    time, and Adam. `w`, `g`, `m`, `v` are (kernel, recurrent, bias, dense, dense_bias,
    embedding) weights, gradients and moments; `u` the dropout draws (rate 0: none); `buf`
    the work arrays of this batch size; fns: `step_kernels()`. Returns the batch's summed loss
    (float64)."""
    kernel, recurrent, bias, dense, dense_bias, embedding = w
    g_kernel, g_recurrent, g_bias, g_dense, g_dense_bias, g_embedding = g
    (xt, mask, xw, z, gates, c, h, tc, dz, dh, dh2, dc, out, pred, dpred, dx, recurrent_t,
     kernel_t, packed_u, packed_ut) = buf
    gemm_p, pack_fn = fns[0], fns[1]
    steps, rows, features = xt.shape
    units = recurrent.shape[0]
    four = 4 * units
    if tokens.shape[0]:
        embed_time_major(embedding, tokens, idx, xt, mask)
    else:
        gather_time_major(x, idx, xt)
    gemm(gemm_fn, False, steps * rows, four, features, xt, features, kernel, four, xw, four)
    pack(pack_fn, recurrent, packed_u)
    for r in range(rows):
        for j in range(units):
            h[0, r, j] = ZERO
            c[0, r, j] = ZERO
    for t in range(steps):
        if t:
            gemm_packed(gemm_p, rows, four, units, h[t], units, packed_u, recurrent, z, four)
        else:
            z[:] = ZERO  # h is zero before the first step
        cell_forward(fns, z, xw[t], bias, c[t], h[t], mask[t], gates[t], c[t + 1], h[t + 1],
                     tc[t])
    last = h[steps]
    if rate > ZERO:
        dropout(last, u, rate, out)
    else:
        out[:] = last
    gemm(gemm_fn, False, rows, 1, units, out, units, dense, 1, pred, 1)
    for r in range(rows):
        pred[r] += dense_bias[0]
    if logistic:
        total = logistic_head(fns, pred, y, idx, rows, dpred)
    else:
        total = squared_error_head(pred, y, idx, rows, dpred)

    gemm(gemm_fn, True, units, 1, rows, out, units, dpred, 1, g_dense, 1)
    g_dense_bias[0] = ZERO
    for r in range(rows):
        g_dense_bias[0] += dpred[r]
    for r in range(rows):
        for j in range(units):
            dh[r, j] = dpred[r] * dense[j, 0]
            dc[r, j] = ZERO
    if rate > ZERO:
        dropout(dh, u, rate, dh)
    transpose(recurrent, recurrent_t)
    pack(pack_fn, recurrent_t, packed_ut)
    cur, nxt = dh, dh2
    for t in range(steps - 1, -1, -1):
        cell_backward(fns, cur, dc, gates[t], c[t], tc[t], mask[t], dz[t])
        if t:
            gemm_packed(gemm_p, rows, units, four, dz[t], four, packed_ut, recurrent_t, nxt, units)
            if tokens.shape[0]:
                carry_masked(nxt, cur, mask[t])
            cur, nxt = nxt, cur
    flat_dz = dz.reshape(steps * rows, four)
    # h is zero before the first step: its rows add nothing to the recurrent gradient.
    gemm(gemm_fn, True, units, four, (steps - 1) * rows, h[1:steps].reshape(-1, units),
         units, flat_dz[rows:], four, g_recurrent, four)
    gemm(gemm_fn, True, features, four, steps * rows, xt.reshape(steps * rows, features),
         features, flat_dz, four, g_kernel, four)
    column_sums(flat_dz, g_bias)
    if tokens.shape[0]:
        transpose(kernel, kernel_t)
        gemm(gemm_fn, False, steps * rows, features, four, flat_dz, four, kernel_t, features,
             dx.reshape(steps * rows, features), features)
        embed_gradient(dx, tokens, idx, g_embedding)
    zero = np.float32(0.0)
    adam(kernel, g_kernel, m[0], v[0], alpha, l2)
    adam(recurrent, g_recurrent, m[1], v[1], alpha, l2)
    adam(bias, g_bias, m[2], v[2], alpha, zero)
    adam(dense, g_dense, m[3], v[3], alpha, zero)
    adam(dense_bias, g_dense_bias, m[4], v[4], alpha, zero)
    if tokens.shape[0]:
        adam(embedding, g_embedding, m[5], v[5], alpha, zero)
    return total


@njit(**JIT)
def orthonormal_columns(at):
    """Householder QR of A (m x n, m >= n), given as at = A.T (n x m, float64, overwritten):
    returns Q.T (n x m) with Q's columns signed so that R's diagonal is positive, which is
    what Keras' Orthogonal initializer returns as q * sign(diag(r)). Every sum runs in one
    order (no BLAS, no LAPACK, whose blocking follows the CPU's cache sizes), so the weights
    are the same on every machine."""
    n, m = at.shape
    vs = np.zeros((n, m))
    signs = np.zeros(n)
    for j in range(n):
        norm = 0.0
        for i in range(j, m):
            norm += at[j, i] * at[j, i]
        norm = np.sqrt(norm)
        alpha = -norm if at[j, j] >= 0.0 else norm
        v = vs[j]
        for i in range(j, m):
            v[i] = at[j, i]
        v[j] -= alpha
        vnorm = 0.0
        for i in range(j, m):
            vnorm += v[i] * v[i]
        vnorm = np.sqrt(vnorm)
        if vnorm > 0.0:
            for i in range(j, m):
                v[i] /= vnorm
        for col in range(j, n):
            d = 0.0
            for i in range(j, m):
                d += v[i] * at[col, i]
            for i in range(j, m):
                at[col, i] -= 2.0 * v[i] * d
        signs[j] = np.sign(at[j, j])
    q = np.zeros((n, m))
    for col in range(n):
        q[col, col] = 1.0
    for j in range(n - 1, -1, -1):
        v = vs[j]
        for col in range(n):
            d = 0.0
            for i in range(j, m):
                d += v[i] * q[col, i]
            for i in range(j, m):
                q[col, i] -= 2.0 * v[i] * d
    for col in range(n):
        for i in range(m):
            q[col, i] *= signs[col]
    return q



@njit(**JIT)
def box_muller(u):
    """Standard normal float32 from uniform pairs (u[2i], u[2i+1]) in [0, 1), as TensorFlow's
    `BoxMullerFloat`: u1 clamped to 1e-7, the angle 2pi * u2 in double rounded to float, then
    glibc's logf, sqrtf and sin/cos in float32. Numba calls the process's libm for the float32
    functions, which is what TensorFlow's kernel calls."""
    out = np.empty_like(u)
    eps, minus_two = F32(1e-7), F32(-2.0)
    for i in range(0, len(u) - 1, 2):
        u1 = u[i] if u[i] >= eps else eps
        angle = F32(6.283185307179586 * np.float64(u[i + 1]))
        radius = math.sqrt(minus_two * math.log(u1))
        out[i] = math.sin(angle) * radius
        out[i + 1] = math.cos(angle) * radius
    return out
