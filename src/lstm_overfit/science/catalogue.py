"""The claims catalogue: per claim of the article, its words, the runs it reads, how its
setting is described (from params, so it stays true after `dvc exp run -S`), its judge and
its figures. The claims stage, the report and the tests all follow from this one list.

Adding a claim: one `Claim` here, its judge (judges.py) and its data (a dataset under
`datasets:` or a stage that prepares one, and its budget under `train:`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lstm_overfit.params import Params, RandomData, SineData
from lstm_overfit.records import DatasetRecord
from lstm_overfit.science.judges import (
    REFUTED,
    Decision,
    by_seed,
    combine,
    decide,
    judge_c1_article,
    judge_c1_long,
    judge_c3_article,
    judge_c3_long,
    judge_c4,
    judge_c6,
    judge_c7,
    judge_c8_better,
    judge_c8_overfits,
    judge_c8_stable,
    judge_example_dropout,
    judge_example_dropout_at,
    judge_regularizer,
    judge_regularizer_at,
    sine_numbers,
)
from lstm_overfit.science.measure import at, memorization_curve, process

Results = Mapping[str, DatasetRecord]


@dataclass(frozen=True)
class Claim:
    """One claim. `reads` names the (dataset, variant) runs it needs; `judge` turns them into
    a Decision per budget (or per part); `figures` are names in figures.FIGURES."""

    id: str
    text: str
    reads: Callable[[Params], tuple[tuple[str, str], ...]]
    setting: Callable[[Params], str]
    judge: Callable[[Results, Params], dict[str, Decision]]
    figures: tuple[str, ...]
    headline: tuple[str, ...] = ("long",)  # the parts whose combination is the claim's verdict


# --- settings, in words, from params ---------------------------------------------------------

def _budget(p: Params, name: str) -> str:
    m = p.memorization
    return (f"trained until it memorizes (training MSE <= {m.stop_frac} x the noise floor) or "
            f"{p.train[name].epochs} epochs; {len(p.base.seeds)} seeds")


def _data(p: Params, name: str) -> str:
    d = p.datasets[name]
    if isinstance(d, RandomData):
        return (f"{name}: X ~ U(0,1) of shape ({d.n_train}, {d.seq_len}, {d.features}), "
                f"y ~ U(0,1); {d.n_val} held-out rows")
    assert isinstance(d, SineData)
    return (f"{name}: {d.n_train} windows of {d.window} steps of sin(2 pi t / {d.period:g}) + "
            f"N(0, {d.noise:g}^2), predicting the next value; {d.n_val} held-out windows")


def _model(p: Params, name: str) -> str:
    return f"LSTM({p.train[name].units}) + Dense(1)"


def _setting_one(name: str) -> Callable[[Params], str]:
    return lambda p: f"{_data(p, name)}. {_model(p, name)} baseline, {_budget(p, name)}."


def _setting_c3(p: Params) -> str:
    return (f"{_data(p, 'ex3')}, against its twin {_data(p, 'ex3_seq20')}. "
            f"{_model(p, 'ex3')} baseline, {_budget(p, 'ex3')}.")


def _setting_curve(kind: str) -> Callable[[Params], str]:
    def text(p: Params) -> str:
        grid = p.curves.dropout if kind == "dropout" else p.curves.l2
        chosen = p.model.dropout_rate if kind == "dropout" else p.model.l2
        what = "Dropout(rate) after the LSTM" if kind == "dropout" else \
            "an L2 penalty (factor) on the LSTM's kernel and recurrent kernel"
        sets = "; ".join(_data(p, d) for d in p.curves.datasets)
        return (f"{what}, strengths {', '.join(f'{g:g}' for g in grid)}; the verdict at "
                f"{chosen:g}. Data: {sets}. {_model(p, p.curves.datasets[0])}, "
                f"{_budget(p, p.curves.datasets[0])}.")
    return text


def _setting_c6(p: Params) -> str:
    s = p.stocks
    return (f"Daily log returns of {', '.join(s.tickers)} ({s.price}, {s.start} to {s.end}, "
            f"Yahoo Finance {'snapshot' if s.source == 'snapshot' else 'live'}), windows of "
            f"{s.lookback} days predicting the return {s.horizon} day(s) later, the first "
            f"{s.train_fraction:.0%} of days for training. {_model(p, 'stocks')} baseline, "
            f"{_budget(p, 'stocks')}.")


def _setting_c7(p: Params) -> str:
    w = p.sweep
    return (f"X ~ U(0,1) of shape (n, {w.seq_len}, {w.features}), random y, n = "
            f"{', '.join(map(str, w.sizes))} (nested), {w.n_val} held-out rows. LSTM({w.units}) "
            f"baseline, each trained until it memorizes (training MSE <= "
            f"{p.memorization.stop_frac} x the target variance) or {w.max_steps} optimizer "
            f"steps; {len(p.base.seeds)} seeds.")


def _setting_c8(p: Params) -> str:
    s, t = p.sentiment, p.train["sentiment"]
    return (f"UCI Sentiment Labelled Sentences (amazon, imdb, yelp): deduplicated, "
            f"{1 - s.val_fraction:.0%}/{s.val_fraction:.0%} split stratified by label and site, "
            f"vocabulary of {s.vocab_size} from the training sentences, {s.seq_len} tokens. "
            f"Embedding({s.vocab_size}, {t.embed_dim}, mask_zero) + LSTM({t.units}) + "
            f"[Dropout({p.model.dropout_rate:g})] + Dense(1, sigmoid), binary cross-entropy, "
            f"{t.epochs} epochs; {len(p.base.seeds)} seeds.")


# --- judges over results ----------------------------------------------------------------------

def _c1(r: Results, p: Params) -> dict[str, Decision]:
    rec, t = r["ex1"], p.claims
    runs = by_seed(rec)
    return {
        "article": decide([judge_c1_article(at(rec, run, p.base.article_epochs), t)
                           for run in runs.values()], t.fragile),
        "long": decide([judge_c1_long(rec, process(rec, run, p.memorization), t)
                        for run in runs.values()], t.fragile),
    }


def _c3(r: Results, p: Params) -> dict[str, Decision]:
    short, long_, t, a = r["ex3"], r["ex3_seq20"], p.claims, p.base.article_epochs
    s_runs, l_runs = by_seed(short), by_seed(long_)
    seeds = sorted(set(s_runs) & set(l_runs))
    return {
        "article": decide([judge_c3_article(at(short, s_runs[s], a), at(long_, l_runs[s], a), t)
                           for s in seeds], t.fragile),
        "long": decide([judge_c3_long(short, process(short, s_runs[s], p.memorization), long_,
                                      process(long_, l_runs[s], p.memorization), t)
                        for s in seeds], t.fragile),
    }


def _sine(rec: DatasetRecord, p: Params) -> dict[str, Decision]:
    t = p.claims
    runs = by_seed(rec)
    article = [judge_c4(sine_numbers(rec, run, p.base.article_epochs)[1], t)
               for run in runs.values()]
    long = []
    for run in runs.values():
        proc = process(rec, run, p.memorization)
        long.append(judge_c4(sine_numbers(rec, run, proc.final.epoch)[1], t,
                             memorized_noise=proc.outcome == "memorized"))
    return {"article": decide(article, t.fragile), "long": decide(long, t.fragile)}


def _c4(r: Results, p: Params) -> dict[str, Decision]:
    """The sine with many windows (`article`, `long`) and with few (`small_*`)."""
    many, few = _sine(r["sine"], p), _sine(r["sine_small"], p)
    return {**many, **{f"small_{k}": d for k, d in few.items()}}


def _setting_c4(p: Params) -> str:
    return (f"{_data(p, 'sine')}; and with few windows, {_data(p, 'sine_small')}. "
            f"{_model(p, 'sine')} baseline; {_budget(p, 'sine')} (many windows), "
            f"{p.train['sine_small'].epochs} epochs at most (few).")


def _curve(kind: str) -> Callable[[Results, Params], dict[str, Decision]]:
    def judge(r: Results, p: Params) -> dict[str, Decision]:
        random_name, sine_name = p.curves.datasets[0], p.curves.datasets[-1]
        noise_rec, sine_rec, t = r[random_name], r[sine_name], p.claims
        strength = p.model.dropout_rate if kind == "dropout" else p.model.l2
        select = {kind: strength}
        noise_runs, sine_runs = by_seed(noise_rec, kind, **select), by_seed(sine_rec, kind, **select)
        noise_base, sine_base = by_seed(noise_rec), by_seed(sine_rec)
        seeds = sorted(set(noise_runs) & set(sine_runs) & set(noise_base) & set(sine_base))
        a, m = p.base.article_epochs, p.memorization
        article = [judge_regularizer_at(at(noise_rec, noise_runs[s], a),
                                        at(noise_rec, noise_base[s], a),
                                        at(sine_rec, sine_runs[s], a),
                                        at(sine_rec, sine_base[s], a), t)
                   for s in seeds]
        long = [judge_regularizer(process(noise_rec, noise_runs[s], m),
                                  process(noise_rec, noise_base[s], m),
                                  process(sine_rec, sine_runs[s], m),
                                  process(sine_rec, sine_base[s], m), sine_rec, t)
                for s in seeds]
        return {"article": decide(article, t.fragile), "long": decide(long, t.fragile)}
    return judge


EXAMPLE2 = "ex2"  # the article's Example 2: X (1000, 20, 1), LSTM(128) + Dropout(0.5)


def _c2(r: Results, p: Params) -> dict[str, Decision]:
    """The strength curves (`article`, `long`) and the article's Example 2 itself (`ex2_*`):
    its baseline against its Dropout run, seed by seed."""
    out = _curve("dropout")(r, p)
    rec, t, m = r[EXAMPLE2], p.claims, p.memorization
    base, drop = by_seed(rec), by_seed(rec, "dropout", dropout=p.model.dropout_rate)
    seeds = sorted(set(base) & set(drop))
    a = p.base.article_epochs
    out["ex2_article"] = decide([judge_example_dropout_at(at(rec, drop[s], a), at(rec, base[s], a), t)
                                 for s in seeds], t.fragile)
    long = decide([judge_example_dropout(process(rec, drop[s], m), process(rec, base[s], m),
                                         rec.epochs, t) for s in seeds], t.fragile)
    delay = long.numbers["delay"]
    if long.verdict == REFUTED and delay is not None:
        # The seeds agree on the words; the factor is their mean.
        long = dataclasses.replace(long, says=f"delays memorizing x{delay:.1f}; does not prevent it")
    out["ex2_long"] = long
    return out


def _setting_c2(p: Params) -> str:
    return (f"{_setting_curve('dropout')(p)} And the article's Example 2 as written: "
            f"{_data(p, EXAMPLE2)}; {_model(p, EXAMPLE2)} baseline against "
            f"LSTM({p.train[EXAMPLE2].units}) + Dropout({p.model.dropout_rate:g}) + Dense(1), "
            f"{_budget(p, EXAMPLE2)}.")


def _c6(r: Results, p: Params) -> dict[str, Decision]:
    rec, t = r["stocks"], p.claims
    runs = by_seed(rec).values()
    article = [judge_c6(rec, process(rec, run.truncated(p.base.article_epochs), p.memorization), t)
               for run in runs]
    long = [judge_c6(rec, process(rec, run, p.memorization), t) for run in runs]
    return {"article": decide(article, t.fragile), "long": decide(long, t.fragile)}


def sweep_records(r: Results, p: Params) -> dict[int, DatasetRecord]:
    """The sweep's record per size."""
    return {n: r[f"sweep_n{n}"] for n in p.sweep.sizes}


