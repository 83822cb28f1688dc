"""Stage `train_<variant>@<dataset>`: every seed of one model variant on one dataset."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lstm_overfit.datasets.arrays import load_dataset
from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.outputs import write_csv, write_json
from lstm_overfit.params import REGULARIZED, load_params
from lstm_overfit.records import write_results
from lstm_overfit.reporting.summary import curve_rows, stage_metrics
from lstm_overfit.runs import Budget, Group, network, recording, save_models, train_groups


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="train", description=__doc__)
    ap.add_argument("dataset")
    ap.add_argument("variant", choices=("baseline", *REGULARIZED))
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--plots", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    if args.dataset not in p.train:
        raise StageError(f"params.yaml: train.{args.dataset} is missing")
    data = load_dataset(args.data)
    group = Group(args.dataset, data, network(p.train[args.dataset], data), args.variant,
                  p.base.seeds, p.train[args.dataset].epochs, str(args.data), data.noise_var,
                  dropout=p.model.dropout_rate if args.variant == "dropout" else 0.0,
                  l2=p.model.l2 if args.variant == "l2" else 0.0)
    budget = Budget.of(p)
    with recording(p.mlflow.experiment, os.environ, p.engine) as tracker:
        records, histories = train_groups([group], budget, tracker, f"train {group.label}",
                                          "lstm_overfit train")
        rec = records[0]
        write_results(args.results, records)
        write_json(args.metrics, stage_metrics(rec, p.memorization, p.base.article_epochs))
        write_csv(args.plots, curve_rows(rec, list(rec.runs)))
        save_models([group], histories, args.models, tracker.calls)
