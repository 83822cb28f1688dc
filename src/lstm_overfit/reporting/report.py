"""`reports/claims.md`: each claim's verdict explained with the numbers that decided it.

Every number and setting printed here comes from params or results (the catalogue describes
each setting from params), so the report stays true after any `dvc exp run -S`.
"""

from __future__ import annotations

from collections.abc import Mapping

from lstm_overfit.params import Params
from lstm_overfit.records import DatasetRecord
from lstm_overfit.science.catalogue import CLAIMS, EXAMPLE2
from lstm_overfit.science.measure import bits_memorized, process, spread

README_SECTION = "README.md#the-claims-and-how-they-are-judged"
DECISION_KEYS = ("verdict", "margin", "fragile", "seeds", "says")


def fmt(x: float | int | None) -> str:
    if x is None:
        return "—"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.4g}"


def budget_name(budget: str, p: Params) -> str:
    names = {"article": f"article budget (epoch {p.base.article_epochs})",
             "long": "long budget (until memorized, or the cap)"}
    if budget.startswith("small_"):
        return f"few windows, {names[budget.removeprefix('small_')]}"
    if budget.startswith(f"{EXAMPLE2}_"):
        return f"the article's Example 2, {names[budget.removeprefix(f'{EXAMPLE2}_')]}"
    return names.get(budget, budget)


def decision_line(budget: str, d: Mapping, p: Params) -> str:
    numbers = ", ".join(f"{k} = {fmt(v)}" for k, v in d.items() if k not in DECISION_KEYS)
    margin = ("" if d["margin"] is None else
              f" Margin to the nearest threshold: {d['margin']:.0%}"
              + (" — **fragile**: within "
                 f"{p.claims.fragile:.0%} of a threshold." if d["fragile"] else "."))
    says = f" {d['says'][0].upper()}{d['says'][1:]}." if d["says"] else ""
    return (f"- **{budget_name(budget, p)}: {d['verdict']}** (seeds: {d['seeds']}).{says} "
            f"{numbers}.{margin}")


def when(epochs: list[int | None], steps_per_epoch: int) -> str:
    """Seed-mean epoch (and optimizer step) a level was reached, and how many seeds did not."""
    done = [e for e in epochs if e is not None]
    if not done:
        return "not within the budget"
    mean, _ = spread(done)
    late = f", {len(epochs) - len(done)} seeds not" if len(done) < len(epochs) else ""
    return f"{mean:.0f} ({mean * steps_per_epoch:.0f}){late}"


