from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.datasets.synthetic import make_dataset, random_split, sine_split
from lstm_overfit.params import RandomData, SineData


def test_random_shapes_and_range():
    ds = make_dataset(RandomData(n_train=7, n_val=5, seq_len=4, features=3, seed=1, val_seed=2))
    assert ds.x_train.shape == (7, 4, 3) and ds.y_train.shape == (7, 1)
    assert ds.x_val.shape == (5, 4, 3) and ds.y_val.shape == (5, 1)
    assert ds.x_train.dtype == np.float32
    assert ds.x_train.min() >= 0 and ds.x_train.max() < 1
    assert ds.noise_var is None


def test_seeding_is_reproducible_and_seed_dependent():
    a, b, c = random_split(5, 3, 1, 0), random_split(5, 3, 1, 0), random_split(5, 3, 1, 1)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_validation_set_is_independent_of_training_set():
    p = RandomData(n_train=50, n_val=50, seq_len=4, features=1, seed=3, val_seed=4)
    ds = make_dataset(p)
    assert not np.isin(ds.y_val, ds.y_train).any()
    # changing the training size leaves the held-out set untouched
    ds2 = make_dataset(RandomData(n_train=10, n_val=50, seq_len=4, features=1, seed=3, val_seed=4))
    np.testing.assert_array_equal(ds.x_val, ds2.x_val)


def test_sine_windows_predict_the_next_value():
    x, y = sine_split(200, window=20, period=50, noise=0.0, seed=0)
    assert x.shape == (200, 20, 1) and y.shape == (200, 1)
    # noise-free: consecutive steps follow the sinusoid, so the next value is predictable
    step = 2 * np.pi / 50
    last, prev = x[:, -1, 0], x[:, -2, 0]
    predicted = 2 * np.cos(step) * last - prev  # sin(a+h) = 2cos(h)sin(a) - sin(a-h)
    np.testing.assert_allclose(y[:, 0], predicted, atol=1e-5)


def test_sine_noise_has_the_requested_variance():
    p = SineData(n_train=2000, n_val=10, window=5, period=50, noise=0.1, seed=0, val_seed=1)
    ds = make_dataset(p)
    clean_x, clean_y = sine_split(2000, 5, 50, 0.0, 0)
    assert ds.noise_var == pytest.approx(0.01)
    np.testing.assert_allclose(np.var(ds.y_train - clean_y), 0.01, rtol=0.1)
    assert np.var(ds.x_train - clean_x) > 0
