"""Stage `sweep`: claim C7, the baseline on ex1-shaped random data of several sizes, each
trained until it memorizes or reaches `sweep.max_steps` optimizer steps."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.datasets.synthetic import random_split
from lstm_overfit.engine.fast import Network, steps_per_epoch
from lstm_overfit.infrastructure.outputs import write_csv, write_json
from lstm_overfit.params import Sweep, load_params
from lstm_overfit.records import write_results
from lstm_overfit.reporting.summary import SWEEP_COLUMNS, sweep_metrics, sweep_rows
from lstm_overfit.runs import Budget, Group, recording, train_groups


def sweep_datasets(p: Sweep) -> dict[int, Dataset]:
    """Nested training sets (each size a prefix of the largest) and one shared validation set,
    so that sizes differ in nothing but how much data there is."""
    x, y = random_split(max(p.sizes), p.seq_len, p.features, p.seed)
    x_val, y_val = random_split(p.n_val, p.seq_len, p.features, p.val_seed)
    return {n: Dataset(x[:n], y[:n], x_val, y_val) for n in p.sizes}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="sweep", description=__doc__)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--plot", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    w, batch = p.sweep, p.base.batch_size
    groups = [Group(f"sweep_n{n}", data, Network(w.units, w.features), "baseline", p.base.seeds,
                    math.ceil(w.max_steps / steps_per_epoch(n, batch)), f"sweep n={n}")
              for n, data in sweep_datasets(w).items()]
    with recording(p.mlflow.experiment, os.environ, p.engine) as tracker:
        records, _ = train_groups(groups, Budget.of(p), tracker, "sweep", "lstm_overfit sweep")
        write_results(args.results, records)
        write_json(args.metrics, sweep_metrics(records, p.memorization))
        write_csv(args.plot, sweep_rows(records, p.memorization), SWEEP_COLUMNS)
