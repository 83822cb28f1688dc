"""Every figure: learning curves, memorization against optimizer steps, the size sweep and the
regularizer strength curves. PNG bytes are reproducible (no timestamps, fixed dpi).

`figure(name)` gives the function that draws a figure the claims catalogue names.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_overfit.params import Params
from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.reporting.summary import curve_rows
from lstm_overfit.science.measure import memorization_curve, process

if TYPE_CHECKING:  # a type only: the training stages draw figures without the diagnosis
    from lstm_overfit.science.diagnosis import Controls

PNG_METADATA = {"Software": None}
DPI = 90
# Where a learning curve's axes sit in its figure (fractions), its legend to their right: the
# place tight_layout found for the longest labels these figures have, fixed, because laying it
# out again for every figure drew it twice.
CURVE_MARGINS = {"left": 0.085, "right": 0.68, "bottom": 0.12, "top": 0.93}
SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076"
                                           "\u2077\u2078\u2079")
Results = Mapping[str, DatasetRecord]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_tick_formatter():
    """Log-axis tick labels in plain text: 10\u207b\u00b3 at a decade, 0.695 or 2 between
    decades. Matplotlib's default writes them as mathtext, which it parses again for every
    label at every draw: most of what drawing a learning curve cost."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
            exponent = math.log10(x)
            if abs(exponent - round(exponent)) < 1e-10 and not 0 <= round(exponent) <= 1:
                return "10" + str(round(exponent)).translate(SUPERSCRIPT)
            return str(round(x)) if x == round(x) and x < 1e5 else f"{x:.3g}"

    return PlainLogFormatter()


def save_figure(fig, path: Path, margins: dict[str, float] | None = None) -> None:
    """Write `fig` as a PNG at DPI with reproducible bytes, laid out by tight_layout or, if
    given, at fixed `margins` (subplots_adjust's fractions), and close it."""
    from matplotlib.ticker import LogFormatterMathtext

    fig.set_dpi(DPI)  # laid out at the dpi it is saved at: each text is measured at one size
    for ax in fig.axes:
        # At the top of its axes, where matplotlib places it too (no axis of these figures has
        # ticks or a label above), but fixed: placing it lays the y axis's ticks out once more.
        if ax.get_title():
            ax.set_title(ax.get_title(), y=1.0)
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_formatter(), LogFormatterMathtext):
                axis.set_major_formatter(log_tick_formatter())
            if isinstance(axis.get_minor_formatter(), LogFormatterMathtext):
                axis.set_minor_formatter(log_tick_formatter())
    if margins is None:
        fig.tight_layout()
    else:
        fig.subplots_adjust(**margins)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    pyplot().close(fig)


def warm_up() -> None:
    """Draw and save one throwaway figure like the learning curves (log axes, a band, a legend
    beside them): matplotlib loads its fonts and its PNG writer once, in a process that forks
    stages (server.py)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.fill_between([1, 2], [1, 1], [2, 2], alpha=0.2, lw=0)
    ax.plot([1, 2], [1.5, 1.2], label="warm")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="MSE", title="warm")
    outside_legend(ax)
    save_figure(fig, io.BytesIO())


def reference_lines(ax, rec: DatasetRecord, stop_frac: float | None = None) -> None:
    """The levels every MSE plot is read against: the mean predictor's validation error, the
    noise variance and the memorization threshold."""
    if rec.task == "classification":
        ax.axhline(rec.baseline_val_error, color="k", ls="--", lw=1,
                   label="predicting the positive rate")
        return
    ax.axhline(rec.baseline_val_error, color="k", ls="--", lw=1, label="predicting the mean")
    if rec.noise_var is not None:
        ax.axhline(rec.noise_var, color="grey", ls="-.", lw=1, label="noise variance")
    if stop_frac is not None:
        ax.axhline(stop_frac * rec.noise_floor, color="C3", ls=":", lw=1,
                   label=f"memorized ({stop_frac:g} x noise floor)")


def seed_band(runs: list[RunRecord], which: str) -> tuple[list[int], list[float], list[float],
                                                          list[float]]:
    """Epochs, and the seed mean, minimum and maximum of `train_error` or `val_error` at each
    epoch some seed measured; a seed that stopped (memorized) keeps its last value."""
    series = [dict(zip(r.epochs, getattr(r, which), strict=True)) for r in runs]
    epochs = sorted(set().union(*series))
    mean, lo, hi = [], [], []
    for e in epochs:
        vals = [s[e] if e in s else s[max(k for k in s if k < e)] for s in series if min(s) <= e]
        mean.append(sum(vals) / len(vals))
        lo.append(min(vals))
        hi.append(max(vals))
    return epochs, mean, lo, hi


def draw_band(ax, runs: list[RunRecord], which: str, label: str, colour: str, ls: str) -> None:
    """A seed mean as a line, the seeds' range as a shaded band around it."""
    epochs, mean, lo, hi = seed_band(runs, which)
    ax.fill_between(epochs, lo, hi, color=colour, alpha=0.18, lw=0)
    ax.plot(epochs, mean, color=colour, ls=ls, lw=1.5, label=label)


