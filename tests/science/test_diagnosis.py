"""The diagnosis: its controls on series whose answer is known by construction, and each of its
answers from runs built to give it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.datasets.series import windows
from lstm_overfit.params import load_params
from lstm_overfit.science.diagnosis import (
    NO_PATTERN,
    PATTERN_ONLY,
    TOO_LITTLE,
    TOO_MUCH_DATA,
    Controls,
    controls,
    diagnose,
    linear_floor,
    mase,
)
from records import levelling, make_record, memorizing

P = load_params(Path(__file__).resolve().parents[2] / "params.yaml")


def dataset(series: np.ndarray, lookback: int = 5, cut: float = 0.8) -> tuple[Dataset, np.ndarray]:
    s = (series - series.mean()) / series.std()
    n = int(len(s) * cut)
    x, y = windows(s[:n, None], lookback, 1)
    xv, yv = windows(s[n:, None], lookback, 1)
    return Dataset(x, y, xv, yv), s[:n]


RNG = np.random.default_rng(0)
WHITE = RNG.normal(size=600)
WALK = np.cumsum(RNG.normal(size=600))
AR1 = np.zeros(600)
for i in range(1, 600):
    AR1[i] = 0.8 * AR1[i - 1] + RNG.normal()
SINE = np.sin(np.arange(600) * 2 * np.pi / 25)


def test_ljung_box_tells_white_noise_from_structure():
    assert controls(*dataset(WHITE), 1, P.diagnosis).ljung_box_p > 0.05
    for series in (AR1, SINE, WALK):
        assert controls(*dataset(series), 1, P.diagnosis).ljung_box_p < 1e-6


def test_naive_forecasts_last_value_wins_on_a_walk_mean_on_noise():
    walk = controls(*dataset(WALK), 1, P.diagnosis)
    assert walk.naive_last_mse < 0.2 * walk.naive_mean_mse
    noise = controls(*dataset(WHITE), 1, P.diagnosis)
    assert noise.naive_mean_mse < 0.7 * noise.naive_last_mse  # last value doubles the noise


def test_linear_floor_is_the_unexplained_part():
    d, _ = dataset(AR1)
    # An AR(1) leaves its innovations (variance 1 of a process with variance 1 / (1 - 0.64)).
    assert linear_floor(d) == pytest.approx(0.36, rel=0.15)
    assert linear_floor(dataset(SINE)[0]) < 1e-6  # a sine is a linear recurrence
    assert linear_floor(dataset(WHITE)[0]) == pytest.approx(1.0, rel=0.1)
    x = RNG.normal(size=(7, 5, 1)).astype(np.float32)  # 7 windows for 6 coefficients
    few = Dataset(x, RNG.normal(size=(7, 1)).astype(np.float32), x, x[:, 0, :])
    assert linear_floor(few) == pytest.approx(float(np.var(few.y_train, dtype=np.float64)), rel=1e-12)


def test_mase_is_one_for_the_naive_forecast_in_sample():
    d, s = dataset(WALK)
    c = controls(d, s, 1, P.diagnosis)
    last_train = d.x_train[:, -1, 0]
    naive_mae = float(np.mean(np.abs(last_train - d.y_train[:, 0])))
    assert mase(last_train, d.y_train, c) == pytest.approx(naive_mae / c.scale_mae)
    assert mase(last_train, d.y_train, c) == pytest.approx(1.0, rel=0.05)


def ctl(naive: float) -> Controls:
    return Controls(naive_last_mse=naive, naive_mean_mse=naive * 2, scale_mse=0.5, scale_mae=0.6,
                    linear_floor=0.1, ljung_box_p=0.5, ljung_box_lags=10)


def records(base, shuffled, dropout=None, l2=None):
    def rec(runs):
        return make_record("mine", runs)
    return {"baseline": rec(base), "shuffled": rec(shuffled),
            "dropout": rec(dropout or [levelling(s, 1000, "dropout", dropout=0.5) for s in (0, 1)]),
            "l2": rec(l2 or [levelling(s, 1000, "l2", l2=0.001) for s in (0, 1)])}


def run(recs, naive: float):
    return diagnose(recs, ctl(naive), 50, P.memorization, P.diagnosis, 0.5, 0.001, 0.9)


def test_memorizes_after_the_budget_with_a_pattern_is_too_little_training():
    recs = records([memorizing(s, 300) for s in (0, 1)],
                   [memorizing(s, 600, "shuffled") for s in (0, 1)])
    r = run(recs, naive=1.0)  # best validation 0.1 against 1.0: a pattern
    assert r.answer == TOO_LITTLE
    assert "shuffled targets memorized at epoch 600" in r.capacity
    assert "the real targets are memorized x2 sooner" in r.capacity
    assert "90% better than the last value" in r.signal
    assert "Dropout(0.5) prevents memorizing within 1000 epochs" in r.regularization
    assert "Dropout(0.5) and L2(0.001) would keep it from memorizing" in r.summary
    assert r.tags()["diagnosis.answer"] == TOO_LITTLE


def test_no_better_than_the_naive_forecast_is_no_pattern():
    recs = records([memorizing(s, 300) for s in (0, 1)],
                   [memorizing(s, 600, "shuffled") for s in (0, 1)])
    r = run(recs, naive=0.1)
    assert r.reasons == (NO_PATTERN, TOO_LITTLE) and r.numbers["signal"] is False
    assert "does not beat the last value by 5%" in r.signal


def test_nothing_memorized_not_even_shuffled_is_too_much_data():
    recs = records([levelling(s, 1000) for s in (0, 1)],
                   [levelling(s, 1000, "shuffled") for s in (0, 1)])
    r = run(recs, naive=1.0)
    assert r.answer == TOO_MUCH_DATA
    assert "not memorized within 1000 epochs" in r.capacity


def test_levels_off_while_shuffled_targets_are_memorized_is_the_pattern_only():
    recs = records([levelling(s, 1000) for s in (0, 1)],
                   [memorizing(s, 600, "shuffled") for s in (0, 1)])
    assert run(recs, naive=1.0).answer == PATTERN_ONLY


def test_memorized_within_the_article_budget_overfits():
    recs = records([memorizing(s, 40) for s in (0, 1)],
                   [memorizing(s, 600, "shuffled") for s in (0, 1)])
    r = run(recs, naive=1.0)
    assert r.answer == "overfits within 50 epochs" and r.reasons == ()
    assert r.summary.startswith("It does overfit")


def test_a_missing_variant_is_named():
    recs = records([memorizing(s, 300) for s in (0, 1)], [memorizing(0, 600, "shuffled")])
    del recs["l2"]
    with pytest.raises(KeyError):
        run(recs, 1.0)
