"""The dataset container and its files: checked arrays, byte-stable files, one hash."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_overfit.datasets.arrays import (
    Dataset,
    dataset_hash,
    load_dataset,
    log_returns,
    save_dataset,
)
from lstm_overfit.datasets.synthetic import make_dataset, random_split
from lstm_overfit.params import SineData


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


def test_log_returns_are_the_c_librarys_logs_bit_for_bit():
    assert log_returns(np.array([1.0, math.e, 1.0])).tolist() == [1.0, -1.0]
    prices = np.random.default_rng(0).uniform(1.0, 500.0, 2000)
    expected = [math.log(b) - math.log(a) for a, b in zip(prices[:-1], prices[1:], strict=True)]
    assert log_returns(prices).tobytes() == np.array(expected).tobytes()
    assert log_returns(prices.astype(np.float32)).dtype == np.float64
