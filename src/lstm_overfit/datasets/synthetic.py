"""The article's generated data: uniform random inputs and targets, and the noisy sinusoid."""

from __future__ import annotations

import numpy as np

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.params import RandomData, SineData


def random_split(n: int, seq_len: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The article's data: X ~ U(0,1) of shape (n, seq_len, features), y ~ U(0,1) of (n, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, seq_len, features), dtype=np.float32)
    y = rng.random((n, 1), dtype=np.float32)
    return x, y


def random_dataset(p: RandomData) -> Dataset:
    """Training and validation sets from the same generator, each with its own seed."""
    x_train, y_train = random_split(p.n_train, p.seq_len, p.features, p.seed)
    x_val, y_val = random_split(p.n_val, p.seq_len, p.features, p.val_seed)
    return Dataset(x_train, y_train, x_val, y_val)


def sine_split(n: int, window: int, period: float, noise: float, seed: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """n windows of `window` noisy steps of sin(2*pi*t/period), each predicting the next one.

    Each window starts at its own random phase so that windows are independent draws and
    a held-out set from another seed is new data, not the same curve again.
    """
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.0, period, size=(n, 1))
    t = start + np.arange(window + 1)
    series = np.sin(2 * np.pi * t / period) + rng.normal(0.0, noise, size=t.shape)
    series = series.astype(np.float32)
    return series[:, :window, None], series[:, window:]


def sine_dataset(p: SineData) -> Dataset:
    """The noisy sinusoid, with the noise variance as the floor any honest fit stays above."""
    x_train, y_train = sine_split(p.n_train, p.window, p.period, p.noise, p.seed)
    x_val, y_val = sine_split(p.n_val, p.window, p.period, p.noise, p.val_seed)
    return Dataset(x_train, y_train, x_val, y_val, noise_var=p.noise**2)


def make_dataset(p: RandomData | SineData) -> Dataset:
    """Generate the dataset that a `datasets.<name>` entry describes."""
    return random_dataset(p) if isinstance(p, RandomData) else sine_dataset(p)
