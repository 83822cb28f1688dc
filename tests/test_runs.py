"""The runs library end to end on tiny data: trained runs, their records, their MLflow runs
(live curves, seed-mean parents, datasets, source) and their Keras models."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mlflow import MlflowClient

from lstm_overfit.datasets.arrays import Dataset, load_dataset, save_dataset
from lstm_overfit.datasets.synthetic import random_split
from lstm_overfit.engine.fast import Job, Network, train_all
from lstm_overfit.infrastructure.tracking import RunGroup
from lstm_overfit.params import Memorization
from lstm_overfit.records import DatasetRecord
from lstm_overfit.runs import (
    Budget,
    Finisher,
    Group,
    keras_model,
    network,
    recording,
    save_models,
    train_groups,
)

M = Memorization(stop_frac=0.1, half_frac=0.5, plateau=0.1, every_until=3, growth=1.5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    x, y = random_split(24, 4, 2, 0)
    xv, yv = random_split(12, 4, 2, 1)
    save_dataset(Dataset(x, y, xv, yv), root / "toy")
    data = load_dataset(root / "toy")
    groups = [Group("toy", data, Network(5, 2), "baseline", (0, 1), 6, str(root / "toy")),
              Group("toy", data, Network(5, 2), "dropout", (0, 1), 6, str(root / "toy"),
                    dropout=0.5)]
    env = {"DVC_ROOT": str(root), "DVC_EXP_NAME": "exp-toy", "DVC_STAGE": "train_baseline@toy"}
    with recording("runs-test", env, "fast") as tracker:
        records, histories = train_groups(groups, Budget(8, 2, M), tracker, "test",
                                          "lstm_overfit train")
        save_models(groups, histories, root / "models", tracker.calls)
    return root, groups, records, histories, tracker


def test_one_record_per_group_with_every_seed(trained):
    _, groups, records, _, _ = trained
    assert [r.dataset for r in records] == ["toy", "toy"]
    assert isinstance(records[0], DatasetRecord)
    assert [(r.variant, r.seed, r.dropout) for r in records[1].runs] == [("dropout", 0, 0.5),
                                                                         ("dropout", 1, 0.5)]
    run = records[0].runs[0]
    assert len(run.loss) == run.epochs[-1] and records[0].steps_per_epoch == 3
    assert records[0].weight_count == Network(5, 2).weight_count()


def test_mlflow_holds_parents_children_curves_and_sources(trained):
    _, _, records, _, tracker = trained
    client = MlflowClient(tracking_uri=tracker.uri)
    exp = client.get_experiment_by_name("runs-test")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id], max_results=100)}
    assert {"toy/baseline", "toy/baseline/seed0", "toy/dropout0.5/seed1"} <= set(runs)
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    parent, child = runs["toy/baseline"], runs["toy/baseline/seed0"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["mlflow.source.name"] == "lstm_overfit train"
    assert child.data.tags["DVC_EXP_NAME"] == "exp-toy" and child.data.params["seed"] == "0"
    assert len(client.get_metric_history(child.info.run_id, "fit_loss")) == len(records[0].runs[0].loss)
    curve = client.get_metric_history(parent.info.run_id, "train_frac_mean")
    assert len(curve) == len(records[0].runs[0].epochs) > 2
    assert [m.step for m in curve] == list(records[0].runs[0].epochs)
    assert "best_val_epoch_mean" in parent.data.metrics
    assert 0 < parent.data.metrics["train_seconds"] < 600
    assert {d.dataset.name for d in child.inputs.dataset_inputs} == {"toy-training", "toy-validation"}
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["learning_curve.png"]


def test_each_child_logs_its_model_in_the_keras_flavour(trained, monkeypatch):
    import mlflow

    _, groups, _, histories, tracker = trained
    client = MlflowClient(tracking_uri=tracker.uri)
    exp = client.get_experiment_by_name("runs-test")
    (child,) = client.search_runs([exp.experiment_id], "attributes.run_name = 'toy/baseline/seed1'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracker.uri)  # for runs:/ URIs, this test only
    loaded = mlflow.keras.load_model(f"runs:/{child.info.run_id}/model")
    h = histories[0][1]
    model = keras_model(h.weights, groups[0].network, h.job.run, (4, 2))
    x = groups[0].data.x_val
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The signature, taken from the model's graph, is the one its outputs would give.
    from mlflow.models import get_model_info, infer_signature

    signature = get_model_info(f"runs:/{child.info.run_id}/model").signature
    assert signature == infer_signature(x, model.predict(x, verbose=0))


def test_saved_models_are_the_trained_runs(trained):
    root, groups, records, histories, _ = trained
    from lstm_overfit.infrastructure.runtime import import_keras

    import_keras()
    h = histories[1][1]
    model = keras_model(h.weights, groups[1].network, h.job.run, (4, 2))
    fresh = keras_model({k: np.zeros_like(v) for k, v in h.weights.items()}, groups[1].network,
                        h.job.run, (4, 2))
    fresh.load_weights(root / "models" / "dropout0.5_seed1.weights.h5")
    x = groups[1].data.x_val
    np.testing.assert_allclose(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    err = float(np.mean((model.predict(x, verbose=0) - groups[1].data.y_val) ** 2))
    assert err == pytest.approx(records[1].runs[1].val_error[-1], rel=1e-5)


class Asked:
    """A tracker that notes what it is asked (which run, what), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def log_model(self, run_id, *_):
        self.calls.append(("model", run_id))

    def log(self, run_id, **kw):
        self.calls.append(("figure" if kw.get("artifacts") else "values", run_id))

    def set_tags(self, run_id, _tags):
        self.calls.append(("tags", run_id))


