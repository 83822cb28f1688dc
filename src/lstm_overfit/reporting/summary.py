"""What a training stage hands DVC: metrics (seed mean and spread of each run's process
numbers) and plot rows (seed-mean learning curves)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lstm_overfit.params import Memorization
from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.science.measure import (
    at,
    bits_memorized,
    classifier_process,
    memorization_curve,
    points,
    process,
    spread,
)

if TYPE_CHECKING:  # a type only: summarizing results needs no engine
    from lstm_overfit.engine.fast import RunSpec


def run_numbers(rec: DatasetRecord, run: RunRecord, m: Memorization,
                article: int) -> dict[str, float | None]:
    """The numbers one run is summarized by (also logged on its MLflow run)."""
    if rec.task == "classification":
        c = classifier_process(run)
        return {"best_val_epoch": c.best.epoch,
                "best_val_loss": c.best.val_loss, "best_val_acc": c.best.val_acc,
                "final_val_loss": c.final.val_loss, "final_val_acc": c.final.val_acc,
                "final_train_loss": c.final.train_loss, "max_val_rise": c.max_rise}
    p = process(rec, run, m)
    spe = rec.steps_per_epoch
    a = at(rec, run, article) if article <= p.epochs_trained or run.stopped_early else None
    bits = bits_memorized(rec.n_train, p.final.train_frac)
    return {
        "epochs": p.epochs_trained,
        "half_epoch": p.half_epoch, "half_step": p.steps(p.half_epoch, spe),
        "memorized_epoch": p.memorized_epoch, "memorized_step": p.steps(p.memorized_epoch, spe),
        "best_val_epoch": p.best_val_epoch, "val_rise": p.val_rise,
        "final_train_frac": p.final.train_frac, "final_val_ratio": p.final.val_ratio,
        "final_noise_frac": p.final.noise_frac,
        f"at{article}_train_frac": a.train_frac if a else None,
        f"at{article}_val_ratio": a.val_ratio if a else None,
        "bits_per_weight": bits / rec.weight_count,
    }


STAGE_METRICS = {  # what `dvc exp show` gets per group of runs: few columns, the telling ones
    "regression": ("memorized_epoch", "half_epoch", "best_val_epoch", "final_train_frac",
                   "final_val_ratio"),
    "classification": ("best_val_epoch", "best_val_acc", "final_val_loss", "final_val_acc"),
}


def stage_metrics(rec: DatasetRecord, m: Memorization, article: int) -> dict:
    """Per variant (and strength): the seed mean of each telling number, and its spread
    across seeds as `<number>_std`. A number some seeds lack (never memorized) averages the
    seeds that have it; `memorized` counts the seeds that memorized."""
    out: dict[str, dict] = {}
    groups: dict[str, list[RunRecord]] = {}
    for run in rec.runs:
        groups.setdefault(group_label(run), []).append(run)
    for label, runs in groups.items():
        rows = [run_numbers(rec, r, m, article) for r in runs]
        stats: dict[str, float | int | None] = {}
        for key in STAGE_METRICS[rec.task]:
            values = [row[key] for row in rows if row[key] is not None]
            mean, std = spread(values) if values else (None, None)
            stats[key], stats[f"{key}_std"] = _round(mean), _round(std)
        if rec.task == "regression":
            stats["memorized"] = sum(row["memorized_epoch"] is not None for row in rows)
        out[label] = stats
    return out


def group_label(run: RunRecord | RunSpec) -> str:
    """baseline, dropout, l2 or, with a strength, dropout0.3 / l2_0.001."""
    if run.variant == "dropout" and run.dropout:
        return f"dropout{run.dropout:g}"
    if run.variant == "l2" and run.l2:
        return f"l2_{run.l2:g}"
    return run.variant


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, 6)


def curve_rows(rec: DatasetRecord, runs: list[RunRecord]) -> list[dict[str, float]]:
    """Seed-mean learning curve at every epoch some seed measured; a seed that stopped
    (memorized) keeps its last value. Columns for DVC plots, x: epoch; `fit_loss` is the
    training-mode loss model.fit reports, the rest are inference-mode measurements."""
    if rec.task == "classification":
        series = [{e: (t, v, ta, va, v - t) for e, t, v, ta, va in
                   zip(r.epochs, r.train_error, r.val_error, r.train_acc or (), r.val_acc or (),
                       strict=True)} for r in runs]
        names = ("train_bce", "val_bce", "train_acc", "val_acc", "gap")
    else:
        series = [{p.epoch: (p.train_mse, p.val_mse, p.train_frac, p.val_ratio, p.gap)
                   for p in points(rec, r)} for r in runs]
        names = ("train_mse", "val_mse", "train_frac", "val_ratio", "gap")
    epochs = sorted(set().union(*series))
    rows = []
    for e in epochs:
        values = [s[e] if e in s else s[max(k for k in s if k < e)] for s in series
                  if min(s) <= e]
        row: dict[str, float] = {"epoch": e, "step": e * rec.steps_per_epoch}
        for i, name in enumerate(names):
            row[name] = round(math.fsum(v[i] for v in values) / len(values), 8)
        row["fit_loss"] = round(
            math.fsum(r.loss[min(e, len(r.loss)) - 1] for r in runs) / len(runs), 8)
        rows.append(row)
    return rows


def sweep_metrics(records: list[DatasetRecord], m: Memorization) -> dict:
    """Per size: optimizer steps to memorize (seed mean, spread, how many seeds did); the
    fitted exponent k of steps = a * n**k."""
    curve = memorization_curve(records, m)
    sizes = {}
    for rec in records:
        steps = [s for n, _, s in curve.points if n == rec.n_train and s is not None]
        mean, std = spread(steps) if steps else (None, None)
        sizes[f"n{rec.n_train}"] = {"memorized_step": {"mean": _round(mean), "std": _round(std),
                                                       "seeds": len(steps)}}
    return {"steps_exponent": _round(curve.k), "steps_scale": _round(curve.a), **sizes}


def sweep_rows(records: list[DatasetRecord], m: Memorization) -> list[dict[str, float]]:
    """One row per size and seed that memorized: n against optimizer steps, with the fit."""
    curve = memorization_curve(records, m)
    rows = []
    for n, seed, steps in curve.points:
        if steps is None:
            continue
        fit = curve.a * n ** curve.k if curve.a is not None and curve.k is not None else steps
        rows.append({"n_train": n, "seed": seed, "memorized_step": steps,
                     "fitted_step": round(fit, 3)})
    return rows


SWEEP_COLUMNS = ("n_train", "seed", "memorized_step", "fitted_step")
