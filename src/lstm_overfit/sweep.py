"""Stage `sweep`: claim C7, the baseline on ex1-shaped random data of several sizes.

Every size is measured at two budgets: the same number of optimizer steps (a small set gets
many more epochs) and the same number of epochs (a small set gets fewer steps).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from pathlib import Path

from lstm_overfit.cli import run_stage
from lstm_overfit.data import Dataset, dataset_hash, random_split
from lstm_overfit.outputs import atomic_file, write_json
from lstm_overfit.params import SweepParams, load_params
from lstm_overfit.tracking import Tracker, tracked
from lstm_overfit.train import train_and_record
from lstm_overfit.training import ModelSpec, steps_per_epoch


def sweep_datasets(p: SweepParams) -> dict[int, Dataset]:
    """Nested training sets (each size a prefix of the largest) and one shared validation set,
    so that sizes differ in nothing but how much data there is."""
    x, y = random_split(max(p.sizes), p.seq_len, p.features, p.seed)
    x_val, y_val = random_split(p.n_val, p.seq_len, p.features, p.val_seed)
    return {n: Dataset(x[:n], y[:n], x_val, y_val) for n in p.sizes}


def budget_epochs(n: int, p: SweepParams, batch_size: int) -> tuple[int, int]:
    """(epochs that make `p.steps` optimizer steps, `p.epochs`) for a training set of n."""
    return max(1, round(p.steps / steps_per_epoch(n, batch_size))), p.epochs


def sweep_rows(sweep: dict) -> list[dict[str, float]]:
    """Seed-mean train_frac and val_ratio per size at both budgets, for DVC plots."""
    rows = []
    for n, entry in sweep["sizes"].items():
        row: dict[str, float] = {"n_train": int(n)}
        for budget in ("equal_steps", "equal_epochs"):
            c = str(entry[budget])
            for key in ("train_frac", "val_ratio"):
                row[f"{budget}_{key}"] = statistics.fmean(
                    r["checkpoints"][c][key] for r in entry["record"]["runs"])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--plot", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    params = load_params(args.params)
    p = params.sweep
    spec = ModelSpec(p.units, params.model.dropout_rate, params.model.l2)
    tracker = Tracker(params.mlflow.experiment, os.environ)
    tracker.connect()
    sizes = {}
    with tracked(tracker):
        for n, data in sweep_datasets(p).items():
            steps_epoch, epochs_epoch = budget_epochs(n, p, params.base.batch_size)
            checkpoints = tuple(sorted({steps_epoch, epochs_epoch}))
            record, _, _ = train_and_record(
                f"sweep_n{n}", data, spec, params, max(checkpoints), checkpoints, tracker,
                dataset_hash(data), ("baseline",))
            sizes[str(n)] = {"record": record, "equal_steps": steps_epoch,
                             "equal_epochs": epochs_epoch}
        sweep = {"steps": p.steps, "epochs": p.epochs, "sizes": sizes}
        write_json(args.results, sweep)
        rows = sweep_rows(sweep)
        with atomic_file(args.plot) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(run_stage(main))
