"""Stage `diagnose@<name>`: why is *my* LSTM not overfitting? A user's series (prepared by
`prepare_series@<name>`) trained as the baseline, with shuffled training targets, and with
dropout and L2; read against naive forecasts and Ljung-Box; the diagnosis written for
`dvc exp show`, the report and every MLflow run of the series."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.datasets.series import load_prepared, series_spec, shuffled_targets
from lstm_overfit.engine.fast import History, Network, Trainer
from lstm_overfit.infrastructure.outputs import atomic_file, write_json
from lstm_overfit.params import Params, Series, load_params
from lstm_overfit.records import DatasetRecord, write_results
from lstm_overfit.reporting.figures import series_figure
from lstm_overfit.runs import Budget, Group, recording, train_groups
from lstm_overfit.science.diagnosis import VARIANTS, Controls, Result, controls, diagnose, mase


def groups(name: str, spec: Series, data: Dataset, c: Controls, p: Params,
           source: str) -> list[Group]:
    """The four variants of the diagnosis, in VARIANTS order: the real targets' noise floor is
    the linear floor; shuffled targets are all noise (their floor is their variance)."""
    net = Network(spec.units, data.x_train.shape[2])
    shuffled = shuffled_targets(data, p.diagnosis.shuffle_seed)
    common = dict(network=net, seeds=p.base.seeds, epochs=spec.epochs, source=source)
    return [Group(name, data, variant="baseline", noise_var=c.linear_floor, **common),
            Group(name, shuffled, variant="shuffled", **common),
            Group(name, data, variant="dropout", noise_var=c.linear_floor,
                  dropout=p.model.dropout_rate, **common),
            Group(name, data, variant="l2", noise_var=c.linear_floor, l2=p.model.l2, **common)]


def final_mase(histories: list[History], data: Dataset, c: Controls) -> float:
    """Seed mean of the trained models' MASE on the validation windows."""
    x = np.ascontiguousarray(data.x_val, np.float32)
    return float(np.mean([mase(Trainer(h.job, h.weights).predict(x), data.y_val, c)
                          for h in histories]))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="diagnose", description=__doc__)
    ap.add_argument("name")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--diagnosis", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--figure", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    spec = series_spec(p, args.name)
    prepared = load_prepared(args.data)
    data = prepared.dataset
    c = controls(data, prepared.target_train, spec.horizon, p.diagnosis)
    budget = Budget.of(p)
    found: list[Result] = []

    def tag(records: list[DatasetRecord], histories: list[list[History]]) -> dict[str, str]:
        by_variant = {rec.runs[0].variant: rec for rec in records}
        result = diagnose(by_variant, c, p.base.article_epochs, p.memorization, p.diagnosis,
                          p.model.dropout_rate, p.model.l2,
                          final_mase(histories[VARIANTS.index("baseline")], data, c))
        found.append(result)
        return result.tags()

    with recording(p.mlflow.experiment, os.environ, p.engine) as tracker:
        records, _ = train_groups(groups(args.name, spec, data, c, p, str(args.data)), budget,
                                  tracker, f"diagnose {args.name}", "lstm_overfit diagnose", tag)
    result = found[0]
    write_results(args.results, records)
    write_json(args.diagnosis, {"series": args.name, "info": prepared.info,
                                **result.as_json()}, sort_keys=False)
    with atomic_file(args.figure) as tmp:
        series_figure({rec.runs[0].variant: rec for rec in records}, c, args.name,
                      p.base.article_epochs, tmp)
    write_json(args.metrics, {args.name: result.answer})
