"""Why is *my* LSTM not overfitting? A diagnosis of a user's series from measurements only.

The controls are the published ones (../shared/notes/diagnosis.md): the randomization test
(Zhang et al. 2017: the same inputs with shuffled training targets, trained the same way),
naive forecasts (last value and training mean; scaled errors after Hyndman & Koehler 2006) and
a Ljung-Box test of the training targets. Every sentence below is built from those numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.params import Diagnosis as Thresholds
from lstm_overfit.params import Memorization
from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.science.measure import mean_baseline_mse, mse, plateau_fall, points, process

VARIANTS = ("baseline", "shuffled", "dropout", "l2")
NO_PATTERN, TOO_LITTLE, TOO_MUCH_DATA, REGULARIZATION, PATTERN_ONLY = (
    "no pattern to fit", "too little training", "too much data for the model", "regularization",
    "learns the pattern, not the noise")


@dataclass(frozen=True)
class Controls:
    """What the model is compared with, in the standardized units it trains on.

    `naive_last_mse`: validation MSE of forecasting the window's last target value;
    `naive_mean_mse`: of forecasting the training targets' mean; `scale_mse`/`scale_mae`: the
    in-sample error of the naive forecast `horizon` rows ahead on the training part (the
    denominator of scaled errors); `linear_floor`: the training MSE of a least-squares linear
    model on the same windows, the noise floor a real series' memorization is measured against
    (its noise is unknown); `ljung_box_p` at `ljung_box_lags` lags of the training targets."""

    naive_last_mse: float
    naive_mean_mse: float
    scale_mse: float
    scale_mae: float
    linear_floor: float
    ljung_box_p: float
    ljung_box_lags: int


def linear_floor(data: Dataset) -> float:
    """Training MSE of ordinary least squares on the flattened training windows plus an
    intercept; the target variance when there are too few windows for a fit that is not
    exact (an exact fit would put the floor at zero)."""
    x = np.asarray(data.x_train, np.float64).reshape(len(data.x_train), -1)
    y = np.asarray(data.y_train, np.float64)[:, 0]
    design = np.column_stack([x, np.ones(len(x))])
    if len(x) <= 2 * design.shape[1]:
        return mse(y, np.full_like(y, y.mean()))
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return mse(design @ coef, y)


def ljung_box(series: np.ndarray, lags: int) -> tuple[float, int]:
    """statsmodels' Ljung-Box p-value of the first `lags` autocorrelations (at most a fifth
    of the series, so that each lag has data), and the lags used."""
    from statsmodels.stats.diagnostic import acorr_ljungbox

    use = max(1, min(lags, len(series) // 5))
    table = acorr_ljungbox(np.asarray(series, np.float64), lags=[use])
    return float(table["lb_pvalue"].iloc[-1]), use


def warm_up() -> None:
    """Import statsmodels and scipy.stats once, for a process that forks stages (server.py):
    they take ~1.5 s to import, which the diagnoses would otherwise spend before training."""
    ljung_box(np.sin(np.arange(20.0)), 2)


def controls(data: Dataset, target_train: np.ndarray, horizon: int, t: Thresholds) -> Controls:
    """The naive forecasts, the scale of scaled errors, the linear floor and Ljung-Box."""
    last = np.asarray(data.x_val, np.float64)[:, -1, 0]
    s = np.asarray(target_train, np.float64)
    step = s[horizon:] - s[:-horizon]
    p, lags = ljung_box(s, t.lags)
    return Controls(
        naive_last_mse=mse(last, data.y_val[:, 0]),
        naive_mean_mse=mean_baseline_mse(data.y_train, data.y_val),
        scale_mse=mse(step, np.zeros_like(step)),
        scale_mae=math.fsum(np.abs(step).tolist()) / len(step),
        linear_floor=linear_floor(data), ljung_box_p=p, ljung_box_lags=lags)


def mase(pred: np.ndarray, target: np.ndarray, c: Controls) -> float:
    """Mean absolute scaled error: validation MAE over the in-sample naive forecast's MAE."""
    diff = np.asarray(pred, np.float64).ravel() - np.asarray(target, np.float64).ravel()
    return math.fsum(np.abs(diff).tolist()) / len(diff) / c.scale_mae


