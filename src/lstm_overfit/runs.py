"""The runs library: train groups of runs with the engine and record them.

A group is one dataset and one variant at one strength, trained once per seed; MLflow shows it
as a parent run with a child run per seed. `train_groups` trains every group of a stage at
once (so the cores stay busy), shows live progress, streams metric histories to MLflow while
training runs (children: every measurement; parents: seed mean and spread), and returns the
results records. `save_models` writes each run's Keras model.

MLflow (~3 s to import and open its store) and Keras (TensorFlow, ~4 s, needed only to save and
log the trained models) load in a side process (`recording`) while the stage trains: with the
fast engine the training process imports neither.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_overfit.datasets.arrays import Dataset, dataset_hash
from lstm_overfit.engine.cluster import trainer
from lstm_overfit.engine.fast import (
    Event,
    History,
    Job,
    Network,
    RunSpec,
    Schedule,
    steps_per_epoch,
)
from lstm_overfit.engine.keras_fit import article_model, weight_names
from lstm_overfit.infrastructure.outputs import atomic_dir
from lstm_overfit.infrastructure.progress import Plan, Progress
from lstm_overfit.infrastructure.runtime import import_keras
from lstm_overfit.infrastructure.sidecar import Calls, Inline, sidecar, warm_up
from lstm_overfit.infrastructure.tracking import (
    DataInput,
    LiveLog,
    RemoteTracker,
    RunGroup,
    tracked,
    warm_mlflow_keras,
)
from lstm_overfit.params import Memorization, Params, Train
from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.reporting.figures import learning_curve
from lstm_overfit.reporting.summary import group_label, run_numbers
from lstm_overfit.science.measure import (
    eval_epochs,
    mean_baseline_bce,
    mean_baseline_mse,
    spread,
    stop_threshold,
    target_var,
)


@dataclass(frozen=True)
class Budget:
    """What every training stage shares: batch size, the article's epochs (measured in every
    run, none stops before), and the memorization rule (when to stop, how to measure)."""

    batch_size: int
    article_epochs: int
    memorization: Memorization
    engine: str = "fast"  # or "keras": plain keras.Model.fit (engine/keras_fit.py)

    @classmethod
    def of(cls, p: Params) -> Budget:
        return cls(p.base.batch_size, p.base.article_epochs, p.memorization, p.engine)


def network(t: Train, data: Dataset) -> Network:
    """The article's model for a dataset: a text classifier on token ids (Embedding of
    `t.embed_dim`), else a regressor on the data's features."""
    if data.vocab:
        return Network(t.units, t.embed_dim or 0, "classification", data.vocab)
    return Network(t.units, data.x_train.shape[2])


@dataclass(frozen=True)
class Group:
    """One dataset, one variant at one strength, once per seed. `source` says where the
    data came from (MLflow's dataset source)."""

    name: str
    data: Dataset
    network: Network
    variant: str
    seeds: tuple[int, ...]
    epochs: int
    source: str
    noise_var: float | None = None
    dropout: float = 0.0
    l2: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.name}/{group_label(self.runs()[0])}"

    def runs(self) -> list[RunSpec]:
        return [RunSpec(self.variant, s, self.dropout, self.l2) for s in self.seeds]

    def train_var(self) -> float:
        return target_var(self.data.y_train)

    def noise_floor(self) -> float:
        return self.noise_var if self.noise_var is not None else self.train_var()

    def schedule(self, budget: Budget) -> Schedule:
        m = budget.memorization
        stop = (stop_threshold(self.noise_floor(), m)
                if self.network.task == "regression" else None)
        return Schedule(self.epochs, eval_epochs(self.epochs, budget.article_epochs, m),
                        min(budget.article_epochs, self.epochs), stop)


@contextlib.contextmanager
def recording(experiment: str, env: Mapping[str, str], engine: str) -> Iterator[RemoteTracker]:
    """The stage's MLflow runs, recorded (and its models saved) in a side process, on the core
    the stage's start-up leaves idle; in this process for the Keras engine, which has Keras
    loaded anyway. The runs end FINISHED, or FAILED or KILLED as `tracked` says."""
    with contextlib.ExitStack() as stack:
        side = Inline() if engine == "keras" else stack.enter_context(sidecar())
        tracker = RemoteTracker(experiment, env, side)
        tracker.connect()
        with tracked(tracker):
            yield tracker