def memorization_table(results: Mapping[str, DatasetRecord], p: Params) -> list[str]:
    """Time to memorize and capacity, per regression dataset and variant (seed means)."""
    lines = ["| dataset | variant | n | weights | weights / sample | epochs (steps) to "
             f"train_frac <= {p.memorization.half_frac} | to memorized (<= "
             f"{p.memorization.stop_frac}) | best validation epoch | final train_frac | "
             "bits memorized / weight |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rec in results.items():
        if rec.task != "regression":
            continue
        for variant in ("baseline", "dropout", "l2"):
            runs = rec.select(variant, **({"dropout": p.model.dropout_rate} if variant == "dropout"
                                          else {"l2": p.model.l2} if variant == "l2" else {}))
            if not runs:
                continue
            procs = [process(rec, r, p.memorization) for r in runs]
            spe = rec.steps_per_epoch
            frac, _ = spread(q.final.train_frac for q in procs)
            bits, _ = spread(bits_memorized(rec.n_train, q.final.train_frac) for q in procs)
            best, _ = spread(q.best_val_epoch for q in procs)
            lines.append(
                f"| {name} | {variant} | {rec.n_train} | {rec.weight_count} | "
                f"{rec.weight_count / rec.n_train:.0f} | {when([q.half_epoch for q in procs], spe)} | "
                f"{when([q.memorized_epoch for q in procs], spe)} | {best:.0f} | {frac:.3g} | "
                f"{bits / rec.weight_count:.2g} |")
    return lines


def series_section(name: str, d: Mapping, p: Params) -> list[str]:
    """One user series: its data, the short answer, one line per question and its figure."""
    info, spec = d["info"], p.series[name]
    return [
        "", f"### {name}: {d['answer']}", "",
        f"`{info['csv']}`, column `{info['columns'][0]}`"
        + (f" ({info['transform']})" if info["transform"] != "none" else "")
        + f", {info['rows']} rows from {info['first']} to {info['last']}: training to "
        f"{info['train_last']} ({info['train_rows']} rows), validation from {info['val_first']} "
        f"({info['val_rows']} rows); windows of {spec.lookback} rows predict {spec.horizon} "
        f"ahead; LSTM({spec.units}), at most {spec.epochs} epochs, seeds "
        f"{', '.join(map(str, p.base.seeds))}.", "",
        d["summary"], "",
        f"- **Capacity** (the randomization test): {d['capacity']}.",
        f"- **Signal**: {d['signal']}.",
        f"- **Budget**: {d['budget']}.",
        f"- **Regularization**: {d['regularization']}.", "",
        f"![{name}](series/{name}.png)",
    ]


def render(verdicts: Mapping[str, str], claims: Mapping[str, Mapping],
           results: Mapping[str, DatasetRecord], p: Params,
           diagnoses: Mapping[str, Mapping] | None = None) -> str:
    """The report: a table of verdicts, then per claim the article's words, the setting, each
    budget's (or part's) verdict with its numbers and margin, and its figures."""
    lines = [
        "# Does the article hold? Verdicts from measured runs", "",
        "Every verdict is computed by the `claims` stage from the training runs' measurements, "
        f"never written by hand; see [the README]({'../' + README_SECTION}) for the rules. "
        "`train_frac` = training MSE / variance of the training targets (1: learned the mean, "
        "0: memorized); `val_ratio` = validation MSE / MSE of predicting the training mean "
        "(above 1: worse than the mean on new data); `noise_frac` = training MSE / noise "
        f"variance. A run has *memorized* when `noise_frac` <= {p.memorization.stop_frac}; "
        f"training stops there. A verdict within {p.claims.fragile:.0%} of a threshold is "
        "marked fragile.", "",
        "| claim | verdict | " + " | ".join(["parts (seeds agreeing)", "fragile"]) + " |",
        "|---|---|---|---|",
    ]
    for claim in CLAIMS:
        c = claims[claim.id]
        summary = "; ".join(f"{b}: {d['verdict']}" for b, d in c.items())
        fragile = ", ".join(b for b, d in c.items() if d["fragile"]) or ""
        lines.append(f"| {claim.id} | **{verdicts[claim.id]}** | {summary} | {fragile} |")
    for claim in CLAIMS:
        lines += ["", f"## {claim.id}: {verdicts[claim.id]}", "", f"> {claim.text}", "",
                  f"Setting: {claim.setting(p)}", ""]
        lines += [decision_line(b, d, p) for b, d in claims[claim.id].items()]
        lines += [""] + [f"![{f}](figures/{f}.png)" for f in claim.figures]
    lines += ["", "## Time to memorize, and capacity", "",
              "Seed means. Epochs are measured epochs (dense early, then every "
              f"{p.memorization.growth - 1:.0%} more), so a crossing is found to within that "
              "factor. Bits memorized = n x 1/2 x log2(1 / train_frac) at the end of training "
              "(Collins et al. 2017 measured about 5 bits per parameter for recurrent "
              "networks).", ""]
    lines += memorization_table(results, p)
    if diagnoses:
        lines += ["", "## Why is my LSTM not overfitting? Each series of `series:`", "",
                  "Computed by `diagnose@<series>` from four trained variants (the baseline, the "
                  "same inputs with shuffled training targets, dropout and L2) and the controls: "
                  "naive forecasts (last value, training mean), scaled errors (RMSSE at the best "
                  "validation epoch, MASE of the final model; below 1 beats the in-sample naive "
                  "forecast) and a Ljung-Box test of the training targets. A real series' noise is "
                  "unknown: *memorized* means training MSE <= "
                  f"{p.memorization.stop_frac} x the training MSE of a linear model on the same "
                  "windows; for shuffled targets, x their variance. MSE in standardized units."]
        for name, d in diagnoses.items():
            lines += series_section(name, d, p)
    return "\n".join(lines) + "\n"
