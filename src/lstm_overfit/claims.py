"""Stage `claims`: a verdict per claim of the article, computed from measured metrics only.

Each criterion is judged per seed (`supported`, `refuted` or `inconclusive`); the claim's
verdict is the seeds' verdict when they all agree, else `mixed`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from lstm_overfit.cli import run_stage
from lstm_overfit.errors import StageError
from lstm_overfit.outputs import read_json, write_json
from lstm_overfit.params import ClaimParams, load_params

SUPPORTED, REFUTED, INCONCLUSIVE, MIXED = "supported", "refuted", "inconclusive", "mixed"
OUTCOMES = (SUPPORTED, REFUTED, INCONCLUSIVE)
RESULT_DATASETS = ("ex1", "ex2", "ex3", "ex3_seq20", "sine", "sine_small", "stocks")

# The article's own words, for the report.
CLAIM_TEXT = {
    "C1": "Example 1: random data lacks temporal dependencies, which makes it difficult for the "
          "LSTM to overfit; the model learns the mean behavior.",
    "C2": "Example 2: the model's capacity to memorize the training set is limited by the "
          "dropout, and it avoids overfitting.",
    "C3": "Example 3: the sequence length is still small (only 5), which may not allow the LSTM "
          "to truly overfit.",
    "C4": "A simple sinusoid: the model learned the fundamental pattern and failed to capture "
          "the minor random fluctuations.",
    "C4_small": "The same sinusoid with only 50 training windows.",
    "C5": "L2 regularization, which penalizes large weight values, further restricts the "
          "model's tendency to fit noise.",
    "C6": "A very small dataset of stock prices: the model reached a certain training loss and "
          "stayed there; it never overfit.",
    "C7": "If the dataset is too small the model will memorize it; a slightly larger one may "
          "not overfit.",
}
Numbers = dict[str, float]
Judge = Callable[..., tuple[str, Numbers]]


def overfits(m: Numbers, t: ClaimParams) -> bool:
    """Memorized the training targets and is no better than the mean on new data."""
    return m["train_frac"] <= t.overfit_train_frac and m["val_ratio"] >= t.overfit_val_ratio


def judge_c1(m: Numbers, t: ClaimParams) -> str:
    if overfits(m, t):
        return REFUTED
    near_mean = t.c1_min_train_frac <= m["train_frac"] <= t.c1_max_train_frac
    return SUPPORTED if near_mean else INCONCLUSIVE


def judge_regulariser(base: Numbers, variant: Numbers, t: ClaimParams) -> str:
    """C2 and C5: does the regulariser prevent the overfitting the baseline shows?"""
    if not overfits(base, t):
        return INCONCLUSIVE  # nothing to prevent
    return REFUTED if overfits(variant, t) else SUPPORTED


def judge_c3(short: Numbers, long: Numbers, t: ClaimParams) -> str:
    if overfits(short, t):
        return REFUTED
    return SUPPORTED if overfits(long, t) else INCONCLUSIVE


def judge_c4(m: Numbers, t: ClaimParams) -> str:
    """m holds train_mse, val_mse, their ratios to the noise variance and val_rise."""
    if m["train_noise"] >= t.c4_train_floor and m["val_noise"] <= t.c4_val_ceiling:
        return SUPPORTED
    if m["train_noise"] < t.c4_refute_train and m["val_rise"] > t.c4_val_rise:
        return REFUTED
    return INCONCLUSIVE


def judge_c6(m: Numbers, t: ClaimParams) -> str:
    if m["val_ratio"] <= 1.0 and m["loss_improvement"] < t.c6_plateau:
        return SUPPORTED
    if m["val_ratio"] > t.c6_refute_val_ratio and m["train_frac_fall"] > t.c6_plateau:
        return REFUTED
    return INCONCLUSIVE


def judge_c7(small: Numbers, large: Numbers, t: ClaimParams) -> str:
    if overfits(small, t) and not overfits(large, t):
        return SUPPORTED
    if overfits(large, t) and not overfits(small, t):
        return REFUTED
    return INCONCLUSIVE


def combine(per_seed: list[str]) -> str:
    """The seeds' common verdict, or `mixed`."""
    return per_seed[0] if len(set(per_seed)) == 1 else MIXED


def verdict(per_seed: list[tuple[str, Numbers]]) -> dict:
    """{verdict, <seed mean of each number that decided it>, seeds: counts per outcome}."""
    outcomes = [o for o, _ in per_seed]
    counts = Counter(outcomes)
    out: dict = {"verdict": combine(outcomes)}
    for key in per_seed[0][1]:
        out[key] = round(statistics.fmean(n[key] for _, n in per_seed), 4)
    out["seeds"] = {o: counts.get(o, 0) for o in OUTCOMES}
    return out


# --- reading the training records --------------------------------------------------------

def runs_of(record: dict, variant: str) -> dict[int, dict]:
    runs = {r["seed"]: r for r in record["runs"] if r["variant"] == variant}
    if not runs:
        raise StageError(f"results of {record['dataset']} have no {variant} runs "
                         f"(base.variants must include it to judge the claims)")
    return runs


def at(record: dict, run: dict, epoch: int) -> Numbers:
    """train_frac and val_ratio of a run at a checkpoint."""
    key = str(epoch)
    if key not in run["checkpoints"]:
        raise StageError(f"results of {record['dataset']} have no checkpoint at epoch {epoch} "
                         f"(train.{record['dataset']}.checkpoints must include it)")
    c = run["checkpoints"][key]
    return {"train_frac": c["train_frac"], "val_ratio": c["val_ratio"]}