def run_params(g: Group, budget: Budget) -> dict[str, object]:
    """What shaped a run, as MLflow params."""
    x = g.data.x_train
    out: dict[str, object] = {
        "dataset": g.name, "n_train": len(x), "n_val": len(g.data.x_val), "seq_len": x.shape[1],
        "features": g.network.features, "units": g.network.units, "variant": g.variant,
        "max_epochs": g.epochs, "batch_size": budget.batch_size, "optimizer": "adam",
        "loss": "binary_crossentropy" if g.network.task == "classification" else "mse",
        "stop_frac": budget.memorization.stop_frac, "engine": budget.engine,
    }
    if g.network.vocab:
        out["vocab"] = g.network.vocab
    if g.variant == "dropout":
        out["dropout_rate"] = g.dropout
    if g.variant == "l2":
        out["l2"] = g.l2
    return out


def data_inputs(g: Group, digest: str) -> list[DataInput]:
    """The training and validation sets, as MLflow's Dataset column names them."""
    return [DataInput(ctx, f"{g.name}-{ctx}", x, y, g.source, digest[:16])
            for ctx, x, y in (("training", g.data.x_train, g.data.y_train),
                              ("validation", g.data.x_val, g.data.y_val))]


def job_groups(groups: list[Group]) -> list[int]:
    """The group of each job, in the order `train_groups` makes them: a group's seeds in turn."""
    return [gi for gi, g in enumerate(groups) for _ in g.seeds]


class LiveRecorder:
    """The engine's `on_event`: progress on the terminal and metric points into MLflow.

    A child gets its training loss at every epoch and its measurements at every measured
    epoch; a parent gets the seed mean and spread of each measurement once every seed has
    passed that epoch (a seed that stopped, having memorized, counts with its last value)."""

    def __init__(self, groups: list[Group], jobs: list[Job], mlflow: list[RunGroup],
                 live: LiveLog, progress: Progress) -> None:
        self.groups, self.jobs, self.mlflow = groups, jobs, mlflow
        self.live, self.progress = live, progress
        self.group_of = job_groups(groups)
        self.seen: dict[int, dict[int, list[tuple[int, dict[str, float]]]]] = {
            gi: {s: [] for s in g.seeds} for gi, g in enumerate(groups)}
        self.finished: dict[int, set[int]] = {gi: set() for gi in range(len(groups))}
        self.emitted: dict[int, int] = dict.fromkeys(range(len(groups)), 0)
        self.latest: dict[str, float] = {}
        self.scale = [(g.train_var(), _baseline_error(g), g.noise_floor()) for g in groups]

    def values(self, gi: int, ev: Event) -> dict[str, float]:
        m = ev.measurement
        assert m is not None
        if self.groups[gi].network.task == "classification":
            return {"train_bce": m.train_error, "val_bce": m.val_error,
                    "train_acc": m.train_acc or 0.0, "val_acc": m.val_acc or 0.0}
        var, base, floor = self.scale[gi]
        return {"train_mse": m.train_error, "val_mse": m.val_error,
                "train_frac": m.train_error / var, "val_ratio": m.val_error / base,
                "noise_frac": m.train_error / floor, "gap": m.val_error - m.train_error}

    def __call__(self, ev: Event) -> None:
        job = self.jobs[ev.index]
        gi = self.group_of[ev.index]
        seed, group = job.run.seed, self.mlflow[gi]
        first = ev.epoch - len(ev.losses) + 1
        series: dict[str, list[tuple[int, float]]] = {
            "fit_loss": list(zip(range(first, ev.epoch + 1), ev.losses, strict=True))}
        if ev.measurement is not None:
            vals = self.values(gi, ev)
            self.seen[gi][seed].append((ev.epoch, vals))
            for key, v in vals.items():
                series[key] = [(ev.epoch, v)]
        if ev.done:
            self.finished[gi].add(seed)
        self.live.add(group.children[seed], series)
        self._parent(gi)
        self.live.flush()
        self.progress.update(ev.index, ev.epoch, ev.done, self.latest,
                             ev.measurement.train_error if ev.measurement else None)

    def _parent(self, gi: int) -> None:
        seen, done = self.seen[gi], self.finished[gi]
        epochs = sorted({e for runs in seen.values() for e, _ in runs})
        series: dict[str, list[tuple[int, float]]] = {}
        for e in epochs:
            if e <= self.emitted[gi]:
                continue
            rows = []
            for s, runs in seen.items():
                at = [v for ep, v in runs if ep <= e]
                reached = runs and runs[-1][0] >= e
                if not (reached or (s in done and at)):
                    return self._send(gi, series)
                rows.append(next(v for ep, v in reversed(runs) if ep <= e))
            for key in rows[0]:
                mean, std = spread(r[key] for r in rows)
                series.setdefault(f"{key}_mean", []).append((e, mean))
                series.setdefault(f"{key}_std", []).append((e, std))
            self.emitted[gi] = e
            frac = "train_frac_mean" if "train_frac_mean" in series else "val_bce_mean"
            self.latest[self.groups[gi].label.split("/", 1)[1]] = series[frac][-1][1]
        self._send(gi, series)

    def _send(self, gi: int, series: dict[str, list[tuple[int, float]]]) -> None:
        if series:
            self.live.add(self.mlflow[gi].parent, series)


