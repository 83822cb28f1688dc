"""Each judge on hand-made numbers: every outcome, the exact thresholds, margins and fragility."""

from __future__ import annotations

import pytest

from lstm_overfit.params import Memorization, parse_params
from lstm_overfit.science.judges import (
    INCONCLUSIVE,
    MIXED,
    PARTIAL,
    REFUTED,
    SUPPORTED,
    Check,
    Seed,
    combine,
    decide,
    judge_c1_article,
    judge_c1_long,
    judge_c4,
    judge_c6,
    judge_c7,
    judge_c8_better,
    judge_c8_overfits,
    judge_c8_stable,
    judge_example_dropout,
    judge_example_dropout_at,
    judge_regularizer,
    overfits,
)
from lstm_overfit.science.measure import Point, process
from records import make_record, make_run

M = Memorization(stop_frac=0.1, half_frac=0.5, plateau=0.1, every_until=4, growth=1.5)


@pytest.fixture
def t(repo_params):
    return parse_params(repo_params).claims


def pt(train_frac: float, val_ratio: float, noise_frac: float | None = None) -> Point:
    return Point(1, train_frac, val_ratio, train_frac, val_ratio,
                 train_frac if noise_frac is None else noise_frac, val_ratio - train_frac)


def test_overfits_at_exact_thresholds(t):
    assert overfits(pt(0.5, 1.0), t)[0]
    assert not overfits(pt(0.5000001, 1.0), t)[0]
    assert not overfits(pt(0.5, 0.9999999), t)[0]


def test_c1_article(t):
    assert judge_c1_article(pt(0.95, 1.01), t).verdict == SUPPORTED
    assert judge_c1_article(pt(0.9, 1.0), t).verdict == SUPPORTED  # exact lower bound
    assert judge_c1_article(pt(0.1, 1.3), t).verdict == REFUTED
    assert judge_c1_article(pt(0.7, 1.2), t).verdict == INCONCLUSIVE
    assert judge_c1_article(pt(3.0, 3.0), t).verdict == INCONCLUSIVE  # untrained, not "the mean"


def proc(fracs, epochs, vals=None, stopped=False):
    rec = make_record(runs=[make_run(fracs, epochs=epochs, vals=vals, stopped=stopped)])
    return rec, process(rec, rec.runs[0], M)


def test_c1_long_memorized_plateau_and_still_falling(t):
    rec, p = proc([1.0, 1.0, 0.05], [1, 2, 9], vals=[1.0, 1.0, 1.5], stopped=True)
    s = judge_c1_long(rec, p, t)
    assert s.verdict == REFUTED and "memorized" in s.says and s.numbers["memorized_epoch"] == 9
    rec, p = proc([1.0, 1.0, 0.99, 0.98], [1, 2, 4, 8])
    assert judge_c1_long(rec, p, t).verdict == SUPPORTED
    rec, p = proc([1.0, 0.8, 0.6, 0.4], [1, 2, 4, 8])
    assert judge_c1_long(rec, p, t).verdict == INCONCLUSIVE


def test_c4_pattern_noise_and_between(t):
    assert judge_c4({"train_noise": 1.0, "val_noise": 1.2, "val_rise": 0.0}, t).verdict == SUPPORTED
    assert judge_c4({"train_noise": 0.3, "val_noise": 2.0, "val_rise": 0.5}, t).verdict == REFUTED
    assert judge_c4({"train_noise": 0.7, "val_noise": 1.2, "val_rise": 0.0}, t).verdict == INCONCLUSIVE
    assert judge_c4({"train_noise": 0.7, "val_noise": 2.0, "val_rise": 0.5}, t,
                    memorized_noise=True).verdict == REFUTED


def test_c6(t):
    rec, p = proc([1.0, 0.99, 0.985, 0.98], [1, 2, 4, 8], vals=[1.0, 0.99, 0.99, 0.99])
    assert judge_c6(rec, p, t).verdict == SUPPORTED
    rec, p = proc([1.0, 0.5, 0.05], [1, 2, 4], vals=[1.0, 1.2, 1.4], stopped=True)
    s = judge_c6(rec, p, t)
    assert s.verdict == REFUTED and "memorized" in s.says
    rec, p = proc([1.0, 0.99, 0.985, 0.98], [1, 2, 4, 8], vals=[1.0, 1.2, 1.3, 1.3])
    assert judge_c6(rec, p, t).verdict == INCONCLUSIVE  # a plateau, but worse than the mean


def sine(train: list[float], vals: list[float], stopped: bool = False):
    rec = make_record(name="sine_small", noise_var=0.01, train_var=0.5,
                      runs=[make_run(train, epochs=[1, 2, 4, 8], scale=0.01, vals=vals,
                                     stopped=stopped)])
    return rec, process(rec, rec.runs[0], M)


def test_regularizer_outcomes(t):
    base = proc([1.0, 0.05], [1, 9], vals=[1.0, 1.5], stopped=True)[1]
    sine_rec, sine_base = sine([50.0, 1.1, 0.4, 0.2], [50.0, 1.2, 1.5, 2.5])  # fits the noise
    held = proc([1.0, 1.0, 0.99, 0.98], [1, 2, 4, 8])[1]
    _, learns = sine([50.0, 1.1, 1.0, 1.0], [50.0, 1.25, 1.25, 1.25])
    s = judge_regularizer(held, base, learns, sine_base, sine_rec, t)
    assert s.verdict == SUPPORTED and "still learning" in s.says
    memorized = proc([1.0, 0.05], [1, 20], vals=[1.0, 1.5], stopped=True)[1]
    assert judge_regularizer(memorized, base, learns, sine_base, sine_rec, t).verdict == REFUTED
    _, noisy = sine([50.0, 1.1, 0.45, 0.4], [50.0, 1.2, 1.4, 1.6])
    s = judge_regularizer(held, base, noisy, sine_base, sine_rec, t)
    assert s.verdict == REFUTED and "noise" in s.says
    _, blind = sine([50.0, 40.0, 40.0, 40.0], [50.0, 40.0, 40.0, 40.0])
    s = judge_regularizer(held, base, blind, sine_base, sine_rec, t)
    assert s.verdict == PARTIAL and "altogether" in s.says
    no_base = proc([1.0, 1.0, 0.99, 0.98], [1, 2, 4, 8])[1]
    assert judge_regularizer(held, no_base, learns, sine_base, sine_rec, t).verdict == INCONCLUSIVE


