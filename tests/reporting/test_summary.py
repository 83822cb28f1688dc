"""What training stages hand DVC: metrics per variant and seed-mean learning curves."""

from __future__ import annotations

import pytest

from lstm_overfit.params import Memorization
from lstm_overfit.reporting.summary import curve_rows, group_label, stage_metrics, sweep_metrics, sweep_rows
from records import classifier_run, make_record, make_run, memorizing

M = Memorization(stop_frac=0.1, half_frac=0.5, plateau=0.1, every_until=4, growth=1.5)


def test_stage_metrics_mean_and_spread_per_group():
    rec = make_record(runs=[memorizing(0, 300), memorizing(1, 500),
                            make_run([1.0, 0.99, 0.98], epochs=[1, 2, 50], variant="dropout",
                                     dropout=0.3)])
    m = stage_metrics(rec, M, article=50)
    assert set(m) == {"baseline", "dropout0.3"}
    assert m["baseline"]["memorized_epoch"] == 400.0 and m["baseline"]["memorized_epoch_std"] == 100.0
    assert m["baseline"]["memorized"] == 2 and m["dropout0.3"]["memorized"] == 0
    assert m["dropout0.3"]["memorized_epoch"] is None
    assert m["dropout0.3"]["final_train_frac"] == pytest.approx(0.98)


def test_classifier_metrics():
    rec = make_record("sentiment", [classifier_run(0, True)], task="classification")
    m = stage_metrics(rec, M, article=50)["baseline"]
    assert m["best_val_epoch"] == 3 and m["final_val_acc"] == pytest.approx(0.7)


def test_group_labels():
    assert group_label(make_run([1.0])) == "baseline"
    assert group_label(make_run([1.0], variant="dropout", dropout=0.5)) == "dropout0.5"
    assert group_label(make_run([1.0], variant="l2", l2=1e-3)) == "l2_0.001"


def test_curve_rows_carry_a_stopped_seed_forward():
    a = make_run([1.0, 0.5, 0.05], epochs=[1, 2, 4], seed=0, stopped=True)
    b = make_run([1.0, 0.6, 0.4, 0.2], epochs=[1, 2, 4, 8], seed=1)
    rows = curve_rows(make_record(runs=[a, b]), [a, b])
    assert [r["epoch"] for r in rows] == [1, 2, 4, 8]
    assert rows[-1]["train_frac"] == pytest.approx((0.05 + 0.2) / 2)
    assert rows[-1]["step"] == 8 * 4
    assert set(rows[0]) == {"epoch", "step", "train_mse", "val_mse", "train_frac", "val_ratio",
                            "gap", "fit_loss"}
    assert rows[0]["gap"] == pytest.approx(rows[0]["val_mse"] - rows[0]["train_mse"])


def test_sweep_metrics_and_rows():
    recs = [make_record(f"sweep_n{n}", [memorizing(0, e)], n_train=n, spe=s)
            for n, e, s in ((25, 400, 1), (50, 300, 2), (100, 250, 4))]
    m = sweep_metrics(recs, M)
    assert m["n25"]["memorized_step"]["mean"] == 400 and m["steps_exponent"] > 0
    rows = sweep_rows(recs, M)
    assert [r["n_train"] for r in rows] == [25, 50, 100]
    assert rows[1]["memorized_step"] == 600
