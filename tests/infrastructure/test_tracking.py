"""MLflow recording against a real store: a temporary SQLite file. (Through a real `mlflow
server` on PostgreSQL and S3, stages and all: tests/infrastructure/test_team.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure import tracking
from lstm_overfit.infrastructure.sidecar import sidecar
from lstm_overfit.infrastructure.team import free_port
from lstm_overfit.infrastructure.tracking import (
    ENDED_TAG,
    HEARTBEAT_TAG,
    Owner,
    RemoteTracker,
    Tracker,
    project_root,
    stale_reason,
    tracked,
    tracking_uri,
)


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


SIGTERM_STAGE = """
import os, sys, time
from lstm_overfit.cli import _interrupt
from lstm_overfit.infrastructure.tracking import Tracker, tracked
import signal
signal.signal(signal.SIGTERM, _interrupt)
tracker = Tracker("exp-term", os.environ)
tracker.connect()
with tracked(tracker):
    group = tracker.start("toy/baseline", [0], {})
    print(group.parent, group.children[0], flush=True)
    time.sleep(60)
"""


def test_sigterm_ends_the_runs_killed(env):
    """DVC and CI stop a stage with SIGTERM: its MLflow runs end KILLED, not RUNNING."""
    import signal

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_STAGE], env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent, child = proc.stdout.readline().split()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    client = MlflowClient(tracking_uri=tracking_uri({}, project_root(env)))
    assert client.get_run(parent).info.status == "KILLED"
    assert client.get_run(child).info.status == "KILLED"


def test_values_and_tags_reach_the_run(tmp_path, env):
    tracker = Tracker("exp-v", env)
    tracker.connect()
    with tracked(tracker):
        group = tracker.start("toy/baseline", [], {})
        tracker.log(group.parent, values={"memorized_epoch": 12.0, "half_epoch": None})
        tracker.set_tags(group.parent, {"outcome": "memorized"})
    run = MlflowClient(tracking_uri=tracker.uri).get_run(group.parent)
    assert run.data.metrics == {"memorized_epoch": 12.0}
    assert run.data.tags["outcome"] == "memorized"


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


def test_unreachable_server_fails_fast_naming_the_uri(env, monkeypatch):
    port = free_port()  # nothing listens there
    for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    tracker = Tracker("exp", {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    start = time.monotonic()
    with pytest.raises(StageError, match=rf"MLflow tracking store http://127.0.0.1:{port} is unreachable"):
        tracker.connect()
    assert time.monotonic() - start < 15


def test_experiment_created_by_a_parallel_stage_is_used_not_an_error(tmp_path, env, monkeypatch):
    """Two queue workers on one tracking server: the other creates the experiment between this
    stage's lookup and its create."""
    from mlflow import MlflowClient as Client

    other = Tracker("exp-race", env)
    other.connect()
    real_get = Client.get_experiment_by_name
    calls = []

    def first_sees_nothing(self, name):
        calls.append(name)
        return None if len(calls) == 1 else real_get(self, name)

    monkeypatch.setattr(Client, "get_experiment_by_name", first_sees_nothing)
    tracker = Tracker("exp-race", env)
    tracker.connect()
    assert tracker._experiment_id == other._experiment_id
    assert len(calls) == 2


def test_runs_of_a_process_killed_with_sigkill_are_ended_by_the_next_start(env):
    """SIGKILL cannot be caught: the next stage on the store ends the dead process's runs,
    never those of a process that still runs (a parallel queue worker's)."""
    import signal

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_STAGE.replace("exp-term", "exp-kill")],
                            env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        runs = proc.stdout.readline().split()
        client = MlflowClient(tracking_uri=tracking_uri({}, project_root(env)))
        Tracker("exp-kill", env).connect()  # the owner is alive: its runs stay RUNNING
        assert {client.get_run(r).info.status for r in runs} == {"RUNNING"}
        assert client.get_run(runs[0]).data.tags["lstm_overfit.pid"] == str(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert {client.get_run(r).info.status for r in runs} == {"RUNNING"}  # nothing ended them
    other = Tracker("another-experiment", env)
    other.connect()
    for run_id in runs:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags[ENDED_TAG] == f"its process {proc.pid} on {Owner.this_process().host} is gone"
    assert other.end_stale_runs() == []  # once ended, a run is not touched again


def test_the_heartbeat_is_renewed_while_the_runs_are_open(env, monkeypatch):
    monkeypatch.setattr(tracking, "HEARTBEAT_SECONDS", 0.05)
    tracker = Tracker("exp-beat", env)
    tracker.connect()
    client = MlflowClient(tracking_uri=tracker.uri)
    with tracked(tracker):
        group = tracker.start("toy/baseline", [0], {})
        first = int(client.get_run(group.children[0]).data.tags[HEARTBEAT_TAG])
        deadline = time.monotonic() + 10
        while int(client.get_run(group.children[0]).data.tags[HEARTBEAT_TAG]) == first:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.05)


ME = Owner("here", "boot-1", os.getpid(), tracking.process_start(os.getpid()) or "")
MINUTE = 60_000