def _baseline_error(g: Group) -> float:
    if g.network.task == "classification":
        return mean_baseline_bce(g.data.y_train, g.data.y_val)
    return mean_baseline_mse(g.data.y_train, g.data.y_val)


def record(g: Group, histories: list[History], budget: Budget, digest: str) -> DatasetRecord:
    """The results record of one group's runs."""
    x = g.data.x_train
    runs = []
    for h in histories:
        ms = h.measurements
        classifier = g.network.task == "classification"
        runs.append(RunRecord(
            variant=g.variant, seed=h.job.run.seed, dropout=g.dropout, l2=g.l2,
            loss=tuple(h.loss), epochs=tuple(m.epoch for m in ms),
            train_error=tuple(m.train_error for m in ms), val_error=tuple(m.val_error for m in ms),
            train_acc=tuple(m.train_acc for m in ms) if classifier else None,
            val_acc=tuple(m.val_acc for m in ms) if classifier else None,
            stopped_early=h.stopped_early))
    return DatasetRecord(
        dataset=g.name, task=g.network.task, n_train=len(x), n_val=len(g.data.x_val),
        seq_len=x.shape[1], features=g.network.features, units=g.network.units,
        vocab=g.network.vocab, weight_count=g.network.weight_count(),
        batch_size=budget.batch_size, steps_per_epoch=steps_per_epoch(len(x), budget.batch_size),
        epochs=g.epochs, train_var=g.train_var(), baseline_val_error=_baseline_error(g),
        noise_var=g.noise_var, data_sha256=digest, runs=tuple(runs))


Tagger = Callable[[list[DatasetRecord], list[list[History]]], Mapping[str, str]]


def train_groups(groups: list[Group], budget: Budget, tracker: RemoteTracker, label: str,
                 entry_point: str, tagger: Tagger | None = None
                 ) -> tuple[list[DatasetRecord], list[list[History]]]:
    """Train every group's runs at once, inside their MLflow runs (`recording`); return one
    results record per group and the runs' histories (with their trained weights), group by
    group. `tagger` reads all of them and returns tags for every run of the stage (a verdict
    read from the runs together, such as a diagnosis)."""
    train = trainer(budget.engine)  # a cluster that does not answer fails here, before any run
    side = tracker.calls
    digests = [dataset_hash(g.data) for g in groups]
    mlflow_groups = []
    for g, digest in zip(groups, digests, strict=True):
        rg = tracker.start(g.label, list(g.seeds),
                           {"dataset": g.name, "variant": g.variant, "data_sha256": digest},
                           entry_point=entry_point)
        params = run_params(g, budget)
        tracker.log(rg.parent, params={**params, "seeds": ",".join(map(str, g.seeds))})
        for seed, child in rg.children.items():
            tracker.log(child, params={**params, "seed": seed})
        tracker.log_datasets([rg.parent, *rg.children.values()], data_inputs(g, digest))
        mlflow_groups.append(rg)
    # Once the runs exist: Keras loads while they train, for their models as they finish.
    side.submit(warm_up, import_keras)
    side.submit(warm_up, warm_mlflow_keras)
    jobs = [Job(g.label, g.data, g.network, run, g.schedule(budget), budget.batch_size)
            for g in groups for run in g.runs()]
    live = LiveLog(tracker)
    progress = Progress(label, [Plan(j.schedule.epochs, j.schedule.min_epochs, j.schedule.stop_below,
                                     j.flops_per_epoch()) for j in jobs])
    with tempfile.TemporaryDirectory() as tmp:
        finisher = Finisher(groups, digests, mlflow_groups, tracker, budget, Path(tmp))
        recorder = LiveRecorder(groups, jobs, mlflow_groups, live, progress)

        def on_event(ev: Event) -> None:
            recorder(ev)
            finisher(ev)

        start = time.monotonic()
        histories = train(jobs, on_event)
        # How long the stage's runs trained together (wall, initial weights included):
        # MLflow's run duration also counts imports and logging.
        seconds = time.monotonic() - start
        live.flush(force=True)
        records, by_group = finisher.finish(histories)
        for rg in mlflow_groups:
            tracker.log(rg.parent, values={"train_seconds": seconds})
        # Every run recorded and every model logged (the figures read), or the first failure.
        side.drain()
    if tagger is not None:
        tags = dict(tagger(records, by_group))
        for rg in mlflow_groups:
            for run_id in (rg.parent, *rg.children.values()):
                tracker.set_tags(run_id, tags)
    return records, by_group