# --- reading the runs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class State:
    """One variant's seeds at one epoch: how many memorized, were still falling, had
    validation risen `val_rise` above its best; seed means of the numbers."""

    epoch: int
    seeds: int
    memorized: int
    falling: int
    overfit: int
    train_frac: float
    noise_frac: float
    val_mse: float
    best_val_mse: float
    val_rise: float

    def word(self) -> str:
        """memorized / still falling / levelled off, by the majority of seeds."""
        half = self.seeds / 2
        if self.memorized > half:
            return "memorized"
        return "still falling" if self.falling > half else "levelled off"

    def overfits(self) -> bool:
        return self.overfit > self.seeds / 2


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def state(rec: DatasetRecord, runs: Sequence[RunRecord], epoch: int, m: Memorization,
          t: Thresholds) -> State:
    """The seeds as they stood after `epoch` epochs (a seed that stopped, having memorized,
    stays memorized)."""
    rows = []
    for run in runs:
        cut = run.truncated(min(epoch, len(run.loss)))
        proc = process(rec, cut, m)
        rows.append((proc, plateau_fall(points(rec, cut))))
    return State(
        epoch=epoch, seeds=len(rows),
        memorized=sum(p.memorized_epoch is not None for p, _ in rows),
        falling=sum(p.memorized_epoch is None and f >= m.plateau for p, f in rows),
        overfit=sum(p.val_rise >= t.val_rise for p, _ in rows),
        train_frac=_mean([p.final.train_frac for p, _ in rows]),
        noise_frac=_mean([p.final.noise_frac for p, _ in rows]),
        val_mse=_mean([p.final.val_mse for p, _ in rows]),
        best_val_mse=_mean([p.best_val_mse for p, _ in rows]),
        val_rise=_mean([p.val_rise for p, _ in rows]))


@dataclass(frozen=True)
class Variant:
    """One variant over its whole budget: when its seeds memorized (None: not within it)."""

    name: str
    memorized_epochs: tuple[int | None, ...]
    steps_per_epoch: int
    best_val_mse: float  # seed mean of each seed's best validation MSE
    best_val_epoch: float
    article: State
    cap: State

    @property
    def memorized(self) -> int:
        return sum(e is not None for e in self.memorized_epochs)

    def memorized_epoch(self) -> float | None:
        """Seed mean of the memorizing seeds' epochs, if most seeds memorized."""
        done = [e for e in self.memorized_epochs if e is not None]
        return _mean(done) if len(done) > len(self.memorized_epochs) / 2 else None


def variant(rec: DatasetRecord, name: str, article: int, m: Memorization,
            t: Thresholds) -> Variant:
    runs = rec.select(name)
    if not runs:
        raise LookupError(f"{rec.dataset} has no {name} runs")
    procs = [process(rec, r, m) for r in runs]
    return Variant(name, tuple(p.memorized_epoch for p in procs), rec.steps_per_epoch,
                   _mean([p.best_val_mse for p in procs]),
                   _mean([p.best_val_epoch for p in procs]),
                   state(rec, runs, min(article, rec.epochs), m, t),
                   state(rec, runs, rec.epochs, m, t))


