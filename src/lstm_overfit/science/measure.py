"""Overfitting measurements: every quantity derived from a run's record is computed here.

The article measured nothing. A run here is measured in inference mode at many epochs, and
read as a process (Zhang et al. 2017, Arpit et al. 2017): how far it has fitted the noise in
its training targets, when it memorized them, when validation was best and how far it rose.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lstm_overfit.params import Memorization
from lstm_overfit.records import DatasetRecord, RunRecord

Outcome = Literal["memorized", "plateau", "falling"]


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error in float64, summed exactly."""
    diff = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return math.fsum((diff * diff).ravel().tolist()) / diff.size


def target_var(y: np.ndarray) -> float:
    """Variance of the training targets: the MSE of a model that learned only their mean."""
    y64 = np.asarray(y, np.float64).ravel()
    mean = math.fsum(y64.tolist()) / y64.size
    return mse(y64, np.full_like(y64, mean))


def mean_baseline_mse(y_train: np.ndarray, y_val: np.ndarray) -> float:
    """MSE on the validation set of predicting the training-target mean."""
    y64 = np.asarray(y_train, np.float64).ravel()
    mean = math.fsum(y64.tolist()) / y64.size
    return mse(np.full(np.size(y_val), mean), np.asarray(y_val).ravel())


def mean_baseline_bce(y_train: np.ndarray, y_val: np.ndarray) -> float:
    """Binary cross-entropy on the validation set of predicting the training positive rate."""
    p = float(np.mean(np.asarray(y_train, np.float64)))
    y = np.asarray(y_val, np.float64).ravel().tolist()
    return -math.fsum(t * math.log(p) + (1 - t) * math.log(1 - p) for t in y) / len(y)


def eval_epochs(epochs: int, article: int, m: Memorization) -> tuple[int, ...]:
    """Measured epochs: every one up to `every_until`, then whenever the epoch count grew by
    `growth`, plus the article's budget and the last epoch. Dense where curves move fastest;
    a crossing is located to within a factor `growth` of its epoch."""
    out = set(range(1, min(epochs, m.every_until) + 1)) | {epochs}
    if article <= epochs:
        out.add(article)
    e = float(m.every_until)
    while e < epochs:
        e = max(e * m.growth, math.floor(e) + 1)
        out.add(min(epochs, math.floor(e)))
    return tuple(sorted(out))


def stop_threshold(noise_floor: float, m: Memorization) -> float:
    """The training MSE at which a run counts as having memorized its noise, and stops."""
    return m.stop_frac * noise_floor


@dataclass(frozen=True)
class Point:
    """A run's numbers at one measured epoch."""

    epoch: int
    train_mse: float
    val_mse: float
    train_frac: float  # training MSE / target variance: 1 learned the mean, 0 memorized
    val_ratio: float  # validation MSE / the mean predictor's: above 1, worse than the mean
    noise_frac: float  # training MSE / noise floor: the share of the noise left unfitted
    gap: float  # validation minus training MSE


def points(rec: DatasetRecord, run: RunRecord) -> list[Point]:
    """Every measured epoch of a regression run."""
    return [Point(e, t, v, t / rec.train_var, v / rec.baseline_val_error, t / rec.noise_floor,
                  v - t)
            for e, t, v in zip(run.epochs, run.train_error, run.val_error, strict=True)]


def at(rec: DatasetRecord, run: RunRecord, epoch: int) -> Point:
    """The run's numbers at a measured epoch, or at its last one if it stopped before
    (a memorized run stays memorized: that is what stopping means)."""
    ps = points(rec, run)
    for p in ps:
        if p.epoch == epoch:
            return p
    if run.stopped_early and epoch > ps[-1].epoch:
        return ps[-1]
    raise ValueError(f"{rec.dataset} {run.variant} seed {run.seed}: epoch {epoch} was not measured")


def first_epoch_at_or_below(ps: Sequence[Point], level: float) -> int | None:
    """The first measured epoch whose noise_frac <= level, or None."""
    return next((p.epoch for p in ps if p.noise_frac <= level), None)


def plateau_fall(ps: Sequence[Point]) -> float:
    """How much the best noise_frac of the last half of training beat the first half's best:
    1 - min(second half) / min(first half). Minima, so one late spike changes nothing."""
    last = ps[-1].epoch
    first = [p.noise_frac for p in ps if p.epoch <= last / 2]
    second = [p.noise_frac for p in ps if p.epoch > last / 2]
    if not first or not second:
        return 1.0
    return 1.0 - min(second) / min(first)


