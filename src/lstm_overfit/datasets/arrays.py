"""The dataset every training stage reads: its arrays, and their on-disk format.

A dataset is a folder of four `.npy` files and an info file. `.npy` rather than `.npz`: numpy
writes zip timestamps into `.npz`, which would make reruns differ byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def log_returns(values: np.ndarray) -> np.ndarray:
    """r[t] = log(v[t+1]) - log(v[t]), in float64, with the C library's log for each value.

    Not `np.log`: numpy runs its own vectorized log on AVX-512 machines and the C library's on
    the others, and their last bits differ, so the same prices gave other returns, scalers and
    diagnoses on an AVX2 machine than the committed ones from an AVX-512 machine."""
    flat = np.asarray(values, np.float64).tolist()
    return np.diff(np.fromiter(map(math.log, flat), np.float64, len(flat)))
