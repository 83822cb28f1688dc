from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.data import (
    Dataset,
    dataset_hash,
    load_dataset,
    make_dataset,
    random_split,
    save_dataset,
    sine_split,
)
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


def test_save_load_roundtrip_is_byte_stable(tmp_path):
    ds = make_dataset(SineData(n_train=4, n_val=3, window=5, period=10, noise=0.1, seed=0, val_seed=1))
    save_dataset(ds, tmp_path / "a")
    save_dataset(ds, tmp_path / "b")
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()
    back = load_dataset(tmp_path / "a")
    np.testing.assert_array_equal(back.x_train, ds.x_train)
    assert back.noise_var == ds.noise_var
    assert dataset_hash(back) == dataset_hash(ds)


def test_dataset_rejects_bad_arrays():
    x, y = random_split(4, 3, 1, 0)
    with pytest.raises(ValueError, match="same number of rows"):
        Dataset(x, y[:3], x, y)
    bad = x.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        Dataset(bad, y, x, y)


def test_token_datasets_keep_their_vocabulary(tmp_path):
    tokens = np.array([[3, 4, 0], [5, 0, 0]], np.int32)
    labels = np.array([[1.0], [0.0]], np.float32)
    ds = Dataset(tokens, labels, tokens, labels, vocab=6)
    save_dataset(ds, tmp_path / "t")
    back = load_dataset(tmp_path / "t")
    assert back.vocab == 6 and back.x_train.dtype == np.int32
    np.testing.assert_array_equal(back.x_train, tokens)
    with pytest.raises(ValueError, match="2-d"):
        Dataset(tokens[:, :, None], labels, tokens, labels, vocab=6)