@dataclass(frozen=True)
class Process:
    """The memorization process of one run: how it ended and when things happened."""

    outcome: Outcome
    epochs_trained: int
    half_epoch: int | None  # first measured epoch at or below memorization.half_frac
    memorized_epoch: int | None  # ... at or below memorization.stop_frac
    best_val_epoch: int
    best_val_mse: float
    val_rise: float  # the last measured validation MSE over the best one, minus 1
    fall: float  # plateau_fall over the run
    final: Point

    def steps(self, epoch: int | None, steps_per_epoch: int) -> int | None:
        return None if epoch is None else epoch * steps_per_epoch


def process(rec: DatasetRecord, run: RunRecord, m: Memorization) -> Process:
    """Read a regression run as a memorization process."""
    ps = points(rec, run)
    memorized = first_epoch_at_or_below(ps, m.stop_frac)
    best = min(ps, key=lambda p: p.val_mse)
    fall = plateau_fall(ps)
    outcome: Outcome = ("memorized" if memorized is not None
                        else "plateau" if fall < m.plateau else "falling")
    return Process(outcome, len(run.loss), first_epoch_at_or_below(ps, m.half_frac), memorized,
                   best.epoch, best.val_mse, ps[-1].val_mse / best.val_mse - 1.0, fall, ps[-1])


@dataclass(frozen=True)
class ClassifierPoint:
    epoch: int
    train_loss: float
    val_loss: float
    train_acc: float
    val_acc: float


def classifier_points(run: RunRecord) -> list[ClassifierPoint]:
    accs = zip(run.train_acc or (), run.val_acc or (), strict=True)
    return [ClassifierPoint(e, t, v, ta, va) for e, t, v, (ta, va)
            in zip(run.epochs, run.train_error, run.val_error, accs, strict=True)]


@dataclass(frozen=True)
class ClassifierProcess:
    """Overfitting of a classifier: validation loss against its best."""

    best: ClassifierPoint
    final: ClassifierPoint
    overfit_epoch: int | None  # first epoch whose validation loss is `rise` above the best so far
    max_rise: float  # the highest validation loss after the best, over the best, minus 1
    train_fell: bool  # training loss at the end below its value at the best epoch


def classifier_process(run: RunRecord, rise: float | None = None) -> ClassifierProcess:
    """Best and last points, and with `rise` the first epoch validation loss rose that much
    above its best so far."""
    ps = classifier_points(run)
    best = min(ps, key=lambda p: p.val_loss)
    low, overfit = math.inf, None
    for p in ps:
        low = min(low, p.val_loss)
        if rise is not None and overfit is None and p.val_loss >= (1 + rise) * low:
            overfit = p.epoch
    after = [p.val_loss for p in ps if p.epoch >= best.epoch]
    return ClassifierProcess(best, ps[-1], overfit, max(after) / best.val_loss - 1.0,
                             ps[-1].train_loss < best.train_loss)


def bits_memorized(n: int, train_frac: float) -> float:
    """Information about the training targets a model holds beyond their mean:
    n * 1/2 * log2(1 / train_frac) bits (Gaussian channel; 0 if not below the mean)."""
    return 0.0 if train_frac >= 1.0 else n * 0.5 * math.log2(1.0 / max(train_frac, 1e-12))


def spread(values: Iterable[float]) -> tuple[float, float]:
    """Seed mean and population standard deviation (0 for one seed)."""
    v = list(values)
    return statistics.fmean(v), statistics.pstdev(v) if len(v) > 1 else 0.0


def power_law(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of y = a * x**k in log-log space: (a, k)."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = math.fsum((x - mx) ** 2 for x in lx)
    k = math.fsum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sxx
    return math.exp(my - k * mx), k


@dataclass(frozen=True)
class MemorizationCurve:
    """Claim C7: optimizer steps to memorize per set size and seed (None: not within the
    budget) and the power law steps = a * n**k fitted to every memorized point."""

    points: tuple[tuple[int, int, int | None], ...]  # (n, seed, steps)
    a: float | None
    k: float | None


def memorization_curve(records: Sequence[DatasetRecord], m: Memorization) -> MemorizationCurve:
    pts = []
    for rec in records:
        for run in rec.select("baseline"):
            proc = process(rec, run, m)
            pts.append((rec.n_train, run.seed, proc.steps(proc.memorized_epoch, rec.steps_per_epoch)))
    done = [(n, s) for n, _, s in pts if s is not None]
    if len({n for n, _ in done}) < 2:
        return MemorizationCurve(tuple(pts), None, None)
    a, k = power_law([n for n, _ in done], [s for _, s in done])
    return MemorizationCurve(tuple(pts), a, k)
