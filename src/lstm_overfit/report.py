"""Stage `report`: `reports/claims.md` and its figures, explaining each verdict with numbers.

The report is also recorded in MLflow as a `claims` run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from lstm_overfit.claims import CLAIM_TEXT, RESULT_DATASETS
from lstm_overfit.cli import run_stage
from lstm_overfit.figures import _pyplot, save_figure
from lstm_overfit.outputs import atomic_dir, atomic_file, read_json
from lstm_overfit.params import ClaimParams, load_params
from lstm_overfit.tracking import Tracker, tracked

RANDOM_DATASETS = ("ex1", "ex2", "ex3", "ex3_seq20")
SETTING = {
    "C1": "ex1: X ~ U(0,1) (100, 10, 1), random y; LSTM(128) baseline.",
    "C2": "ex2: X ~ U(0,1) (1000, 20, 1), random y; LSTM(128) with Dropout(0.5) vs baseline.",
    "C3": "ex3 (500, 5, 3) against its twin ex3_seq20 (500, 20, 3); LSTM(256) baseline.",
    "C4": "sine: 1000 windows of 20 steps of sin(2 pi t / 50) + N(0, 0.1^2), next value; "
          "LSTM(128) baseline; floor = noise variance.",
    "C4_small": "sine_small: the same with 50 training windows.",
    "C5": "ex2 with an L2 penalty (1e-3, kernel and recurrent kernel) vs baseline.",
    "C6": "Daily log returns of real prices (snapshot of Yahoo Finance), 20-day windows "
          "predicting the next day, chronological 80/20 split; LSTM(64) baseline.",
    "C7": "ex1-shaped random data, n = 25 ... 400 (nested), baseline; equal optimizer steps "
          "and equal epochs.",
}
FIGURES = {
    "C1": ["curves_ex1.png", "memorization.png"],
    "C2": ["curves_ex2.png"],
    "C3": ["curves_ex3.png", "curves_ex3_seq20.png", "memorization.png"],
    "C4": ["curves_sine.png"],
    "C4_small": ["curves_sine_small.png"],
    "C5": ["curves_ex2.png"],
    "C6": ["curves_stocks.png"],
    "C7": ["sweep.png"],
}


def why(claim: str, verdict: dict, t: ClaimParams) -> str:
    """One plain sentence on why the numbers gave this verdict."""
    v = verdict["verdict"]
    if v == "mixed":
        s = verdict["seeds"]
        return (f"The seeds disagree ({s['supported']} supported, {s['refuted']} refuted, "
                f"{s['inconclusive']} inconclusive): the outcome depends on the initialisation.")
    over = (f"overfitting means train_frac <= {t.overfit_train_frac} and "
            f"val_ratio >= {t.overfit_val_ratio}")
    if claim == "C1":
        return {
            "supported": "The model kept its training error near the target variance: it "
                         "learned about the mean, as the article says.",
            "refuted": f"The model memorized the random training targets ({over}), which the "
                       "article says it cannot do.",
            "inconclusive": "It did not overfit, but its training error is not close to the "
                            "mean predictor's either.",
        }[v]
    if claim in ("C2", "C5"):
        reg = "dropout" if claim == "C2" else "the L2 penalty"
        return {
            "supported": f"The baseline memorized the training set and {reg} prevented it.",
            "refuted": f"The model overfit with {reg} too ({over}).",
            "inconclusive": "The baseline did not overfit, so there was nothing for "
                            f"{reg} to prevent.",
        }[v]
    if claim == "C3":
        return {
            "supported": "The length-5 model did not overfit while its length-20 twin did.",
            "refuted": f"The length-5 model overfit ({over}): short sequences did not stop it.",
            "inconclusive": "Neither sequence length separated the outcomes as the claim says.",
        }[v]
    if claim in ("C4", "C4_small"):
        return {
            "supported": f"Training MSE stayed above {t.c4_train_floor} x the noise variance and "
                         f"validation MSE below {t.c4_val_ceiling} x: it learned the curve, "
                         "not the noise.",
            "refuted": f"Training MSE fell below {t.c4_refute_train} x the noise variance while "
                       f"validation MSE rose over {t.c4_val_rise:.0%} above its best: it fit "
                       "the noise.",
            "inconclusive": "The errors sit between the thresholds of learning the pattern "
                            "and fitting the noise.",
        }[v]
    if claim == "C6":
        return {
            "supported": "Validation error is no worse than predicting the mean return and "
                         f"the training loss moved less than {t.c6_plateau:.0%} in the last "
                         f"{t.c6_tail:.0%} of epochs: a plateau, no overfitting.",
            "refuted": f"Validation error is over {t.c6_refute_val_ratio} x the mean "
                       "predictor's while the training error keeps falling: it overfits.",
            "inconclusive": "Neither a clean plateau nor clear overfitting.",
        }[v]
    return {
        "supported": "The smallest set was memorized and the largest was not.",
        "refuted": "The largest set was memorized and the smallest was not.",
        "inconclusive": "Size did not separate memorization as the claim says.",
    }[v]


def budget_label(claim: str, budget: str, results: dict, t: ClaimParams) -> str:
    if claim == "C7":
        return budget.replace("_", " ")
    name = {"C1": "ex1", "C2": "ex2", "C5": "ex2", "C3": "ex3", "C4": "sine",
            "C4_small": "sine_small", "C6": "stocks"}[claim]
    epoch = t.article_epoch if budget == "article" else results[name]["epochs"]
    return f"{budget} (epoch {epoch})"


def render_markdown(claims: dict, results: dict, t: ClaimParams) -> str:
    """The report text: per claim, the article's words, the setting, and each budget's
    verdict with the numbers and seed counts that decided it."""
    lines = ["# Does the article hold? Verdicts from measured runs", "",
             "Each verdict is computed by the `claims` stage from the metrics of the training "
             "runs (see README, *Reading the verdicts*). `train_frac` = training MSE / variance "
             "of the training targets (1: learned the mean, 0: memorized); `val_ratio` = "
             "validation MSE / MSE of predicting the training mean (above 1: worse than the "
             "mean on new data).", "",
             "| claim | " + " | ".join(["budget", "verdict", "seeds (s/r/i)"]) + " |",
             "|---|---|---|---|"]
    for claim, budgets in claims.items():
        for budget, v in budgets.items():
            s = v["seeds"]
            lines.append(f"| {claim} | {budget_label(claim, budget, results, t)} | "
                         f"**{v['verdict']}** | {s['supported']}/{s['refuted']}/"
                         f"{s['inconclusive']} |")
    for claim, budgets in claims.items():
        lines += ["", f"## {claim}", "", f"> {CLAIM_TEXT[claim]}", "",
                  f"Setting: {SETTING[claim]}", ""]
        for budget, v in budgets.items():
            numbers = ", ".join(f"{k} = {x:.4g}" for k, x in v.items()
                                if k not in ("verdict", "seeds"))
            s = v["seeds"]
            lines += [f"- **{budget_label(claim, budget, results, t)}: {v['verdict']}** "
                      f"(seeds: {s['supported']} supported, {s['refuted']} refuted, "
                      f"{s['inconclusive']} inconclusive). {numbers}. {why(claim, v, t)}"]
        lines += [""] + [f"![{f}](figures/{f})" for f in FIGURES[claim]]
    return "\n".join(lines) + "\n"


def curves_figure(record: dict, path: Path) -> None:
    """Train vs validation per variant (one panel each), every seed."""
    plt = _pyplot()
    variants = list(dict.fromkeys(r["variant"] for r in record["runs"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.6),
                             sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        for i, run in enumerate(r for r in record["runs"] if r["variant"] == variant):
            ev = run["eval"]
            ax.plot(ev["epoch"], ev["train_mse"], color=f"C{i}", ls="--", lw=1,
                    label=f"seed {run['seed']} train")
            ax.plot(ev["epoch"], ev["val_mse"], color=f"C{i}", lw=1.8,
                    label=f"seed {run['seed']} validation")
        ax.axhline(record["baseline_val_mse"], color="k", ls=":", lw=1, label="mean predictor")
        if record.get("noise_var"):
            ax.axhline(record["noise_var"], color="grey", ls="-.", lw=1, label="noise variance")
        ax.set(xscale="log", yscale="log", xlabel="epoch", title=f"{record['dataset']} {variant}")
    axes[0][0].set_ylabel("MSE (inference mode)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)


def memorization_figure(results: dict, sweep: dict, path: Path) -> None:
    """train_frac of the baseline against optimizer steps: where memorization starts."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [(name, results[name]) for name in RANDOM_DATASETS]
    series += [(f"sweep n={n}", sweep["sizes"][n]["record"]) for n in sorted(sweep["sizes"], key=int)]
    for i, (label, rec) in enumerate(series):
        runs = [r for r in rec["runs"] if r["variant"] == "baseline"]
        epochs = runs[0]["eval"]["epoch"]
        frac = [statistics.fmean(r["eval"]["train_mse"][j] for r in runs) / rec["train_var"]
                for j in range(len(epochs))]
        ax.plot([e * rec["steps_per_epoch"] for e in epochs], frac, color=f"C{i % 10}",
                ls="-" if i < len(RANDOM_DATASETS) else "--", label=label)
    ax.set_ylim(0, 2)  # an untrained start sits far above 1 and would flatten the rest
    ax.set(xscale="log", xlabel="optimizer steps", ylabel="train_frac (seed mean)",
           title="Random targets, baseline: memorization against optimizer steps")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def sweep_figure(sweep: dict, t: ClaimParams, path: Path) -> None:
    """train_frac and val_ratio against training-set size, at both budgets."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    sizes = sorted(sweep["sizes"], key=int)
    for ax, budget in zip(axes, ("equal_steps", "equal_epochs"), strict=True):
        for key, colour in (("train_frac", "C0"), ("val_ratio", "C1")):
            means = []
            for n in sizes:
                e = sweep["sizes"][n]
                vals = [r["checkpoints"][str(e[budget])][key] for r in e["record"]["runs"]]
                ax.scatter([int(n)] * len(vals), vals, color=colour, s=10)
                means.append(statistics.fmean(vals))
            ax.plot([int(n) for n in sizes], means, color=colour, label=key)
        ax.axhline(t.overfit_train_frac, color="C0", ls=":", lw=1)
        ax.axhline(t.overfit_val_ratio, color="C1", ls=":", lw=1)
        title = (f"{sweep['steps']} optimizer steps" if budget == "equal_steps"
                 else f"{sweep['epochs']} epochs")
        ax.set(xscale="log", xlabel="training-set size n", title=title)
        ax.set_xticks([int(n) for n in sizes], labels=sizes)
        ax.minorticks_off()
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--sweep", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--figures", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    params = load_params(args.params)
    t = params.claims
    claims = read_json(args.claims)
    results = {name: read_json(args.results / f"{name}.json") for name in RESULT_DATASETS}
    sweep = read_json(args.sweep)
    tracker = Tracker(params.mlflow.experiment, os.environ)
    tracker.connect()
    with tracked(tracker):
        with atomic_dir(args.figures) as figs:
            for name, record in results.items():
                curves_figure(record, figs / f"curves_{name}.png")
            memorization_figure(results, sweep, figs / "memorization.png")
            sweep_figure(sweep, t, figs / "sweep.png")
        with atomic_file(args.out) as tmp:
            tmp.write_text(render_markdown(claims, results, t), encoding="utf-8")
        verdicts = {f"verdict.{c}.{b}": v["verdict"] for c, bs in claims.items()
                    for b, v in bs.items()}
        group = tracker.start("claims", [], {"kind": "claims", **verdicts})
        tracker.log(group.parent, artifacts=[args.out, args.claims,
                                             *sorted(args.figures.glob("*.png"))])


if __name__ == "__main__":
    sys.exit(run_stage(main))
