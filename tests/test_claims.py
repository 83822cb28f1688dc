"""Each criterion on hand-made numbers, every outcome and the exact thresholds."""

from __future__ import annotations

import pytest

from lstm_overfit.claims import (
    INCONCLUSIVE,
    MIXED,
    REFUTED,
    SUPPORTED,
    combine,
    judge_all,
    judge_c1,
    judge_c3,
    judge_c4,
    judge_c6,
    judge_c7,
    judge_regulariser,
    overfits,
    verdict,
    verdict_table,
)
from lstm_overfit.params import parse_params


@pytest.fixture
def t(repo_params):
    return parse_params(repo_params).claims


def m(tf: float, vr: float) -> dict[str, float]:
    return {"train_frac": tf, "val_ratio": vr}


OVER = m(0.1, 1.3)
FINE = m(1.0, 1.0)


def test_overfits_at_exact_thresholds(t):
    assert overfits(m(0.5, 1.0), t)
    assert not overfits(m(0.5000001, 1.0), t)
    assert not overfits(m(0.5, 0.9999999), t)


def test_c1(t):
    assert judge_c1(m(0.95, 1.01), t) == SUPPORTED
    assert judge_c1(m(0.9, 1.0), t) == SUPPORTED  # exact lower bound
    assert judge_c1(m(1.1, 1.0), t) == SUPPORTED  # exact upper bound
    assert judge_c1(OVER, t) == REFUTED
    assert judge_c1(m(0.7, 1.2), t) == INCONCLUSIVE  # fit some noise, not memorized
    assert judge_c1(m(3.0, 3.0), t) == INCONCLUSIVE  # untrained: not "the mean"


def test_regulariser(t):
    assert judge_regulariser(OVER, FINE, t) == SUPPORTED
    assert judge_regulariser(OVER, OVER, t) == REFUTED
    assert judge_regulariser(FINE, FINE, t) == INCONCLUSIVE
    assert judge_regulariser(FINE, OVER, t) == INCONCLUSIVE  # nothing to prevent


def test_c3(t):
    assert judge_c3(FINE, OVER, t) == SUPPORTED
    assert judge_c3(OVER, OVER, t) == REFUTED
    assert judge_c3(FINE, FINE, t) == INCONCLUSIVE


def sine(train_noise, val_noise, val_rise=0.0):
    return {"train_noise": train_noise, "val_noise": val_noise, "val_rise": val_rise}


def test_c4(t):
    assert judge_c4(sine(0.8, 1.5), t) == SUPPORTED  # exact thresholds
    assert judge_c4(sine(0.79, 1.2), t) == INCONCLUSIVE
    assert judge_c4(sine(0.49, 3.0, 0.11), t) == REFUTED
    assert judge_c4(sine(0.5, 3.0, 0.5), t) == INCONCLUSIVE  # 0.5 is not below 0.5
    assert judge_c4(sine(0.3, 3.0, 0.10), t) == INCONCLUSIVE  # rise must exceed 10%


def stock(vr, improvement, fall):
    return {"val_ratio": vr, "loss_improvement": improvement, "train_frac_fall": fall}


def test_c6(t):
    assert judge_c6(stock(1.0, 0.049, 0.0), t) == SUPPORTED
    assert judge_c6(stock(1.0, 0.05, 0.0), t) == INCONCLUSIVE  # not a plateau
    assert judge_c6(stock(1.06, 0.3, 0.2), t) == REFUTED
    assert judge_c6(stock(1.05, 0.3, 0.2), t) == INCONCLUSIVE  # must exceed 1.05
    assert judge_c6(stock(1.2, 0.0, 0.0), t) == INCONCLUSIVE  # worse, but not still fitting


def test_c7(t):
    assert judge_c7(OVER, FINE, t) == SUPPORTED
    assert judge_c7(FINE, OVER, t) == REFUTED
    assert judge_c7(OVER, OVER, t) == INCONCLUSIVE
    assert judge_c7(FINE, FINE, t) == INCONCLUSIVE


def test_combine_and_verdict():
    assert combine([SUPPORTED] * 3) == SUPPORTED
    assert combine([SUPPORTED, REFUTED, SUPPORTED]) == MIXED
    v = verdict([(SUPPORTED, {"x": 1.0}), (INCONCLUSIVE, {"x": 2.0})])
    assert v == {"verdict": MIXED, "x": 1.5,
                 "seeds": {SUPPORTED: 1, REFUTED: 0, INCONCLUSIVE: 1}}
    assert list(v)[0] == "verdict"


