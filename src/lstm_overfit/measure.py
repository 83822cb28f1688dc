"""Overfitting measurements. The article made none; these are what its claims are judged by."""

from __future__ import annotations

import numpy as np


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error in float64, whatever the inputs' dtype."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(target, dtype=np.float64)
    return float(np.mean(diff**2))


def target_var(y_train: np.ndarray) -> float:
    """Variance of the training targets: the MSE of a model that learned only their mean."""
    return float(np.var(np.asarray(y_train, dtype=np.float64)))


def mean_baseline_mse(y_train: np.ndarray, y_val: np.ndarray) -> float:
    """MSE on the validation set of predicting the training-target mean."""
    mean = float(np.mean(np.asarray(y_train, dtype=np.float64)))
    return mse(np.full_like(y_val, mean, dtype=np.float64), y_val)


def train_frac(train_mse: float, train_var: float) -> float:
    """1: learned only the mean; 0: memorized the training targets."""
    return train_mse / train_var


def val_ratio(val_mse: float, baseline_val_mse: float) -> float:
    """Above 1: worse on new data than predicting the training mean."""
    return val_mse / baseline_val_mse


def eval_epochs(epochs: int, checkpoints: tuple[int, ...], points: int = 40) -> tuple[int, ...]:
    """Log-spaced epochs from 1 to `epochs`, plus every checkpoint.

    Dense early, where curves move fastest, sparse late; measuring the full training set
    every epoch would cost a third more training time.
    """
    spaced = np.unique(np.round(np.geomspace(1, epochs, num=points)).astype(int))
    return tuple(sorted(set(spaced.tolist()) | set(checkpoints) | {epochs}))
