"""Dataset generators and the on-disk format every training stage reads.

A dataset is a folder of four `.npy` files. `.npy` rather than `.npz`: numpy writes zip
timestamps into `.npz`, which would make reruns differ byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_overfit.params import RandomData, SineData

ARRAYS = ("x_train", "y_train", "x_val", "y_val")
INFO_FILE = "info.json"


@dataclass(frozen=True)
class Dataset:
    """Training and held-out arrays: x is (n, steps, features) float32, or (n, steps) int32
    token ids for a text classifier (0 pads); y is (n, 1) float32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    noise_var: float | None = None  # the generator's irreducible error, where it has one
    vocab: int = 0  # token ids are below this (a text classifier's Embedding input_dim)

    def __post_init__(self) -> None:
        tokens = self.x_train.dtype.kind == "i"
        for name in ARRAYS:
            a = getattr(self, name)
            want = 2 if tokens or name.startswith("y") else 3
            if a.ndim != want or not np.isfinite(a).all():
                raise ValueError(f"{name}: expected a finite {want}-d array, got shape {a.shape}")
        if len(self.x_train) != len(self.y_train) or len(self.x_val) != len(self.y_val):
            raise ValueError("x and y must have the same number of rows")
        if self.x_train.shape[1:] != self.x_val.shape[1:]:
            raise ValueError("training and validation windows differ in shape")


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


def save_dataset(ds: Dataset, folder: Path) -> None:
    """Write the four arrays and a small info file into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        np.save(folder / f"{name}.npy", getattr(ds, name), allow_pickle=False)
    with open(folder / INFO_FILE, "w", encoding="utf-8") as f:
        json.dump({"noise_var": ds.noise_var, "vocab": ds.vocab}, f, indent=2)
        f.write("\n")


def load_dataset(folder: Path) -> Dataset:
    """Read what `save_dataset` wrote."""
    arrays = {name: np.load(folder / f"{name}.npy", allow_pickle=False) for name in ARRAYS}
    with open(folder / INFO_FILE, encoding="utf-8") as f:
        info = json.load(f)
    return Dataset(**arrays, noise_var=info["noise_var"], vocab=info.get("vocab", 0))


def dataset_hash(ds: Dataset) -> str:
    """sha256 over the four arrays: identifies the data a run saw, whatever its file."""
    h = hashlib.sha256()
    for name in ARRAYS:
        a = np.ascontiguousarray(getattr(ds, name))
        h.update(f"{name}{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()
