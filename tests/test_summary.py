from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.data import Dataset
from lstm_overfit.summary import compact_metrics, curve_rows, results_record
from lstm_overfit.training import RunResult, RunSpec


def _record():
    y_train = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=np.float32)  # var 1.25, mean 1.5
    y_val = np.array([[1.5], [3.5]], dtype=np.float32)  # mean-predictor MSE 2.0
    x = np.zeros((4, 2, 1), np.float32)
    data = Dataset(x, y_train, x[:2], y_val)
    runs = [
        RunResult(RunSpec("baseline", s), loss=(1.0, 0.5, 0.25), eval_epochs=(1, 2, 3),
                  train_mse=(1.25, 0.625, 0.125 * (s + 1)), val_mse=(2.0, 2.5, 3.0))
        for s in (0, 1)
    ]
    return results_record("toy", data, runs, epochs=3, checkpoints=(2, 3), batch_size=2,
                          steps_per_epoch=2)


def test_record_holds_ratios_at_each_checkpoint():
    rec = _record()
    assert rec["train_var"] == pytest.approx(1.25)
    assert rec["baseline_val_mse"] == pytest.approx(2.0)
    c = rec["runs"][0]["checkpoints"]
    assert c["2"] == pytest.approx({"train_mse": 0.625, "val_mse": 2.5, "train_frac": 0.5,
                                    "val_ratio": 1.25})
    assert c["3"]["train_frac"] == pytest.approx(0.1)


def test_compact_metrics_average_seeds():
    m = compact_metrics(_record())
    assert set(m["baseline"]) == {"at2", "final"}
    assert m["baseline"]["final"]["train_frac"] == pytest.approx((0.1 + 0.2) / 2)
    assert m["baseline"]["at2"]["val_ratio"] == pytest.approx(1.25)


def test_curve_rows():
    rows = curve_rows(_record(), "baseline")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert rows[2]["train_loss"] == pytest.approx(0.25)
    assert rows[0]["train_frac"] == pytest.approx(1.0)