class Finisher:
    """The engine's `on_event` for finished runs: a run's model is logged as soon as the run
    ends, and a group's numbers and figure as soon as its last seed has, while other runs
    still train, so that little is left to do once training ends. `finish` records what
    training did not (Keras' engine sends no finished runs) and returns every group's record
    and histories."""

    def __init__(self, groups: list[Group], digests: list[str], mlflow: list[RunGroup],
                 tracker: RemoteTracker, budget: Budget, folder: Path) -> None:
        self.groups, self.digests, self.mlflow = groups, digests, mlflow
        self.tracker, self.budget, self.folder = tracker, budget, folder
        self.group_of = job_groups(groups)
        self.histories: dict[int, History] = {}
        self.records: dict[int, DatasetRecord] = {}

    def __call__(self, ev: Event) -> None:
        if ev.history is not None:
            self._finished(ev.index, ev.history)

    def finish(self, histories: list[History]
               ) -> tuple[list[DatasetRecord], list[list[History]]]:
        for index, h in enumerate(histories):
            if index not in self.histories:
                self._finished(index, h)
        groups = range(len(self.groups))
        return [self.records[gi] for gi in groups], [self._histories(gi) for gi in groups]

    def _histories(self, gi: int) -> list[History]:
        return [h for i, h in sorted(self.histories.items()) if self.group_of[i] == gi]

    def _finished(self, index: int, h: History) -> None:
        gi = self.group_of[index]
        g, rg = self.groups[gi], self.mlflow[gi]
        self.histories[index] = h
        self.tracker.log_model(rg.children[h.job.run.seed], keras_model,
                               (h.weights, g.network, h.job.run, g.data.x_train.shape[1:]),
                               g.data.x_val[:2])
        hs = self._histories(gi)
        if len(hs) == len(g.seeds):
            rec = record(g, hs, self.budget, self.digests[gi])
            record_finished(self.tracker, rg, g, rec, self.budget, self.folder / str(gi))
            self.records[gi] = rec


def record_finished(tracker: RemoteTracker, rg: RunGroup, g: Group, rec: DatasetRecord,
                    budget: Budget, folder: Path) -> None:
    """Once a group's runs have finished: each run's process numbers; the parent's seed means
    and a learning-curve figure of all seeds, drawn into `folder`, which must stay until the
    tracker's calls are drained."""
    m, article = budget.memorization, budget.article_epochs
    numbers = {run.seed: run_numbers(rec, run, m, article) for run in rec.runs}
    stop = m.stop_frac if rec.task == "regression" else None
    for run in rec.runs:
        child = rg.children[run.seed]
        tracker.log(child, values=numbers[run.seed])
        tracker.set_tags(child, {"outcome": _outcome(numbers[run.seed])})
    # One picture of every seed on the parent; each child's curves are its metrics.
    folder.mkdir()
    fig = folder / "learning_curve.png"
    learning_curve(rec, list(rec.runs), g.label, fig, stop)
    parent_values = {}
    for key in next(iter(numbers.values())):
        vals = [n[key] for n in numbers.values() if n[key] is not None]
        if vals:
            parent_values[f"{key}_mean"], parent_values[f"{key}_std"] = spread(vals)
    tracker.log(rg.parent, artifacts=[fig], values=parent_values)


def _outcome(numbers: dict[str, float | None]) -> str:
    if "memorized_epoch" not in numbers:
        return "trained"
    return "memorized" if numbers["memorized_epoch"] is not None else "not memorized"


def keras_model(weights: dict[str, np.ndarray], network: Network, run: RunSpec,
                input_shape: tuple[int, ...]):
    """The article's model as a plain Keras model holding one run's trained weights: what
    `save_weights` and MLflow's Keras flavour store, and what anyone can load and call."""
    model = article_model(import_keras(), network, run, input_shape)
    model.set_weights([weights[k] for k in weight_names(network)])
    return model


def save_weights(weights: dict[str, np.ndarray], network: Network, run: RunSpec,
                 input_shape: tuple[int, ...], path: Path) -> None:
    """One run's model as Keras' `.weights.h5` (called in the side process)."""
    keras_model(weights, network, run, input_shape).save_weights(path)


def save_models(groups: list[Group], histories: list[list[History]], folder: Path,
                side: Calls) -> None:
    """Each run's trained Keras model as `<group>_seed<s>.weights.h5` (byte-reproducible;
    `.keras` files carry a save date); `keras_model` rebuilds the architecture."""
    with atomic_dir(folder) as tmp:
        for g, hs in zip(groups, histories, strict=True):
            for h in hs:
                name = f"{group_label(h.job.run)}_seed{h.job.run.seed}"
                side.submit(save_weights, h.weights, g.network, h.job.run,
                            g.data.x_train.shape[1:], tmp / f"{name}.weights.h5")
        side.drain()