# --- judge_all on fixture records -------------------------------------------------------

def run(variant, seed, epochs, frac_at, ratio_at, noise_scale=1.0, loss=None):
    """A run whose measurements at every eval epoch come from two functions of the epoch."""
    ev = list(range(1, epochs + 1))
    train = [frac_at(e) * noise_scale for e in ev]
    val = [ratio_at(e) * noise_scale for e in ev]
    return {"variant": variant, "seed": seed, "loss": loss or [1.0] * epochs,
            "eval": {"epoch": ev, "train_mse": train, "val_mse": val},
            "checkpoints": {str(c): {"train_mse": train[c - 1], "val_mse": val[c - 1],
                                     "train_frac": train[c - 1], "val_ratio": val[c - 1]}
                            for c in (2, epochs)}}


def record(name, runs, epochs=10, noise_var=None):
    return {"dataset": name, "epochs": epochs, "steps_per_epoch": 1, "train_var": 1.0,
            "baseline_val_mse": 1.0, "noise_var": noise_var, "runs": runs}


def memorizes(e):
    return 1.0 if e <= 2 else 0.1


def test_judge_all_on_fixture_records(t):
    t = type(t)(**{**t.__dict__, "article_epoch": 2})
    seeds = (0, 1)
    flat = lambda e: 1.0  # noqa: E731
    over_val = lambda e: 1.0 if e <= 2 else 1.4  # noqa: E731
    results = {
        "ex1": record("ex1", [run("baseline", s, 10, memorizes, over_val) for s in seeds]),
        "ex2": record("ex2", [run(v, s, 10, memorizes if v != "dropout" else flat,
                                  over_val if v != "dropout" else flat)
                              for v in ("baseline", "dropout", "l2") for s in seeds]),
        "ex3": record("ex3", [run("baseline", s, 10, flat, flat) for s in seeds]),
        "ex3_seq20": record("ex3_seq20", [run("baseline", s, 10, memorizes, over_val) for s in seeds]),
        "sine": record("sine", [run("baseline", s, 10, flat, flat, 0.01) for s in seeds], noise_var=0.01),
        "sine_small": record("sine_small", [run("baseline", s, 10, lambda e: 0.3 if e > 2 else 1,
                                                lambda e: 1.0 + 0.1 * e, 0.01) for s in seeds],
                             noise_var=0.01),
        "stocks": record("stocks", [run("baseline", s, 10, flat, lambda e: 0.99) for s in seeds]),
    }
    sweep = {"sizes": {
        "8": {"record": record("n8", [run("baseline", s, 10, memorizes, over_val) for s in seeds]),
              "equal_steps": 10, "equal_epochs": 2},
        "16": {"record": record("n16", [run("baseline", s, 10, flat, flat) for s in seeds]),
               "equal_steps": 10, "equal_epochs": 2},
    }}
    got = judge_all(results, sweep, t)
    verdicts = {c: {b: v["verdict"] for b, v in bs.items()} for c, bs in got.items()}
    assert verdicts == {
        "C1": {"article": SUPPORTED, "long": REFUTED},
        "C2": {"article": INCONCLUSIVE, "long": SUPPORTED},
        "C5": {"article": INCONCLUSIVE, "long": REFUTED},
        "C3": {"article": INCONCLUSIVE, "long": SUPPORTED},
        "C4": {"article": SUPPORTED, "long": SUPPORTED},
        "C4_small": {"article": SUPPORTED, "long": REFUTED},
        "C6": {"article": SUPPORTED, "long": SUPPORTED},
        "C7": {"equal_steps": SUPPORTED, "equal_epochs": INCONCLUSIVE},
    }
    assert verdict_table(got) == verdicts
    assert got["C1"]["long"]["train_frac"] == pytest.approx(0.1)
    assert got["C1"]["long"]["seeds"] == {SUPPORTED: 0, REFUTED: 2, INCONCLUSIVE: 0}
    assert got["C4_small"]["long"]["val_rise"] == round(2.0 / 1.1 - 1, 4)  # numbers are rounded


def test_missing_checkpoint_is_a_clear_error(t):
    from lstm_overfit.claims import at
    from lstm_overfit.errors import StageError

    rec = record("ex1", [run("baseline", 0, 10, memorizes, memorizes)])
    with pytest.raises(StageError, match=r"no checkpoint at epoch 50 \(train.ex1.checkpoints"):
        at(rec, rec["runs"][0], 50)
