"""MLflow recording against real stores: a temporary SQLite file and a real `mlflow server`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from lstm_overfit.errors import StageError
from lstm_overfit.tracking import Tracker, project_root, tracked, tracking_uri


@pytest.fixture
def env(tmp_path):
    return {"DVC_ROOT": str(tmp_path), "DVC_EXP_NAME": "exp-test", "DVC_STAGE": "train@toy"}


def test_default_store_is_sqlite_at_the_dvc_root(tmp_path):
    root = project_root({"DVC_ROOT": str(tmp_path)})
    assert root == tmp_path.resolve()
    assert tracking_uri({}, root) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert tracking_uri({"MLFLOW_TRACKING_URI": "http://h:1"}, root) == "http://h:1"


def test_parent_child_runs_params_metrics_tags_and_artifacts(tmp_path, env):
    tracker = Tracker("exp-a", env)
    tracker.connect()
    artifact = tmp_path / "curve.png"
    artifact.write_bytes(b"png")
    with tracked(tracker):
        group = tracker.start("toy/baseline", [0, 1], {"dataset": "toy", "variant": "baseline"})
        tracker.log(group.children[0], params={"units": 4, "seed": 0},
                    series={"train_loss": [(1, 0.5), (2, 0.25)]}, artifacts=[artifact])
        tracker.log(group.parent, series={"train_frac_mean": [(2, 0.4)]})
    client = MlflowClient(tracking_uri=tracker.uri)
    exp = client.get_experiment_by_name("exp-a")
    assert exp.artifact_location == (tmp_path / "mlruns").resolve().as_uri()
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    child = client.get_run(group.children[0])
    assert child.data.tags["mlflow.parentRunId"] == group.parent
    assert child.data.tags["DVC_EXP_NAME"] == "exp-test"
    assert child.data.tags["DVC_STAGE"] == "train@toy"
    assert child.data.tags["dataset"] == "toy" and child.data.tags["seed"] == "0"
    assert child.data.params == {"units": "4", "seed": "0"}
    history = client.get_metric_history(child.info.run_id, "train_loss")
    assert [(h.step, h.value) for h in history] == [(1, 0.5), (2, 0.25)]
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["curve.png"]
    parent = client.get_run(group.parent)
    assert parent.data.metrics["train_frac_mean"] == 0.4


def test_keras_model_is_logged_in_the_keras_flavour(tmp_path, env):
    import mlflow
    import numpy as np

    from lstm_overfit.training import ModelSpec, RunSpec, build_model

    model = build_model((3, 1), ModelSpec(2, 0.5, 0.0), [RunSpec("baseline", 0)])
    tracker = Tracker("exp-m", env)
    tracker.connect()
    x = np.zeros((2, 3, 1), np.float32)
    with tracked(tracker):
        group = tracker.start("toy/baseline", [0], {})
        tracker.log_keras_model(group.children[0], model, x)
    mlflow.set_tracking_uri(tracker.uri)
    loaded = mlflow.keras.load_model(f"runs:/{group.children[0]}/model")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(("exc", "status"), [(RuntimeError("boom"), "FAILED"),
                                             (KeyboardInterrupt(), "KILLED")])
def test_runs_end_failed_or_killed(env, exc, status):
    tracker = Tracker("exp-f", env)
    tracker.connect()
    with pytest.raises(type(exc)), tracked(tracker):
        group = tracker.start("toy/l2", [0], {})
        raise exc
    client = MlflowClient(tracking_uri=tracker.uri)
    assert client.get_run(group.parent).info.status == status
    assert client.get_run(group.children[0]).info.status == status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_naming_the_uri(env, monkeypatch):
    port = _free_port()  # nothing listens there
    for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    tracker = Tracker("exp", {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    start = time.monotonic()
    with pytest.raises(StageError, match=rf"MLflow tracking store http://127.0.0.1:{port} is unreachable"):
        tracker.connect()
    assert time.monotonic() - start < 15


def test_logs_through_a_real_mlflow_server(tmp_path, env):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--default-artifact-root", (tmp_path / "art").as_uri(), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        tracker = Tracker("exp-http", {**env, "MLFLOW_TRACKING_URI": uri})
        for _ in range(30):  # the port opens a moment before the app answers
            try:
                tracker.connect()
                break
            except StageError:
                time.sleep(1)
        with tracked(tracker):
            group = tracker.start("toy/dropout", [3], {"dataset": "toy"})
            tracker.log(group.children[3], series={"val_mse": [(1, 0.3), (5, 0.2)]})
        client = MlflowClient(tracking_uri=uri)
        run = client.get_run(group.children[3])
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_mse")] == [1, 5]
    finally:
        server.terminate()
        server.wait(timeout=30)
