"""The results record: what the training stages write and the claims, report and figures read.

One declared type for the writer, every reader and the tests' fixtures. A results file holds
one or more DatasetRecords; the records of one dataset written by several stages (baseline,
dropout, regularizer curves) merge into one when read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.outputs import write_json


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunRecord(Record):
    """One run. `loss[e - 1]` is epoch e's training-mode loss (without the L2 penalty);
    `train_error`/`val_error` are inference-mode MSE (regression) or binary cross-entropy
    (classification) at `epochs`; accuracies for a classifier only."""

    variant: str
    seed: int
    dropout: float
    l2: float
    loss: tuple[float, ...]
    epochs: tuple[int, ...]
    train_error: tuple[float, ...]
    val_error: tuple[float, ...]
    train_acc: tuple[float, ...] | None = None
    val_acc: tuple[float, ...] | None = None
    stopped_early: bool

    @model_validator(mode="after")
    def _aligned(self) -> RunRecord:
        n = len(self.epochs)
        if len(self.train_error) != n or len(self.val_error) != n or not n:
            raise ValueError("every measured epoch needs a training and a validation error")
        if self.epochs[-1] != len(self.loss):
            raise ValueError("the last measured epoch must be the last epoch trained")
        return self


    def truncated(self, epoch: int) -> RunRecord:
        """The run as it stood after `epoch` epochs (a measured one), as if it had stopped
        there: epoch 50 of a long run is a 50-epoch run."""
        if epoch >= len(self.loss):
            return self
        keep = sum(e <= epoch for e in self.epochs)
        if self.epochs[keep - 1] != epoch:
            raise ValueError(f"epoch {epoch} was not measured")

        def cut(values: tuple | None) -> tuple | None:
            return None if values is None else values[:keep]

        return self.model_copy(update={
            "loss": self.loss[:epoch], "epochs": self.epochs[:keep],
            "train_error": self.train_error[:keep], "val_error": self.val_error[:keep],
            "train_acc": cut(self.train_acc), "val_acc": cut(self.val_acc),
            "stopped_early": False})


class DatasetRecord(Record):
    """Every run of one dataset, with what is needed to read them. `baseline_val_error` is
    the validation error of predicting the training targets' mean (or positive rate);
    `noise_var` the generator's noise variance where it is known."""

    dataset: str
    task: Literal["regression", "classification"]
    n_train: int
    n_val: int
    seq_len: int
    features: int
    units: int
    vocab: int
    weight_count: int
    batch_size: int
    steps_per_epoch: int
    epochs: int
    train_var: float
    baseline_val_error: float
    noise_var: float | None
    data_sha256: str
    runs: tuple[RunRecord, ...]

    @property
    def noise_floor(self) -> float:
        """The training MSE of a model that fits the signal and none of the noise: the noise
        variance where known, else the target variance (random targets are all noise)."""
        return self.noise_var if self.noise_var is not None else self.train_var

    def select(self, variant: str | None = None, dropout: float | None = None,
               l2: float | None = None) -> list[RunRecord]:
        """The runs matching every given field, in seed order."""
        runs = [r for r in self.runs
                if (variant is None or r.variant == variant)
                and (dropout is None or r.dropout == dropout)
                and (l2 is None or r.l2 == l2)]
        return sorted(runs, key=lambda r: r.seed)


class ResultsFile(Record):
    records: tuple[DatasetRecord, ...]


def write_results(path: Path, records: list[DatasetRecord]) -> None:
    write_json(path, ResultsFile(records=tuple(records)).model_dump(mode="json"))


def read_results(path: Path) -> list[DatasetRecord]:
    with open(path, encoding="utf-8") as f:
        return list(ResultsFile.model_validate(json.load(f)).records)


def merge(records: list[DatasetRecord]) -> dict[str, DatasetRecord]:
    """One record per dataset with the runs of all; the rest of the records must agree."""
    out: dict[str, DatasetRecord] = {}
    for rec in records:
        have = out.get(rec.dataset)
        if have is None:
            out[rec.dataset] = rec
            continue
        if have.model_dump(exclude={"runs"}) != rec.model_dump(exclude={"runs"}):
            raise StageError(f"results of {rec.dataset} disagree on their setting "
                             "(different data or budget): rerun the stale stage")
        out[rec.dataset] = have.model_copy(update={"runs": have.runs + rec.runs})
    return out


def load_results(folder: Path) -> dict[str, DatasetRecord]:
    """Every results file under `folder`, merged by dataset."""
    files = sorted(folder.rglob("*.json"))
    if not files:
        raise StageError(f"{folder} holds no results: run the training stages first")
    return merge([rec for f in files for rec in read_results(f)])