# --- the diagnosis ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """The diagnosis: a short answer (the `dvc exp show` column), the reasons it names, one
    sentence per question, and the numbers behind them."""

    answer: str
    reasons: tuple[str, ...]
    capacity: str
    signal: str
    budget: str
    regularization: str
    summary: str
    numbers: dict[str, float | int | bool | None]

    def as_json(self) -> dict:
        return asdict(self)

    def tags(self) -> dict[str, str]:
        """MLflow tags for every run of the series."""
        return {"diagnosis.answer": self.answer, "diagnosis.summary": self.summary,
                "diagnosis.capacity": self.capacity, "diagnosis.signal": self.signal,
                "diagnosis.budget": self.budget,
                "diagnosis.regularization": self.regularization}


def _g(x: float) -> str:
    return f"{x:.3g}"


def _when(v: Variant) -> str:
    e = v.memorized_epoch()
    if e is None:
        return (f"not memorized within {v.cap.epoch} epochs ({v.memorized}/{len(v.memorized_epochs)}"
                f" seeds did; train_frac {_g(v.cap.train_frac)})")
    return (f"memorized at epoch {e:.0f} (step {e * v.steps_per_epoch:.0f}, "
            f"{v.memorized}/{len(v.memorized_epochs)} seeds)")


def _regularizer(base: Variant, reg: Variant, label: str) -> str:
    b, r = base.memorized_epoch(), reg.memorized_epoch()
    if r is None and b is not None:
        effect = f"prevents memorizing within {reg.cap.epoch} epochs"
    elif r is None:
        effect = "neither memorizes"
    elif b is None:
        effect = f"memorizes at epoch {r:.0f}, the baseline does not"
    else:
        effect = f"delays memorizing x{r / b:.2g} (epoch {r:.0f} against {b:.0f})"
    return (f"{label} {effect}; best validation MSE {_g(reg.best_val_mse)} against "
            f"{_g(base.best_val_mse)}")


def diagnose(records: Mapping[str, DatasetRecord], c: Controls, article: int,
             m: Memorization, t: Thresholds, dropout: float, l2: float,
             final_mase: float | None = None) -> Result:
    """Read the four variants' runs against the controls (see the README, "Why is my LSTM
    not overfitting?", for each rule)."""
    v = {name: variant(records[name], name, article, m, t) for name in VARIANTS}
    base, shuffled = v["baseline"], v["shuffled"]
    naive = min(c.naive_last_mse, c.naive_mean_mse)
    naive_name = "last value" if c.naive_last_mse <= c.naive_mean_mse else "training mean"
    skill = 1.0 - base.best_val_mse / naive
    signal = skill >= t.skill
    correlated = c.ljung_box_p < t.alpha
    rmsse = math.sqrt(base.best_val_mse / c.scale_mse)

    real_e, shuf_e = base.memorized_epoch(), shuffled.memorized_epoch()
    capacity = f"shuffled targets {_when(shuffled)}; real targets {_when(base)}"
    if real_e is not None and shuf_e is not None:
        ratio = shuf_e / real_e
        capacity += (f": the real targets are memorized x{ratio:.2g} sooner (their structure "
                     "helps)" if ratio >= 1 else
                     f": the real targets take x{1 / ratio:.2g} longer than shuffled ones")
    signal_text = (
        f"best validation MSE {_g(base.best_val_mse)} (epoch {base.best_val_epoch:.0f}, seed "
        f"mean) against the naive forecasts' {_g(c.naive_last_mse)} (last value) and "
        f"{_g(c.naive_mean_mse)} (training mean): "
        + (f"{skill:.0%} better than the {naive_name}" if signal
           else f"does not beat the {naive_name} by {t.skill:.0%}")
        + f"; RMSSE {rmsse:.3g}"
        + (f", MASE {final_mase:.3g} at the end" if final_mase is not None else "")
        + f"; Ljung-Box p {c.ljung_box_p:.2g} at {c.ljung_box_lags} lags ("
        + ("autocorrelated" if correlated else "no linear dependence") + ")")
    a, cap = base.article, base.cap
    budget = (f"at {a.epoch} epochs {a.word()} (train_frac {_g(a.train_frac)}"
              + (f", validation {a.val_rise:.0%} above its best" if a.overfits() else "")
              + f"); within the cap of {cap.epoch} epochs {cap.word()}"
              + (f" (validation {cap.val_rise:.0%} above its best)" if cap.overfits() else ""))
    regularization = (_regularizer(base, v["dropout"], f"Dropout({dropout:g})") + "; "
                      + _regularizer(base, v["l2"], f"L2({l2:g})"))

    reasons: list[str] = []
    if a.overfits() or a.word() == "memorized":
        answer = f"overfits within {a.epoch} epochs"
    else:
        if not signal:
            reasons.append(NO_PATTERN)
        if a.word() == "still falling" or (cap.word() == "memorized" or cap.overfits()):
            reasons.append(TOO_LITTLE)
        if shuf_e is None and real_e is None:
            reasons.append(TOO_MUCH_DATA)
        if not reasons:
            reasons.append(PATTERN_ONLY)
        answer = " + ".join(reasons)
    summary = _summary(answer, reasons, base, shuffled, signal, correlated, naive_name, skill,
                       v["dropout"], v["l2"], dropout, l2)
    numbers: dict[str, float | int | bool | None] = {
        "signal": signal, "skill": skill, "rmsse": rmsse, "mase_final": final_mase,
        "autocorrelated": correlated, **asdict(c)}
    for name, var in v.items():
        numbers[f"{name}_memorized_epoch"] = var.memorized_epoch()
        numbers[f"{name}_memorized_seeds"] = var.memorized
        numbers[f"{name}_best_val_mse"] = var.best_val_mse
        numbers[f"{name}_at{a.epoch}_train_frac"] = var.article.train_frac
        numbers[f"{name}_cap_train_frac"] = var.cap.train_frac
    return Result(answer, tuple(reasons), capacity, signal_text, budget, regularization,
                  summary, numbers)