def test_a_run_is_recorded_when_it_finishes_and_a_group_when_its_last_seed_has(tmp_path):
    x, y = random_split(24, 4, 2, 0)
    data = Dataset(x, y, *random_split(12, 4, 2, 1))
    groups = [Group("toy", data, Network(5, 2), "baseline", (0, 1), 4, "toy"),
              Group("toy", data, Network(5, 2), "l2", (0, 1), 4, "toy", l2=0.01)]
    budget = Budget(8, 2, M)
    jobs = [Job(g.label, g.data, g.network, r, g.schedule(budget), 8)
            for g in groups for r in g.runs()]
    events = []
    histories = train_all(jobs, events.append)
    last = {ev.index: ev for ev in events if ev.done}
    rgs = [RunGroup(f"p{gi}", {s: f"c{gi}{s}" for s in g.seeds}) for gi, g in enumerate(groups)]
    tracker = Asked()
    finisher = Finisher(groups, ["d", "d"], rgs, tracker, budget, tmp_path)
    finisher(last[2])  # l2, seed 0: its model only
    assert tracker.calls == [("model", "c10")]
    finisher(last[3])  # l2, seed 1: its model, then the group's numbers and figure
    assert tracker.calls[1] == ("model", "c11")
    assert ("figure", "p1") in tracker.calls and all(run != "p0" for _, run in tracker.calls)
    assert (tmp_path / "1" / "learning_curve.png").exists()
    del tracker.calls[:]
    # The baseline's runs sent no history (as Keras' engine): recorded when training ended.
    records, by_group = finisher.finish(histories)
    assert ("model", "c00") in tracker.calls and ("figure", "p0") in tracker.calls
    assert all(run[1] == "0" for _, run in tracker.calls)
    assert [[h.job.run for h in hs] for hs in by_group] == [g.runs() for g in groups]
    assert [r.runs[0].variant for r in records] == ["baseline", "l2"]


def test_network_follows_the_data():
    from lstm_overfit.params import Train

    x, y = random_split(4, 3, 2, 0)
    assert network(Train(units=7, epochs=1), Dataset(x, y, x, y)) == Network(7, 2)
    tok = np.ones((4, 3), np.int32)
    net = network(Train(units=7, epochs=1, embed_dim=5), Dataset(tok, y, tok, y, vocab=9))
    assert net == Network(7, 5, "classification", 9)


def test_the_training_process_imports_neither_mlflow_nor_tensorflow(tmp_path):
    """MLflow and Keras load in the side process, on the core the stage's start leaves idle."""
    script = textwrap.dedent(f"""
        import sys
        from lstm_overfit.datasets.arrays import Dataset
        from lstm_overfit.datasets.synthetic import random_split
        from lstm_overfit.engine.fast import Network
        from lstm_overfit.params import Memorization
        from lstm_overfit.runs import Budget, Group, recording, train_groups

        x, y = random_split(8, 3, 1, 0)
        g = Group("toy", Dataset(x, y, x, y), Network(3, 1), "baseline", (0,), 2, "toy")
        m = Memorization(stop_frac=0.1, half_frac=0.5, plateau=0.1, every_until=3, growth=1.5)
        with recording("quiet", {{"DVC_ROOT": {str(tmp_path)!r}}}, "fast") as tracker:
            train_groups([g], Budget(4, 1, m), tracker, "test", "lstm_overfit train")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "tensorflow", "keras")))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("quiet").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["toy/baseline", "toy/baseline/seed0"]
    assert {r.info.status for r in runs} == {"FINISHED"}