def test_example_dropout_delays_prevents_or_cannot_tell(t):
    base = proc([1.0, 0.9, 0.05], [1, 50, 300], vals=[1.0, 1.0, 1.5], stopped=True)[1]
    later = proc([1.0, 0.95, 0.6, 0.05], [1, 50, 300, 750], vals=[1.0, 1.0, 1.2, 1.6],
                 stopped=True)[1]
    s = judge_example_dropout(later, base, 2000, t)
    assert s.verdict == REFUTED and s.says == "delays memorizing; does not prevent it"
    assert s.numbers["delay"] == pytest.approx(2.5)
    held = proc([1.0, 0.95, 0.93, 0.93, 0.93], [1, 50, 300, 1000, 2000])[1]
    s = judge_example_dropout(held, base, 2000, t)
    assert s.verdict == SUPPORTED and s.numbers["delay"] == pytest.approx(2000 / 300)
    falling = proc([1.0, 0.9, 0.6, 0.3], [1, 50, 300, 2000])[1]
    s = judge_example_dropout(falling, base, 2000, t)
    assert s.verdict == INCONCLUSIVE and "past the cap" in s.says
    assert judge_example_dropout(later, held, 2000, t).verdict == INCONCLUSIVE  # no memorizing
    # at the article's 50 epochs: the baseline has not overfit yet, so there is nothing to judge
    assert judge_example_dropout_at(pt(0.95, 1.0), pt(0.9, 1.0), t).verdict == INCONCLUSIVE
    assert judge_example_dropout_at(pt(0.95, 1.0), pt(0.05, 1.5), t).verdict == SUPPORTED
    assert judge_example_dropout_at(pt(0.05, 1.5), pt(0.05, 1.5), t).verdict == REFUTED


def test_margins_count_only_the_comparisons_that_could_flip_a_verdict(t):
    # far from memorizing (train_frac 0.95), close to val_ratio 1: cannot flip to "overfits"
    s = judge_c1_article(pt(0.95, 0.99), t)
    assert s.verdict == SUPPORTED
    assert min(c.margin() for c in s.checks) == pytest.approx(0.05 / 0.9)
    far = decide([judge_c1_article(pt(0.2, 2.0), t)], t.fragile)
    assert far.verdict == REFUTED and not far.fragile


def test_c7():
    assert judge_c7({25: True, 400: False}).verdict == SUPPORTED
    assert judge_c7({25: True, 400: True}).verdict == REFUTED
    assert judge_c7({25: False, 400: True}).verdict == REFUTED
    assert judge_c7({25: False, 400: False}).verdict == INCONCLUSIVE


def classifier(vals, trains=None):
    epochs = list(range(1, len(vals) + 1))
    return make_run(trains or [0.7 - 0.1 * i for i in range(len(vals))], epochs=epochs, vals=vals,
                    accs=True, scale=1.0)


def test_c8_parts(t):
    rising = classifier([0.6, 0.5, 0.54, 0.7, 0.9])
    flat = classifier([0.6, 0.5, 0.5, 0.52, 0.51])
    s = judge_c8_overfits(rising, t)
    assert s.verdict == SUPPORTED and s.numbers["overfit_epoch"] == 4
    assert judge_c8_overfits(flat, t).verdict == REFUTED
    assert judge_c8_stable(flat, t).verdict == SUPPORTED
    assert judge_c8_stable(rising, t).verdict == REFUTED
    # accuracies are equal in these fixtures: lower loss alone counts as better
    assert judge_c8_better(rising, flat, t).verdict == SUPPORTED
    assert judge_c8_better(flat, rising, t).verdict == PARTIAL


def test_decide_combines_seeds_with_means_and_the_smallest_margin():
    seeds = [Seed(SUPPORTED, {"x": 1.0, "y": None}, (Check("a", 1.05, 1.0),)),
             Seed(SUPPORTED, {"x": 3.0, "y": 2.0}, (Check("a", 2.0, 1.0),))]
    d = decide(seeds, fragile=0.1)
    assert d.verdict == SUPPORTED and d.numbers == {"x": 2.0, "y": 2.0}
    assert d.margin == pytest.approx(0.05) and d.fragile
    assert d.seeds[SUPPORTED] == 2 and d.thresholds == {"a": 1.0}
    mixed = decide([seeds[0], Seed(REFUTED, {"x": 0.0, "y": 0.0})], fragile=0.01)
    assert mixed.verdict == MIXED and not mixed.fragile


def test_combine_parts():
    d = decide([Seed(SUPPORTED, {})], 0.1)
    r = decide([Seed(REFUTED, {})], 0.1)
    i = decide([Seed(INCONCLUSIVE, {})], 0.1)
    assert combine([d, d]) == SUPPORTED
    assert combine([d, r]) == PARTIAL
    assert combine([r, i]) == MIXED