def _c7(r: Results, p: Params) -> dict[str, Decision]:
    """Each size memorized or not within the budget (in optimizer steps), read off the
    memorization curve; the curve's fitted exponent goes with the numbers."""
    recs = sweep_records(r, p)
    curve = memorization_curve(list(recs.values()), p.memorization)
    steps = {(n, seed): st for n, seed, st in curve.points}
    seeds = sorted({seed for _, seed, _ in curve.points})
    out = {}
    for budget in ("article", "long"):
        per_seed = []
        for seed in seeds:
            flags = {}
            for n, rec in recs.items():
                epochs = p.base.article_epochs if budget == "article" else rec.epochs
                st = steps.get((n, seed))
                flags[n] = st is not None and st <= epochs * rec.steps_per_epoch
            per_seed.append(judge_c7(flags))
        decision = decide(per_seed, p.claims.fragile)
        decision.numbers["steps_exponent"] = None if curve.k is None else round(curve.k, 4)
        out[budget] = decision
    return out


def _c8(r: Results, p: Params) -> dict[str, Decision]:
    rec, t = r["sentiment"], p.claims
    base, drop = by_seed(rec), by_seed(rec, "dropout")
    seeds = sorted(set(base) & set(drop))
    return {
        "overfits": decide([judge_c8_overfits(base[s], t) for s in seeds], t.fragile),
        "stable": decide([judge_c8_stable(drop[s], t) for s in seeds], t.fragile),
        "better": decide([judge_c8_better(base[s], drop[s], t) for s in seeds], t.fragile),
    }


