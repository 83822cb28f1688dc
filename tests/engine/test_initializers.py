"""Keras' seeded initializers without TensorFlow: bit for bit what Keras draws."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.engine import initializers as init
from lstm_overfit.engine.fast import Network, initial_weights
from lstm_overfit.infrastructure.runtime import import_keras

SEEDS = [0, 1, 7, 4 * 2 + 3, 2**31 - 1, 2**40 + 5]


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(
        a.view(np.uint32), b.view(np.uint32))


def drawn(keras, initializer, shape) -> np.ndarray:
    return keras.ops.convert_to_numpy(initializer(shape, dtype="float32"))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(1, 512), (3, 1024), (128, 1), (7, 3)])
def test_glorot_uniform_is_keras_bit_for_bit(keras, seed, shape):
    assert same_bits(init.glorot_uniform(shape, seed),
                     drawn(keras, keras.initializers.GlorotUniform(seed=seed), shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_uniform_is_keras_bit_for_bit(keras, seed):
    shape = (2001, 5)  # not a multiple of Philox's four outputs
    assert same_bits(init.uniform(shape, -0.05, 0.05, seed),
                     drawn(keras, keras.initializers.RandomUniform(-0.05, 0.05, seed=seed), shape))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(512, 128), (5,), (7, 3)])
def test_normal_is_keras_bit_for_bit(keras, seed, shape):
    ref = keras.ops.convert_to_numpy(keras.random.normal(shape, seed=seed, dtype="float32"))
    assert same_bits(init.normal(shape, seed), ref)


def test_the_first_uniform_of_a_zero_bit_word_is_clamped_before_the_log():
    """Box-Muller's log(u1) at u1 = 0 would be -inf; TensorFlow clamps u1 to 1e-7 first."""
    from lstm_overfit.engine.kernels import box_muller

    z = box_muller(np.array([0.0, 0.25], np.float32))
    assert np.all(np.isfinite(z)) and abs(z[1]) < 1e-3 < abs(z[0]) < 6.0


def test_seeds_outside_keras_range_are_refused():
    with pytest.raises(ValueError, match="outside"):
        init.random_bits(-1, 4)


@pytest.mark.parametrize("net", [Network(16, 1), Network(8, 4, "classification", 50)])
def test_initial_weights_are_what_keras_initializers_draw(keras, net):
    """The fast engine's initial weights against Keras' own initializers with the same seeds:
    the layers' kernels and embedding bit for bit, the recurrent kernel from the same normal
    draws (its QR is ours, see fast.orthogonal)."""
    from lstm_overfit.engine import kernels

    seed, u, f = 3, net.units, net.features
    w = initial_weights(net, seed)
    assert same_bits(w["kernel"], drawn(keras, keras.initializers.GlorotUniform(4 * seed), (f, 4 * u)))
    assert same_bits(w["dense"], drawn(keras, keras.initializers.GlorotUniform(4 * seed + 2), (u, 1)))
    normals = keras.ops.convert_to_numpy(keras.random.normal((4 * u, u), seed=4 * seed + 1))
    q_t = kernels.orthonormal_columns(np.ascontiguousarray(normals.T, np.float64))
    assert same_bits(w["recurrent"], np.ascontiguousarray(q_t, np.float32))
    if net.vocab:
        ref = drawn(keras, keras.initializers.RandomUniform(-0.05, 0.05, seed=4 * seed + 3), (net.vocab, f))
        assert same_bits(w["embedding"], ref)
    else:
        assert "embedding" not in w
