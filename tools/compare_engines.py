"""Two projects' verdicts and memorization epochs side by side, as Markdown: what the README's
cross-check of the fast and the Keras engine is made of.

    python tools/compare_engines.py A B [--names fast keras]

A and B are checkouts of the project after `dvc repro` (B, say, a clone after `dvc exp run -S
engine=keras`). Both sets of results are judged with B's params, so a grid that B trained
smaller (`curves.dropout`, `sweep.sizes`) reads the same settings from A's larger one; a
claim's verdict comes from the claims catalogue, as in the claims stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.params import load_params
from lstm_overfit.records import load_results
from lstm_overfit.science.catalogue import CLAIMS, headline
from lstm_overfit.science.measure import classifier_process, process, spread


def memorization_rows(results: dict, p) -> dict[str, str]:
    """Per dataset and variant: the epoch each seed memorized (seed mean +- spread, and how
    many did), or a classifier's best and final validation loss."""
    out = {}
    for name, rec in sorted(results.items()):
        groups: dict[str, list] = {}
        for run in rec.runs:
            strength = run.dropout or run.l2
            label = run.variant + (f" {strength:g}" if run.variant != "baseline" else "")
            groups.setdefault(label, []).append(run)
        for label, runs in sorted(groups.items(), key=lambda kv: kv[0] != "baseline"):
            if rec.task == "classification":
                procs = [classifier_process(r, p.claims.val_rise) for r in runs]
                best = spread(c.best.val_loss for c in procs)
                final = spread(c.final.val_loss for c in procs)
                out[f"{name} {label}"] = (f"val. loss best {best[0]:.3f} ± {best[1]:.3f}, "
                                          f"final {final[0]:.3f} ± {final[1]:.3f}")
                continue
            epochs = [process(rec, r, p.memorization).memorized_epoch for r in runs]
            done = [e for e in epochs if e is not None]
            if not done:
                out[f"{name} {label}"] = f"not within {rec.epochs} (0/{len(runs)})"
                continue
            mean, std = spread(done)
            out[f"{name} {label}"] = f"{mean:.0f} ± {std:.0f} ({len(done)}/{len(runs)})"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--names", nargs=2, default=("fast", "keras"))
    args = ap.parse_args()
    p = load_params(args.b / "params.yaml")
    results = [load_results(root / "results") for root in (args.a, args.b)]
    na, nb = args.names
    print(f"| claim | {na} | {nb} | parts ({na} / {nb}) |\n|---|---|---|---|")
    for claim in CLAIMS:
        ds = [claim.judge(r, p) for r in results]
        parts = "; ".join(f"{k}: {ds[0][k].verdict} / {ds[1][k].verdict}" for k in ds[0])
        print(f"| {claim.id} | {headline(claim, ds[0])} | {headline(claim, ds[1])} | {parts} |")
    rows = [memorization_rows(r, p) for r in results]
    print(f"\n| runs | memorized at epoch, {na} | {nb} |\n|---|---|---|")
    for key in rows[1]:
        if key in rows[0]:
            print(f"| {key} | {rows[0][key]} | {rows[1][key]} |")


if __name__ == "__main__":
    main()