def outside_legend(ax, fontsize: int = 7) -> None:
    """The legend right of the plot, where it covers no data."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False)


def _draw_runs(ax, rec: DatasetRecord, runs: list[RunRecord]) -> None:
    n = len(runs)
    spread_word = f"{n} seeds' mean, band: min-max" if n > 1 else f"seed {runs[0].seed}"
    draw_band(ax, runs, "train_error", f"training ({spread_word})", "C0", "--")
    draw_band(ax, runs, "val_error", f"validation ({spread_word})", "C1", "-")


def learning_curve(rec: DatasetRecord, runs: list[RunRecord], title: str, path: Path,
                   stop_frac: float | None = None) -> None:
    """Inference-mode training and validation error of some runs (seed mean and range), with
    the reference levels."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 4.2))
    _draw_runs(ax, rec, runs)
    reference_lines(ax, rec, stop_frac)
    ax.set(xscale="log", yscale="log", xlabel="epoch", title=title,
           ylabel="binary cross-entropy" if rec.task == "classification" else "MSE")
    outside_legend(ax)
    save_figure(fig, path, CURVE_MARGINS)


def dataset_curves(rec: DatasetRecord, p: Params, path: Path) -> None:
    """One panel per variant (the baseline and the claims' regularized variants): the seed
    mean with the seeds' range."""
    plt = pyplot()
    variants = [v for v in ("baseline", "dropout", "l2") if rec.select(v)]
    variants = [v for v in variants if v == "baseline" or rec.dataset in getattr(p.variants, v)]
    fig, axes = plt.subplots(1, len(variants), figsize=(4.4 * len(variants) + 2.4, 3.8),
                             sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        runs = rec.select(variant, **_article_strength(variant, p))
        _draw_runs(ax, rec, runs)
        reference_lines(ax, rec, p.memorization.stop_frac if rec.task == "regression" else None)
        ax.set(xscale="log", yscale="log", xlabel="epoch", title=f"{rec.dataset} {variant}")
    axes[0][0].set_ylabel("binary cross-entropy" if rec.task == "classification"
                          else "MSE (inference mode)")
    outside_legend(axes[0][-1], 6)
    save_figure(fig, path)


def series_figure(records: Mapping[str, DatasetRecord], c: Controls, name: str,
                  article: int, path: Path) -> None:
    """A user's series: the real and the shuffled targets' training and validation MSE (seed
    mean and range) against the naive forecasts' validation MSE."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 4.4))
    real, shuffled = records["baseline"], records["shuffled"]
    draw_band(ax, real.select("baseline"), "train_error", "real targets: training", "C0", "--")
    draw_band(ax, real.select("baseline"), "val_error", "real targets: validation", "C0", "-")
    draw_band(ax, shuffled.select("shuffled"), "train_error", "shuffled targets: training", "C3",
              "--")
    draw_band(ax, shuffled.select("shuffled"), "val_error", "shuffled targets: validation", "C3",
              ":")
    ax.axhline(c.naive_last_mse, color="k", ls="-.", lw=1, label="naive forecast: last value")
    ax.axhline(c.naive_mean_mse, color="grey", ls=(0, (6, 2)), lw=1,
               label="naive forecast: training mean")
    ax.axvline(article, color="grey", ls=":", lw=1, label=f"the article's {article} epochs")
    n = len(real.select("baseline"))
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="MSE (standardized units)",
           title=f"{name}: real against shuffled targets ({n} seeds' mean, band: min-max)")
    outside_legend(ax)
    save_figure(fig, path)


def _article_strength(variant: str, p: Params) -> dict[str, float]:
    return {"dropout": {"dropout": p.model.dropout_rate}, "l2": {"l2": p.model.l2}}.get(variant, {})


def memorization(results: Results, p: Params, path: Path) -> None:
    """Seed-mean train_frac of the baseline against optimizer steps, on every random-target
    set: where memorization starts, and how long the flat start lasts."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.4))
    names = [n for n, d in p.datasets.items() if d.kind == "random" and n in results]
    names += [f"sweep_n{n}" for n in p.sweep.sizes if f"sweep_n{n}" in results]
    for i, name in enumerate(names):
        rows = curve_rows(results[name], results[name].select("baseline"))
        ax.plot([r["step"] for r in rows], [r["train_frac"] for r in rows], color=f"C{i % 10}",
                ls="-" if not name.startswith("sweep") else "--", label=name)
    ax.axhline(p.memorization.stop_frac, color="C3", ls=":", lw=1, label="memorized")
    ax.set_ylim(0, 2)  # an untrained start sits far above 1 and would flatten the rest
    ax.set(xscale="log", xlabel="optimizer steps", ylabel="train_frac (seed mean)",
           title="Random targets, baseline: memorization against optimizer steps")
    outside_legend(ax)
    save_figure(fig, path)


def sweep_curve(results: Results, p: Params, path: Path) -> None:
    """Claim C7: optimizer steps to memorize against set size, every seed, the fitted power
    law, and the budgets: the article's 50 epochs and the cap, both in steps."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.4))
    records = [results[f"sweep_n{n}"] for n in p.sweep.sizes]
    curve = memorization_curve(records, p.memorization)
    labelled: set[str | None] = set()
    for rec in records:
        for n, _, steps in curve.points:
            if n != rec.n_train:
                continue
            label = "memorized (each seed)" if steps is not None else "not within the cap"
            label = None if label in labelled else label
            labelled.add(label)
            if steps is not None:
                ax.scatter([n], [steps], color="C0", s=14, label=label)
            else:
                ax.scatter([n], [rec.epochs * rec.steps_per_epoch], color="C3", marker="^", s=18,
                           label=label)
    if curve.a is not None and curve.k is not None:
        xs = [p.sweep.sizes[0], p.sweep.sizes[-1]]
        ax.plot(xs, [curve.a * x ** curve.k for x in xs], color="C0", lw=1.4,
                label=f"fit: steps = {curve.a:.3g} n^{curve.k:.2f}")
    ns = list(p.sweep.sizes)
    spe = [results[f"sweep_n{n}"].steps_per_epoch for n in ns]
    ax.plot(ns, [p.base.article_epochs * s for s in spe], color="k", ls="--", lw=1,
            label=f"the article's {p.base.article_epochs} epochs")
    ax.axhline(p.sweep.max_steps, color="grey", ls=":", lw=1, label="cap")
    ax.set(xscale="log", yscale="log", xlabel="training-set size n",
           ylabel="optimizer steps to memorize", title="C7: memorization time against set size")
    ax.set_xticks(ns, labels=[str(n) for n in ns])
    ax.minorticks_off()
    outside_legend(ax)
    save_figure(fig, path)


def strength_curve(kind: str) -> Callable[[Results, Params, Path], None]:
    """Claims C2, C5: per strength, when the random targets were memorized (or not within the
    budget), and the noisy sine's training and validation error against its noise."""
    def draw(results: Results, p: Params, path: Path) -> None:
        plt = pyplot()
        grid = p.curves.dropout if kind == "dropout" else p.curves.l2
        random_name, sine_name = p.curves.datasets[0], p.curves.datasets[-1]
        fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 3.9))
        xs = list(range(len(grid)))
        seen: set[str] = set()
        for panel, name in ((left, random_name), (right, sine_name)):
            rec = results[name]
            for x, s in zip(xs, grid, strict=True):
                runs = _strength_runs(rec, kind, s)
                for run in runs:
                    proc = process(rec, run, p.memorization)
                    if panel is left:
                        y = proc.memorized_epoch or rec.epochs
                        done = proc.memorized_epoch is not None
                        label = "memorized" if done else "not within the cap"
                        panel.scatter([x], [y], color="C0" if done else "C3",
                                      marker="o" if done else "^", s=16,
                                      label=label if label not in seen else None)
                        seen.add(label)
                    else:
                        panel.scatter([x], [proc.final.train_mse / rec.noise_floor], color="C0",
                                      marker="o", s=14,
                                      label=None if "training" in seen else "training")
                        panel.scatter([x], [proc.final.val_mse / rec.noise_floor], color="C1",
                                      marker="s", s=14, facecolors="none",
                                      label=None if "validation" in seen else "validation")
                        seen |= {"training", "validation"}
            if panel is left:
                panel.axhline(rec.epochs, color="grey", ls=":", lw=1, label="cap")
                panel.set(yscale="log", ylabel="epoch memorized (each seed)",
                          title=f"{name}: random targets")
            else:
                panel.axhline(1.0, color="grey", ls="-.", lw=1, label="noise variance")
                panel.axhline(p.claims.c4_val_ceiling, color="C1", ls=":", lw=1,
                              label="C4's validation ceiling")
                panel.set(yscale="log", ylabel="final MSE / noise variance (each seed)",
                          title=f"{name}: noisy sine")
            outside_legend(panel)
            panel.set_xticks(xs, labels=[f"{g:g}" for g in grid])
            panel.set_xlabel("dropout rate" if kind == "dropout" else "L2 factor")
        save_figure(fig, path)
    return draw


def _strength_runs(rec: DatasetRecord, kind: str, strength: float) -> list[RunRecord]:
    if strength == 0:
        return rec.select("baseline")
    return rec.select(kind, **{kind: strength})


def _dataset_figure(name: str) -> Callable[[Results, Params, Path], None]:
    return lambda results, p, path: dataset_curves(results[name], p, path)


FIGURES: dict[str, Callable[[Results, Params, Path], None]] = {
    "memorization": memorization,
    "sweep": sweep_curve,
    "strength_dropout": strength_curve("dropout"),
    "strength_l2": strength_curve("l2"),
}


def figure(name: str) -> Callable[[Results, Params, Path], None]:
    """The function that draws figure `name`: one of FIGURES, or `curves_<dataset>`."""
    if name.startswith("curves_"):
        return _dataset_figure(name.removeprefix("curves_"))
    return FIGURES[name]