@pytest.mark.parametrize(("owner", "beat_min_ago", "ours", "stale"), [
    (ME, 60, True, None),  # this process: alive, however old its heartbeat
    (Owner("here", "boot-1", ME.pid, "1"), 0, True, "its process"),  # the pid was reused
    (Owner("here", "boot-0", ME.pid, ME.started), 0, True, "here restarted"),
    (Owner("far", "b", 7, "1"), 9, True, None),  # another host: judged by its heartbeat
    (Owner("far", "b", 7, "1"), 11, True, "no heartbeat from process 7 on far for 11 min"),
    (None, 11, True, "no owner recorded"),  # an earlier version's run, in this experiment
    (None, 11, False, None),  # someone else's run in another experiment: not ours to end
])
def test_which_running_runs_count_as_dead(owner, beat_min_ago, ours, stale):
    now = 100 * MINUTE
    tags = {HEARTBEAT_TAG: str(now - beat_min_ago * MINUTE), **(owner.tags() if owner else {})}
    reason = stale_reason(tags, now - 99 * MINUTE, now, ME, ours)
    assert (reason is None) if stale is None else (stale in reason)


def test_a_remote_tracker_records_in_the_side_process_under_names_it_gave(env):
    with sidecar() as side:
        tracker = RemoteTracker("exp-remote", env, side)
        tracker.connect()
        with tracked(tracker):
            group = tracker.start("toy/baseline", [0, 1], {"dataset": "toy"})
            tracker.log(group.children[1], params={"seed": 1},
                        series={"fit_loss": [(1, 0.5), (2, 0.25)]})
            tracker.set_tags(group.parent, {"outcome": "memorized"})
    client = MlflowClient(tracking_uri=tracker.uri)
    exp = client.get_experiment_by_name("exp-remote")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"toy/baseline", "toy/baseline/seed0", "toy/baseline/seed1"}
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    child, parent = runs["toy/baseline/seed1"], runs["toy/baseline"]
    assert child.data.params == {"seed": "1"}
    assert [m.value for m in client.get_metric_history(child.info.run_id, "fit_loss")] == [0.5, 0.25]
    assert parent.data.tags["outcome"] == "memorized"
    # The stage owns its runs, not its side process: a killed stage's runs are ended later.
    assert parent.data.tags["lstm_overfit.pid"] == str(os.getpid())


def test_a_remote_tracker_reports_an_unreachable_store_at_a_check_within_seconds(env):
    port = free_port()  # nothing listens there
    uri = f"http://127.0.0.1:{port}"
    with sidecar() as side:
        tracker = RemoteTracker("exp", {**env, "MLFLOW_TRACKING_URI": uri}, side)
        tracker.connect()
        tracker.start("toy/baseline", [0], {})
        start = time.monotonic()
        with pytest.raises(StageError, match=rf"MLflow tracking store {uri} is unreachable"):  # noqa: PT012
            while time.monotonic() - start < 30:
                tracker.check()
                time.sleep(0.05)
        assert time.monotonic() - start < 20


def test_a_call_that_failed_in_the_queue_ends_the_runs_failed_not_finished(env):
    with sidecar() as side:
        tracker = RemoteTracker("exp-late", env, side)
        tracker.connect()
        with pytest.raises(StageError, match="stopped answering"), tracked(tracker):
            tracker.start("toy/baseline", [0], {})
            tracker.log("no-such-run", params={"a": 1})  # fails in the side process
    client = MlflowClient(tracking_uri=tracker.uri)
    runs = client.search_runs([client.get_experiment_by_name("exp-late").experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FAILED"}


REMOTE_SIGTERM_STAGE = """
import faulthandler, os, signal, time
faulthandler.register(signal.SIGUSR1, all_threads=True)  # where it hangs, if it does
from lstm_overfit.cli import _interrupt
from lstm_overfit.infrastructure.sidecar import sidecar
from lstm_overfit.infrastructure.tracking import RemoteTracker, tracked
signal.signal(signal.SIGTERM, _interrupt)
with sidecar() as side:
    tracker = RemoteTracker("exp-term", os.environ, side)
    tracker.connect()
    with tracked(tracker):
        tracker.start("toy/baseline", [0], {})
        print(side.call(os.getpid), flush=True)  # the runs exist
        side.submit(time.sleep, 120)  # the side process is busy (an import, a model, ...)
        time.sleep(120)
"""


def test_sigterm_to_the_process_group_ends_the_runs_killed_at_once(env):
    """A stage and its busy side process stopped together (`timeout`, a CI cancel): the runs
    end KILLED within seconds, not behind the side process's queue."""
    import signal

    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    proc = subprocess.Popen([sys.executable, "-c", REMOTE_SIGTERM_STAGE], env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    side = int(proc.stdout.readline())
    time.sleep(1)  # the stage is in its training loop, the side process in its long call
    os.killpg(proc.pid, signal.SIGTERM)
    start = time.monotonic()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)
        time.sleep(1)
        proc.kill()
        pytest.fail(f"the stage hangs after SIGTERM:\n{proc.communicate()[1][-6000:]}")
    assert time.monotonic() - start < 30
    assert proc.returncode != 0
    with pytest.raises(ProcessLookupError):
        os.kill(side, 0)
    client = MlflowClient(tracking_uri=tracking_uri({}, project_root(env)))
    runs = client.search_runs([client.get_experiment_by_name("exp-term").experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}
