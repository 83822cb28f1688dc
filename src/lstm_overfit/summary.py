"""Turning training measurements into the stage's records: detail, compact metrics, plots."""

from __future__ import annotations

import statistics

from lstm_overfit.data import Dataset
from lstm_overfit.measure import mean_baseline_mse, target_var, train_frac, val_ratio
from lstm_overfit.training import RunResult

CHECKPOINT_KEYS = ("train_mse", "val_mse", "train_frac", "val_ratio")


def checkpoint_values(result: RunResult, epoch: int, train_var: float, base_val: float
                      ) -> dict[str, float]:
    """The four measurements of one run at one checkpoint epoch."""
    i = result.eval_epochs.index(epoch)
    t, v = result.train_mse[i], result.val_mse[i]
    return {"train_mse": t, "val_mse": v, "train_frac": train_frac(t, train_var),
            "val_ratio": val_ratio(v, base_val)}


def results_record(name: str, data: Dataset, results: list[RunResult], epochs: int,
                   checkpoints: tuple[int, ...], batch_size: int, steps_per_epoch: int) -> dict:
    """Everything measured for one dataset, per run: the input of the claims stage."""
    train_var = target_var(data.y_train)
    base_val = mean_baseline_mse(data.y_train, data.y_val)
    return {
        "dataset": name,
        "n_train": len(data.x_train),
        "n_val": len(data.x_val),
        "epochs": epochs,
        "checkpoints": list(checkpoints),
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "train_var": train_var,
        "baseline_val_mse": base_val,
        "noise_var": data.noise_var,
        "runs": [
            {
                "variant": r.run.variant,
                "seed": r.run.seed,
                "loss": list(r.loss),
                "eval": {"epoch": list(r.eval_epochs), "train_mse": list(r.train_mse),
                         "val_mse": list(r.val_mse)},
                "checkpoints": {str(c): checkpoint_values(r, c, train_var, base_val)
                                for c in checkpoints},
            }
            for r in results
        ],
    }


def checkpoint_label(epoch: int, epochs: int) -> str:
    return "final" if epoch == epochs else f"at{epoch}"


def compact_metrics(record: dict) -> dict:
    """Seed means of train_frac and val_ratio per variant and checkpoint, for `dvc exp show`."""
    out: dict[str, dict] = {}
    for run in record["runs"]:
        per_variant = out.setdefault(run["variant"], {})
        for c, values in run["checkpoints"].items():
            label = checkpoint_label(int(c), record["epochs"])
            slot = per_variant.setdefault(label, {"train_frac": [], "val_ratio": []})
            for key in slot:
                slot[key].append(values[key])
    return {variant: {label: {k: round(statistics.fmean(v), 4) for k, v in slot.items()}
                      for label, slot in labels.items()}
            for variant, labels in out.items()}


def curve_rows(record: dict, variant: str) -> list[dict[str, float]]:
    """Seed-mean learning curve of one variant at the measured epochs, for DVC plots."""
    runs = [r for r in record["runs"] if r["variant"] == variant]
    rows = []
    for i, epoch in enumerate(runs[0]["eval"]["epoch"]):
        rows.append({
            "epoch": epoch,
            "step": epoch * record["steps_per_epoch"],
            "train_loss": statistics.fmean(r["loss"][epoch - 1] for r in runs),
            "train_mse": statistics.fmean(r["eval"]["train_mse"][i] for r in runs),
            "val_mse": statistics.fmean(r["eval"]["val_mse"][i] for r in runs),
            "train_frac": statistics.fmean(r["eval"]["train_mse"][i] for r in runs)
            / record["train_var"],
        })
    return rows