def _one(name: str, variant: str = "baseline") -> Callable[[Params], tuple[tuple[str, str], ...]]:
    return lambda p: ((name, variant),)


def _curve_reads(kind: str) -> Callable[[Params], tuple[tuple[str, str], ...]]:
    return lambda p: tuple((d, v) for d in p.curves.datasets for v in ("baseline", kind))


CLAIMS: tuple[Claim, ...] = (
    Claim("C1", "Example 1: the data lacks any meaningful temporal dependencies, which makes it "
          "difficult for the LSTM to overfit. The model can't discover complex relationships in "
          "the data and, therefore, learns the mean behavior.",
          _one("ex1"), _setting_one("ex1"), _c1, ("curves_ex1", "memorization")),
    Claim("C2", "Example 2: the model's capacity to memorize the training set is limited by the "
          "dropout, and it avoids overfitting. It will likely underfit slightly due to this "
          "regularization, although it will often generalize better.",
          lambda p: (*_curve_reads("dropout")(p), (EXAMPLE2, "baseline"), (EXAMPLE2, "dropout")),
          _setting_c2, _c2, ("strength_dropout", f"curves_{EXAMPLE2}"),
          headline=("long", "ex2_long")),
    Claim("C3", "Example 3: the sequence length is still small (only 5), which may not allow the "
          "LSTM to truly overfit.",
          lambda p: (("ex3", "baseline"), ("ex3_seq20", "baseline")), _setting_c3, _c3,
          ("curves_ex3", "curves_ex3_seq20", "memorization")),
    Claim("C4", "A simple sinusoidal pattern: the model quickly generalized, learning the "
          "fundamental pattern and failing to capture minor random fluctuations.",
          lambda p: (("sine", "baseline"), ("sine_small", "baseline")), _setting_c4, _c4,
          ("curves_sine", "curves_sine_small"), headline=("long", "small_long")),
    Claim("C5", "L2 regularization, which penalizes large weight values, further restricts the "
          "model's tendency to fit noise.",
          _curve_reads("l2"), _setting_curve("l2"), _curve("l2"), ("strength_l2",)),
    Claim("C6", "A very small dataset of stock prices: the model reached a certain training loss "
          "and stayed there, making limited progress regardless of how long the training was "
          "carried on; the model never overfit.",
          _one("stocks"), _setting_c6, _c6, ("curves_stocks",)),
    Claim("C7", "If the dataset is too small, there is a risk that the model will memorize the "
          "training instances; a slightly larger but still relatively small dataset may also "
          "result in not overfitting.",
          lambda p: tuple((f"sweep_n{n}", "baseline") for n in p.sweep.sizes), _setting_c7, _c7,
          ("sweep", "memorization")),
    Claim("C8", "A sentiment analysis task: a small LSTM model without dropout overfit "
          "significantly after several epochs, leading to poor generalization; the same model "
          "with dropout exhibited stable training and better performance on unseen data.",
          lambda p: (("sentiment", "baseline"), ("sentiment", "dropout")), _setting_c8, _c8,
          ("curves_sentiment",), headline=("overfits", "stable", "better")),
)


def headline(claim: Claim, decisions: dict[str, Decision]) -> str:
    """The claim's one verdict for `dvc exp show`: its decided, long-budget verdict (the
    article's claims are general; its 50 epochs stop mid-transition), or the combination of
    the parts it names (C4's two sines, C8's three parts)."""
    return combine([decisions[part] for part in claim.headline])


def figure_names() -> list[str]:
    """Every figure the claims name (and the report links), each once."""
    return list(dict.fromkeys(f for claim in CLAIMS for f in claim.figures))
