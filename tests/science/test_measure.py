"""Measurements and the memorization process, on hand-made records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_overfit.params import Memorization
from lstm_overfit.science.measure import (
    at,
    bits_memorized,
    classifier_process,
    eval_epochs,
    mean_baseline_bce,
    mean_baseline_mse,
    memorization_curve,
    mse,
    plateau_fall,
    points,
    power_law,
    process,
    target_var,
)
from records import make_record, make_run

M = Memorization(stop_frac=0.1, half_frac=0.5, plateau=0.1, every_until=4, growth=1.5)


def test_mse_variance_and_mean_baselines():
    y = np.array([[0.0], [1.0], [2.0]], np.float32)
    assert mse(np.zeros(3), y) == pytest.approx(5 / 3)
    assert target_var(y) == pytest.approx(2 / 3)
    assert mean_baseline_mse(y, np.array([[1.0], [3.0]])) == pytest.approx(2.0)
    labels = np.array([[1.0], [0.0], [1.0], [1.0]])
    expected = -(math.log(0.75) * 3 + math.log(0.25)) / 4
    assert mean_baseline_bce(labels, labels) == pytest.approx(expected)


def test_eval_epochs_are_dense_early_then_geometric_with_the_budgets():
    e = eval_epochs(100, article=50, m=M)
    assert e[:4] == (1, 2, 3, 4) and 50 in e and e[-1] == 100
    assert list(e) == sorted(set(e))
    later = [b / a for a, b in zip(e[4:], e[5:], strict=False) if a >= 8]
    assert all(r <= 1.5 + 1 / 8 for r in later)
    assert eval_epochs(3, article=50, m=M) == (1, 2, 3)


def test_points_and_at():
    rec = make_record(train_var=0.1, baseline=0.2, noise_var=None)
    run = rec.runs[0]
    ps = points(rec, run)
    assert ps[0].train_frac == pytest.approx(run.train_error[0] / 0.1)
    assert ps[0].val_ratio == pytest.approx(run.val_error[0] / 0.2)
    assert ps[0].noise_frac == ps[0].train_frac  # random targets: the noise is everything
    assert at(rec, run, run.epochs[1]).epoch == run.epochs[1]
    with pytest.raises(ValueError, match="not measured"):
        at(rec, run, 999)


def test_a_stopped_run_is_read_at_its_last_epoch_after_it_stopped():
    rec = make_record(runs=[make_run(fracs=[1.0, 0.5, 0.05], epochs=[1, 2, 3], stopped=True)])
    assert at(rec, rec.runs[0], 50).epoch == 3


def test_process_memorized_records_when():
    rec = make_record(runs=[make_run(fracs=[1.0, 0.9, 0.4, 0.08], epochs=[1, 2, 4, 8], stopped=True,
                                     vals=[1.0, 0.9, 1.5, 2.0])])
    p = process(rec, rec.runs[0], M)
    assert p.outcome == "memorized"
    assert p.half_epoch == 4 and p.memorized_epoch == 8
    assert p.best_val_epoch == 2
    assert p.val_rise == pytest.approx(2.0 / 0.9 - 1)
    assert p.steps(p.memorized_epoch, rec.steps_per_epoch) == 8 * rec.steps_per_epoch


def test_plateau_and_falling_and_a_late_spike_does_not_matter():
    flat = make_record(runs=[make_run(fracs=[1.2, 1.0, 0.99, 0.98, 0.97], epochs=[1, 2, 4, 8, 16])])
    assert process(flat, flat.runs[0], M).outcome == "plateau"
    falling = make_record(runs=[make_run(fracs=[1.2, 1.0, 0.8, 0.6, 0.4], epochs=[1, 2, 4, 8, 16])])
    assert process(falling, falling.runs[0], M).outcome == "falling"
    spike = make_record(runs=[make_run(fracs=[1.2, 1.0, 0.99, 0.98, 3.0], epochs=[1, 2, 4, 8, 16])])
    assert process(spike, spike.runs[0], M).outcome == "plateau"


def test_plateau_fall_uses_halves_of_the_epochs():
    ps = points(*_one(make_record(runs=[make_run(fracs=[2.0, 1.0, 0.5], epochs=[1, 2, 4])])))
    assert plateau_fall(ps) == pytest.approx(0.5)


def _one(rec):
    return rec, rec.runs[0]


def test_classifier_process_finds_the_rise():
    run = make_run(fracs=[0.6, 0.4, 0.3, 0.2, 0.1], vals=[0.6, 0.5, 0.52, 0.6, 0.7],
                   epochs=[1, 2, 3, 4, 5], accs=True)
    c = classifier_process(run, rise=0.1)
    assert c.best.epoch == 2 and c.overfit_epoch == 4
    assert c.max_rise == pytest.approx(0.7 / 0.5 - 1) and c.train_fell
    assert classifier_process(run).overfit_epoch is None


def test_bits_memorized():
    assert bits_memorized(100, 1.0) == 0.0
    assert bits_memorized(100, 0.25) == pytest.approx(100.0)
    assert bits_memorized(100, 2.0) == 0.0


def test_power_law_recovers_its_exponent():
    xs = [25, 50, 100, 200, 400]
    a, k = power_law(xs, [3.0 * x ** 0.7 for x in xs])
    assert a == pytest.approx(3.0) and k == pytest.approx(0.7)


def test_memorization_curve_fits_only_memorized_points():
    recs = [make_record(name=f"sweep_n{n}", n_train=n, spe=math.ceil(n / 32),
                        runs=[make_run(fracs=[1.0, 0.05], epochs=[1, e], stopped=True)])
            for n, e in ((25, 100), (50, 60), (100, 40))]
    recs.append(make_record(name="sweep_n200", n_train=200, spe=7,
                            runs=[make_run(fracs=[1.0, 0.9], epochs=[1, 9])]))
    curve = memorization_curve(recs, M)
    assert (200, 0, None) in curve.points
    steps = {n: s for n, _, s in curve.points if s}
    assert steps == {25: 100, 50: 120, 100: 160}
    assert curve.k == pytest.approx(power_law([25, 50, 100], [100, 120, 160])[1])
    assert memorization_curve(recs[:1], M).k is None