def sine_numbers(record: dict, run: dict, epoch: int) -> Numbers:
    """Train and validation MSE against the noise floor, and how far validation MSE has
    risen above its best measured epoch so far."""
    noise = record["noise_var"]
    ev = run["eval"]
    upto = [v for e, v in zip(ev["epoch"], ev["val_mse"], strict=True) if e <= epoch]
    c = run["checkpoints"][str(epoch)]
    return {"train_noise": c["train_mse"] / noise, "val_noise": c["val_mse"] / noise,
            "val_rise": c["val_mse"] / min(upto) - 1.0}


def stock_numbers(record: dict, run: dict, epoch: int, t: ClaimParams) -> Numbers:
    """val_ratio, the relative fall of the training loss over the last `c6_tail` of the
    epochs, and the relative fall of train_frac over the same stretch."""
    start = max(1, epoch - math.ceil(t.c6_tail * epoch))
    loss = run["loss"]
    ev = run["eval"]
    frac = dict(zip(ev["epoch"], ev["train_mse"], strict=True))
    before = max(e for e in frac if e <= start)
    return {
        "val_ratio": run["checkpoints"][str(epoch)]["val_ratio"],
        "loss_improvement": 1.0 - loss[epoch - 1] / loss[start - 1],
        "train_frac_fall": 1.0 - frac[epoch] / frac[before],
    }


def judge_all(results: dict[str, dict], sweep: dict, t: ClaimParams) -> dict:
    """Every claim at every budget: `article` (claims.article_epoch) and `long` (full run);
    C7 at `equal_steps` and `equal_epochs`."""
    def budgets(name: str) -> dict[str, int]:
        return {"article": t.article_epoch, "long": results[name]["epochs"]}

    def per_seed(name: str, variant: str, epoch: int) -> dict[int, Numbers]:
        rec = results[name]
        return {s: at(rec, r, epoch) for s, r in runs_of(rec, variant).items()}

    out: dict[str, dict] = {}
    out["C1"] = {}
    for b, e in budgets("ex1").items():
        ms = per_seed("ex1", "baseline", e)
        out["C1"][b] = verdict([(judge_c1(m, t), m) for m in ms.values()])
    for claim, variant in (("C2", "dropout"), ("C5", "l2")):
        out[claim] = {}
        for b, e in budgets("ex2").items():
            base, var = per_seed("ex2", "baseline", e), per_seed("ex2", variant, e)
            out[claim][b] = verdict([
                (judge_regulariser(base[s], var[s], t),
                 {"baseline_train_frac": base[s]["train_frac"],
                  "baseline_val_ratio": base[s]["val_ratio"],
                  f"{variant}_train_frac": var[s]["train_frac"],
                  f"{variant}_val_ratio": var[s]["val_ratio"]})
                for s in base if s in var])
    out["C3"] = {}
    for b in ("article", "long"):
        short = per_seed("ex3", "baseline", budgets("ex3")[b])
        long_ = per_seed("ex3_seq20", "baseline", budgets("ex3_seq20")[b])
        out["C3"][b] = verdict([
            (judge_c3(short[s], long_[s], t),
             {"seq5_train_frac": short[s]["train_frac"], "seq5_val_ratio": short[s]["val_ratio"],
              "seq20_train_frac": long_[s]["train_frac"],
              "seq20_val_ratio": long_[s]["val_ratio"]})
            for s in short if s in long_])
    for claim, name in (("C4", "sine"), ("C4_small", "sine_small")):
        rec = results[name]
        out[claim] = {}
        for b, e in budgets(name).items():
            ms = [sine_numbers(rec, r, e) for r in runs_of(rec, "baseline").values()]
            out[claim][b] = verdict([(judge_c4(m, t), m) for m in ms])
    rec = results["stocks"]
    out["C6"] = {}
    for b, e in budgets("stocks").items():
        ms = [stock_numbers(rec, r, e, t) for r in runs_of(rec, "baseline").values()]
        out["C6"][b] = verdict([(judge_c6(m, t), m) for m in ms])
    out["C7"] = judge_sweep(sweep, t)
    return out


def judge_sweep(sweep: dict, t: ClaimParams) -> dict:
    sizes = sorted(sweep["sizes"], key=int)
    small, large = sweep["sizes"][sizes[0]], sweep["sizes"][sizes[-1]]
    out = {}
    for budget in ("equal_steps", "equal_epochs"):
        s_runs = runs_of(small["record"], "baseline")
        l_runs = runs_of(large["record"], "baseline")
        per = []
        for seed in s_runs:
            ms = at(small["record"], s_runs[seed], small[budget])
            ml = at(large["record"], l_runs[seed], large[budget])
            per.append((judge_c7(ms, ml, t),
                        {f"n{sizes[0]}_train_frac": ms["train_frac"],
                         f"n{sizes[0]}_val_ratio": ms["val_ratio"],
                         f"n{sizes[-1]}_train_frac": ml["train_frac"],
                         f"n{sizes[-1]}_val_ratio": ml["val_ratio"]}))
        out[budget] = verdict(per)
    return out


def verdict_table(claims: dict) -> dict[str, dict[str, str]]:
    """Only the verdicts: the compact metric `dvc exp show` puts first."""
    return {claim: {budget: v["verdict"] for budget, v in budgets.items()}
            for claim, budgets in claims.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, required=True, help="folder of results/<name>.json")
    ap.add_argument("--sweep", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--verdicts", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    t = load_params(args.params).claims
    results = {name: read_json(args.results / f"{name}.json") for name in RESULT_DATASETS}
    claims = judge_all(results, read_json(args.sweep), t)
    write_json(args.out, claims, sort_keys=False)
    write_json(args.verdicts, verdict_table(claims), sort_keys=False)


if __name__ == "__main__":
    sys.exit(run_stage(main))
