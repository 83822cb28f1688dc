"""Keras' seeded initializers as the TensorFlow backend draws them, bit for bit, without TensorFlow.

`keras.initializers.GlorotUniform(seed=s)`, `RandomUniform(seed=s)` and the normal draws of
`Orthogonal(seed=s)` call `tf.random.stateless_uniform` / `stateless_normal` with the seed
`[s, 0]`. On a CPU those are Philox-4x32-10 (Salmon et al. 2011, as in
tensorflow/core/lib/random/philox_random.h): the seed is scrambled into a key and a counter by
one Philox call with a fixed key, and the i-th group of four outputs is Philox of counter + i.
A uniform float keeps 23 random bits as the mantissa of a number in [1, 2) and subtracts 1; a
normal pair is Box-Muller in float32 with glibc's `logf` and `sincosf`, as TensorFlow's
`BoxMullerFloat` computes it (kernels.box_muller). Importing TensorFlow costs a stage ~4 s;
these draws cost milliseconds, and tests/engine/test_initializers.py compares them bit for bit
with Keras.
"""

from __future__ import annotations

import math

import numpy as np

from lstm_overfit.engine import kernels as k

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_SCRAMBLE_KEY = (0x3EC8F720, 0x02461E29)  # TensorFlow's fixed key for turning a seed into a key
_LOW = np.uint64(0xFFFFFFFF)


def philox(counter: tuple[np.ndarray, ...], key: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Philox-4x32-10 of each counter (four uint32 arrays) under `key`: four uint32 arrays."""
    c0, c1, c2, c3 = (np.asarray(c, np.uint32) for c in counter)
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    with np.errstate(over="ignore"):
        for rnd in range(10):
            if rnd:
                k0, k1 = k0 + _W0, k1 + _W1
            p0 = _M0 * c0.astype(np.uint64)
            p1 = _M1 * c2.astype(np.uint64)
            hi0, lo0 = (p0 >> np.uint64(32)).astype(np.uint32), (p0 & _LOW).astype(np.uint32)
            hi1, lo1 = (p1 >> np.uint64(32)).astype(np.uint32), (p1 & _LOW).astype(np.uint32)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def random_bits(seed: int, count: int) -> np.ndarray:
    """The first `count` uint32 of TensorFlow's stateless stream for the seed `[seed, 0]`."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed {seed} is outside [0, 2**63)")
    seed %= 2**31 - 2  # Keras' TensorFlow backend folds int64 seeds so (random._cast_seed)
    one = np.ones(1, np.uint32)
    w = philox((one * seed, one * 0, one * 0, one * 0), _SCRAMBLE_KEY)
    groups = np.arange(-(-count // 4), dtype=np.uint32)
    zero = np.zeros_like(groups)
    out = philox((groups, zero, zero + w[2][0], zero + w[3][0]), (int(w[0][0]), int(w[1][0])))
    return np.stack(out, axis=1).reshape(-1)[:count]


def unit_floats(bits: np.ndarray) -> np.ndarray:
    """Uniform float32 in [0, 1): the 23 low bits as the mantissa of [1, 2), minus 1."""
    return ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1)


def uniform(shape: tuple[int, ...], low: float, high: float, seed: int) -> np.ndarray:
    """`keras.random.uniform(shape, low, high, seed=seed)`: rnd * (high - low) + low in float32."""
    lo, hi = np.float32(low), np.float32(high)
    rnd = unit_floats(random_bits(seed, math.prod(shape))).reshape(shape)
    return rnd * (hi - lo) + lo


def normal(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """`keras.random.normal(shape, seed=seed)`: standard normal float32, Box-Muller pairs."""
    count = math.prod(shape)
    bits = random_bits(seed, count + count % 2)
    return k.box_muller(unit_floats(bits))[:count].reshape(shape)


def glorot_uniform(shape: tuple[int, int], seed: int) -> np.ndarray:
    """`keras.initializers.GlorotUniform(seed)(shape)` for a 2-d kernel."""
    limit = math.sqrt(3.0 / max(1.0, (shape[0] + shape[1]) / 2.0))
    return uniform(shape, -limit, limit, seed)
