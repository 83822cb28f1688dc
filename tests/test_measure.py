from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.measure import (
    eval_epochs,
    mean_baseline_mse,
    mse,
    target_var,
    train_frac,
    val_ratio,
)


def test_mse_is_float64_mean_of_squares():
    pred = np.array([[1.0], [2.0]], dtype=np.float32)
    y = np.array([[0.0], [0.0]], dtype=np.float32)
    assert mse(pred, y) == pytest.approx(2.5)


def test_target_var_equals_mse_of_predicting_the_mean():
    y = np.array([[1.0], [2.0], [6.0]])
    assert target_var(y) == pytest.approx(mse(np.full_like(y, 3.0), y))


def test_mean_baseline_uses_the_training_mean():
    y_train = np.array([[0.0], [2.0]])  # mean 1
    y_val = np.array([[1.0], [3.0]])
    assert mean_baseline_mse(y_train, y_val) == pytest.approx((0 + 4) / 2)


def test_ratios():
    assert train_frac(0.02, 0.08) == pytest.approx(0.25)
    assert val_ratio(0.12, 0.08) == pytest.approx(1.5)


def test_eval_epochs_are_log_spaced_and_include_checkpoints():
    e = eval_epochs(1000, (50, 1000), points=20)
    assert e[0] == 1 and e[-1] == 1000 and 50 in e
    assert list(e) == sorted(set(e))
    gaps = np.diff(e)
    assert gaps[0] <= gaps[-1]  # dense early, sparse late
    assert len(e) <= 21


def test_eval_epochs_for_a_tiny_budget():
    assert eval_epochs(3, (2,)) == (1, 2, 3)
