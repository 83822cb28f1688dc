"""Stage `train@<dataset>`: every variant x seed on one dataset, measured and recorded."""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
from pathlib import Path

from lstm_overfit.cli import run_stage
from lstm_overfit.data import Dataset, dataset_hash, load_dataset
from lstm_overfit.errors import StageError
from lstm_overfit.figures import learning_curve
from lstm_overfit.outputs import atomic_dir, write_json
from lstm_overfit.params import Params, load_params
from lstm_overfit.summary import CHECKPOINT_KEYS, compact_metrics, curve_rows, results_record
from lstm_overfit.tracking import RunGroup, Tracker, tracked
from lstm_overfit.training import (
    ModelSpec,
    RunSpec,
    branch_model,
    steps_per_epoch,
    train_runs,
)


def run_params(name: str, data: Dataset, spec: ModelSpec, variant: str, epochs: int,
               checkpoints: tuple[int, ...], batch_size: int) -> dict[str, object]:
    """What shaped a run, as MLflow params."""
    out: dict[str, object] = {
        "dataset": name, "n_train": len(data.x_train), "n_val": len(data.x_val),
        "seq_len": data.x_train.shape[1], "features": data.x_train.shape[2],
        "units": spec.units, "variant": variant, "epochs": epochs,
        "checkpoints": ",".join(map(str, checkpoints)), "batch_size": batch_size,
        "optimizer": "adam", "loss": "mse",
    }
    if variant == "dropout":
        out["dropout_rate"] = spec.dropout_rate
    if variant == "l2":
        out["l2"] = spec.l2
    return out


def _series(run: dict, train_var: float, base_val: float) -> dict[str, list[tuple[int, float]]]:
    ev = run["eval"]
    return {
        "train_loss": list(enumerate(run["loss"], start=1)),
        "train_mse": list(zip(ev["epoch"], ev["train_mse"], strict=True)),
        "val_mse": list(zip(ev["epoch"], ev["val_mse"], strict=True)),
        "train_frac": [(e, t / train_var) for e, t in zip(ev["epoch"], ev["train_mse"], strict=True)],
        "val_ratio": [(e, v / base_val) for e, v in zip(ev["epoch"], ev["val_mse"], strict=True)],
    }


def _seed_spread(runs: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Mean and spread across seeds of each checkpoint measurement, step = checkpoint."""
    out: dict[str, list[tuple[int, float]]] = {}
    for c in runs[0]["checkpoints"]:
        for key in CHECKPOINT_KEYS:
            values = [r["checkpoints"][c][key] for r in runs]
            out.setdefault(f"{key}_mean", []).append((int(c), statistics.fmean(values)))
            spread = statistics.pstdev(values) if len(values) > 1 else 0.0
            out.setdefault(f"{key}_std", []).append((int(c), spread))
    return out


def record_in_mlflow(tracker: Tracker, groups: dict[str, RunGroup], record: dict, model,
                     runs: list[RunSpec], params_of: dict[str, dict[str, object]],
                     example) -> None:
    """Per seed: params, curves, checkpoint values, a figure and the model; per variant: the
    seed spread and a figure of all seeds."""
    with tempfile.TemporaryDirectory() as tmp:
        for variant, group in groups.items():
            v_runs = [r for r in record["runs"] if r["variant"] == variant]
            for run in v_runs:
                fig = Path(tmp) / f"learning_curve_{variant}_seed{run['seed']}.png"
                learning_curve(record, [run], f"{record['dataset']} {variant} seed {run['seed']}",
                               fig)
                child = group.children[run["seed"]]
                tracker.log(child, params={**params_of[variant], "seed": run["seed"]},
                            series=_series(run, record["train_var"], record["baseline_val_mse"]),
                            artifacts=[fig])
                index = runs.index(RunSpec(variant, run["seed"]))
                tracker.log_keras_model(child, branch_model(model, index), example)
            fig = Path(tmp) / f"learning_curve_{variant}.png"
            learning_curve(record, v_runs, f"{record['dataset']} {variant}", fig)
            tracker.log(group.parent, params={**params_of[variant], "seeds": len(v_runs)},
                        series=_seed_spread(v_runs), artifacts=[fig])


def write_plots(record: dict, variants: tuple[str, ...], folder: Path) -> None:
    """One CSV per variant: seed-mean train loss and train/validation MSE per measured epoch."""
    with atomic_dir(folder) as tmp:
        for variant in variants:
            rows = curve_rows(record, variant)
            with open(tmp / f"{variant}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)


def save_models(model, runs: list[RunSpec], folder: Path) -> None:
    """Each run's trained weights (`.weights.h5`, byte-reproducible; `.keras` files carry a
    save date). `training.build_model` with the same RunSpec rebuilds the architecture."""
    with atomic_dir(folder) as tmp:
        for i, run in enumerate(runs):
            branch_model(model, i).save_weights(tmp / f"{run.name}.weights.h5")


def train_and_record(name: str, data: Dataset, spec: ModelSpec, params: Params, epochs: int,
                     checkpoints: tuple[int, ...], tracker: Tracker, data_hash: str,
                     variants: tuple[str, ...]) -> tuple[dict, object, list[RunSpec]]:
    """Train all variant x seed runs of one dataset inside their MLflow runs."""
    seeds = list(params.base.seeds)
    runs = [RunSpec(v, s) for v in variants for s in seeds]
    params_of = {v: run_params(name, data, spec, v, epochs, checkpoints, params.base.batch_size)
                 for v in variants}
    groups = {v: tracker.start(f"{name}/{v}", seeds,
                               {"dataset": name, "variant": v, "data_sha256": data_hash})
              for v in variants}
    results, model = train_runs(data, spec, runs, epochs, checkpoints, params.base.batch_size)
    record = results_record(name, data, results, epochs, checkpoints, params.base.batch_size,
                            steps_per_epoch(len(data.x_train), params.base.batch_size))
    record_in_mlflow(tracker, groups, record, model, runs, params_of, data.x_val[:2])
    return record, model, runs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dataset")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, required=True)
    ap.add_argument("--plots", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)

    params = load_params(args.params)
    if args.dataset not in params.train:
        raise StageError(f"params.yaml: train.{args.dataset} is missing")
    tp = params.train[args.dataset]
    data = load_dataset(args.data)
    spec = ModelSpec(tp.units, params.model.dropout_rate, params.model.l2)
    tracker = Tracker(params.mlflow.experiment, os.environ)
    tracker.connect()
    with tracked(tracker):
        record, model, runs = train_and_record(
            args.dataset, data, spec, params, tp.epochs, tp.checkpoints, tracker,
            dataset_hash(data), params.base.variants)
        write_json(args.results, record)
        write_json(args.metrics, compact_metrics(record))
        write_plots(record, params.base.variants, args.plots)
        save_models(model, runs, args.models)


if __name__ == "__main__":
    sys.exit(run_stage(main))
