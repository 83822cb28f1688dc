"""Every figure: learning curves, memorization against optimizer steps, the size sweep and the
regularizer strength curves. PNG bytes are reproducible (no timestamps, fixed dpi).

`figure(name)` gives the function that draws a figure the claims catalogue names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lstm_overfit.params import Params
from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.reporting.summary import curve_rows
from lstm_overfit.science.measure import classifier_points, memorization_curve, points, process

PNG_METADATA = {"Software": None}
DPI = 90
Results = Mapping[str, DatasetRecord]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    pyplot().close(fig)


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


def _draw_runs(ax, rec: DatasetRecord, runs: list[RunRecord]) -> None:
    for i, run in enumerate(runs):
        colour = f"C{i % 10}"
        if rec.task == "classification":
            ps = classifier_points(run)
            ax.plot([p.epoch for p in ps], [p.train_loss for p in ps], color=colour, ls="--",
                    lw=1, label=f"seed {run.seed} train")
            ax.plot([p.epoch for p in ps], [p.val_loss for p in ps], color=colour, lw=1.6,
                    label=f"seed {run.seed} validation")
        else:
            ps = points(rec, run)
            ax.plot([p.epoch for p in ps], [p.train_mse for p in ps], color=colour, ls="--",
                    lw=1, label=f"seed {run.seed} train")
            ax.plot([p.epoch for p in ps], [p.val_mse for p in ps], color=colour, lw=1.6,
                    label=f"seed {run.seed} validation")


def learning_curve(rec: DatasetRecord, runs: list[RunRecord], title: str, path: Path,
                   stop_frac: float | None = None) -> None:
    """Inference-mode training and validation error of some runs, with the reference levels."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    _draw_runs(ax, rec, runs)
    reference_lines(ax, rec, stop_frac)
    ax.set(xscale="log", yscale="log", xlabel="epoch", title=title,
           ylabel="binary cross-entropy" if rec.task == "classification" else "MSE")
    ax.legend(fontsize=6, loc="lower left")
    save_figure(fig, path)


def dataset_curves(rec: DatasetRecord, p: Params, path: Path) -> None:
    """One panel per variant (the baseline and the claims' regularized variants), every seed."""
    plt = pyplot()
    variants = [v for v in ("baseline", "dropout", "l2") if rec.select(v)]
    variants = [v for v in variants if v == "baseline" or rec.dataset in getattr(p.variants, v)]
    fig, axes = plt.subplots(1, len(variants), figsize=(4.4 * len(variants), 3.8), sharey=True,
                             squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        runs = rec.select(variant, **_article_strength(variant, p))
        _draw_runs(ax, rec, runs)
        reference_lines(ax, rec, p.memorization.stop_frac if rec.task == "regression" else None)
        ax.set(xscale="log", yscale="log", xlabel="epoch", title=f"{rec.dataset} {variant}")
    axes[0][0].set_ylabel("binary cross-entropy" if rec.task == "classification"
                          else "MSE (inference mode)")
    axes[0][-1].legend(fontsize=6, loc="lower left")
    save_figure(fig, path)


def _article_strength(variant: str, p: Params) -> dict[str, float]:
    return {"dropout": {"dropout": p.model.dropout_rate}, "l2": {"l2": p.model.l2}}.get(variant, {})


def memorization(results: Results, p: Params, path: Path) -> None:
    """Seed-mean train_frac of the baseline against optimizer steps, on every random-target
    set: where memorization starts, and how long the flat start lasts."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
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
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def sweep_curve(results: Results, p: Params, path: Path) -> None:
    """Claim C7: optimizer steps to memorize against set size, every seed, the fitted power
    law, and the budgets: the article's 50 epochs and the cap, both in steps."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.4))
    records = [results[f"sweep_n{n}"] for n in p.sweep.sizes]
    curve = memorization_curve(records, p.memorization)
    for rec in records:
        for n, _, steps in curve.points:
            if n != rec.n_train:
                continue
            if steps is not None:
                ax.scatter([n], [steps], color="C0", s=14)
            else:
                ax.scatter([n], [rec.epochs * rec.steps_per_epoch], color="C3", marker="^", s=18)
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
    ax.legend(fontsize=7)
    save_figure(fig, path)


def strength_curve(kind: str) -> Callable[[Results, Params, Path], None]:
    """Claims C2, C5: per strength, when the random targets were memorized (or not within the
    budget), and the noisy sine's training and validation error against its noise."""
    def draw(results: Results, p: Params, path: Path) -> None:
        plt = pyplot()
        grid = p.curves.dropout if kind == "dropout" else p.curves.l2
        random_name, sine_name = p.curves.datasets[0], p.curves.datasets[-1]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.9))
        xs = list(range(len(grid)))
        for panel, name in ((left, random_name), (right, sine_name)):
            rec = results[name]
            for x, s in zip(xs, grid, strict=True):
                runs = _strength_runs(rec, kind, s)
                for run in runs:
                    proc = process(rec, run, p.memorization)
                    if panel is left:
                        y = proc.memorized_epoch or rec.epochs
                        panel.scatter([x], [y], color="C0" if proc.memorized_epoch else "C3",
                                      marker="o" if proc.memorized_epoch else "^", s=16)
                    else:
                        panel.scatter([x], [proc.final.train_mse / rec.noise_floor], color="C0", s=14)
                        panel.scatter([x], [proc.final.val_mse / rec.noise_floor], color="C1", s=14)
            if panel is left:
                panel.axhline(rec.epochs, color="grey", ls=":", lw=1)
                panel.set(yscale="log", ylabel="epoch memorized (triangle: not within budget)",
                          title=f"{name}: random targets")
            else:
                panel.axhline(1.0, color="grey", ls="-.", lw=1)
                panel.axhline(p.claims.c4_val_ceiling, color="C1", ls=":", lw=1)
                panel.set(yscale="log", ylabel="MSE / noise variance (blue train, orange val)",
                          title=f"{name}: noisy sine")
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
