"""Stage `curve@<kind>-<dataset>`: one regularizer at every strength of its grid (claims C2,
C5). Strength 0 is the baseline, which `train_baseline@<dataset>` trains."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lstm_overfit.datasets.arrays import load_dataset
from lstm_overfit.infrastructure.outputs import write_json
from lstm_overfit.params import REGULARIZED, load_params
from lstm_overfit.records import merge, write_results
from lstm_overfit.reporting.summary import stage_metrics
from lstm_overfit.runs import Budget, Group, network, recording, train_groups


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="curve", description=__doc__)
    ap.add_argument("kind", choices=REGULARIZED)
    ap.add_argument("dataset")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    data = load_dataset(args.data)
    grid = p.curves.dropout if args.kind == "dropout" else p.curves.l2
    groups = [Group(args.dataset, data, network(p.train[args.dataset], data), args.kind,
                    p.base.seeds, p.train[args.dataset].epochs, str(args.data), data.noise_var,
                    **{args.kind: strength})
              for strength in grid if strength > 0]
    with recording(p.mlflow.experiment, os.environ, p.engine) as tracker:
        records, _ = train_groups(groups, Budget.of(p), tracker,
                                  f"curve {args.kind} {args.dataset}", "lstm_overfit curve")
        write_results(args.results, records)
        merged = merge(records)[args.dataset]
        write_json(args.metrics, stage_metrics(merged, p.memorization, p.base.article_epochs))