def _summary(answer: str, reasons: list[str], base: Variant, shuffled: Variant, signal: bool,
             correlated: bool, naive_name: str, skill: float, drop: Variant, l2: Variant,
             dropout: float, l2_factor: float) -> str:
    """The answer in words, one clause per reason, each with its number."""
    a = base.article
    if not reasons:
        return (f"It does overfit: by epoch {a.epoch} the model {a.word()} its training "
                f"targets (train_frac {_g(a.train_frac)}).")
    clauses = []
    if NO_PATTERN in reasons:
        clauses.append(f"there is little pattern to fit: at its best the model is not "
                       f"{'' if skill <= 0 else 'much '}better than the {naive_name}"
                       + (" although Ljung-Box finds autocorrelation" if correlated
                          else ", and Ljung-Box finds no autocorrelation"))
    elif signal:
        clauses.append(f"it learns a real pattern ({skill:.0%} better than the {naive_name})")
    if TOO_LITTLE in reasons:
        e = base.memorized_epoch()
        clauses.append(f"{a.epoch} epochs are too few: the training error is {a.word()} there"
                       + (f" and the model memorizes at epoch {e:.0f}" if e is not None else ""))
    if TOO_MUCH_DATA in reasons:
        clauses.append(f"the model cannot memorize this many targets within "
                       f"{shuffled.cap.epoch} epochs, not even shuffled ones")
    if PATTERN_ONLY in reasons:
        clauses.append(f"its training error levels off at the pattern (train_frac "
                       f"{_g(base.cap.train_frac)} at {base.cap.epoch} epochs) although it can "
                       "memorize shuffled targets")
    text = "; ".join(clauses)
    held = [label for var, label in ((drop, f"Dropout({dropout:g})"), (l2, f"L2({l2_factor:g})"))
            if var.memorized_epoch() is None and base.memorized_epoch() is not None]
    regular = (f" {' and '.join(held)} would keep it from memorizing within "
               f"{base.cap.epoch} epochs: {REGULARIZATION}." if held else "")
    return f"Not overfitting at {a.epoch} epochs because {text}.{regular}"
