"""The team stack, end to end: a real PostgreSQL, a real S3 server (SeaweedFS) and a real
`mlflow server` on loopback (`python -m lstm_overfit.infrastructure.team`), two clones of a project sharing a
git remote, a DVC remote and the tracking server. Tiny params, a few stages; no mocks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from conftest import clean_env, git_project, set_git_user, sh, stages_run, tiny_params, wait_for_queue
from lstm_overfit.infrastructure.team import Layout, read_state, running

pytestmark = pytest.mark.e2e
TRAIN = "train_baseline@ex1"
STACK_TTL = "900"  # the stack stops by itself even if this test process dies


def team(cmd: str, layout: Layout, cwd: Path, project: Path | None = None) -> dict[str, str]:
    """`python -m lstm_overfit.infrastructure.team <cmd>`; for `up`, the settings it prints to export."""
    args = [sys.executable, "-m", "lstm_overfit.infrastructure.team", cmd, "--dir", str(layout.root)]
    if cmd == "up":
        args += ["--ttl", STACK_TTL] + (["--project", str(project)] if project else [])
    out = sh(*args, cwd=cwd, timeout=300)
    return dict(re.findall(r"^export (\w+)=(\S+)$", out.stdout, flags=re.M))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("team") / "stack")
    env = team("up", layout, cwd=layout.root.parent)
    yield layout, env
    team("down", layout, cwd=layout.root.parent)


@pytest.fixture(scope="module")
def clones(tmp_path_factory, repo_params, stack):
    """Clone A (made from the project, pushed to a shared bare git remote) and clone B (a
    `git clone` of that remote), both pointed at the stack by `team up --project`."""
    layout, env = stack
    base = tmp_path_factory.mktemp("clones")
    origin, a, b = base / "origin.git", base / "a", base / "b"
    sh("git", "init", "-q", "--bare", "-b", "main", str(origin), cwd=base)
    a.mkdir()
    git_project(a, tiny_params(repo_params), "team a")
    sh("git", "remote", "add", "origin", str(origin), cwd=a)
    sh("git", "push", "-q", "origin", "main", cwd=a)
    sh("git", "clone", "-q", str(origin), str(b), cwd=base)
    set_git_user(b, "team b")
    for clone in (a, b):
        assert team("up", layout, cwd=clone, project=clone) == env
    return a, b


def rest(url: str, body: dict | None = None) -> dict:
    """GET `url`, or POST `body` to it as JSON; the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def client(env: dict[str, str]) -> tuple[MlflowClient, str]:
    c = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    return c, c.get_experiment_by_name("lstm-overfit").experiment_id


def test_up_prints_two_settings_and_keeps_secrets_private(stack):
    layout, env = stack
    assert set(env) == {"MLFLOW_TRACKING_URI", "AWS_SHARED_CREDENTIALS_FILE"}
    assert env["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    secret = Path(env["AWS_SHARED_CREDENTIALS_FILE"])
    assert secret.stat().st_mode & 0o077 == 0
    key = re.search(r"aws_secret_access_key = (\w+)", secret.read_text()).group(1)
    logs = "".join(p.read_text(errors="replace") for p in layout.root.rglob("*.log"))
    assert key not in logs
    state = read_state(layout)
    for pid in state["servers"].values():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert key not in cmdline and "password" not in cmdline.lower()
    # MLflow's GenAI job runners are not started: nothing of the server's but its web worker.
    assert [cmd for cmd in descendants(state["servers"]["mlflow"]) if "huey" in cmd] == []
    assert any("uvicorn" in cmd for cmd in descendants(state["servers"]["mlflow"]))


def descendants(pid: int) -> list[str]:
    """The command lines of `pid`'s children, their children, ..."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        parents.setdefault(ppid, []).append((int(stat.parent.name), cmd))
    found, todo = [], [pid]
    while todo:
        for child, cmd in parents.get(todo.pop(), []):
            found.append(cmd)
            todo.append(child)
    return found


def test_two_clones_share_outputs_runs_and_experiments(stack, clones, monkeypatch):
    layout, env = stack
    a, b = clones
    # A trains and shares: git for the code and dvc.lock, the DVC remote for the outputs and
    # the run cache, the tracking server for the runs.
    first = sh("dvc", "repro", TRAIN, cwd=a, env=env)
    assert TRAIN in stages_run(first.stdout)
    sh("git", "add", "-A", cwd=a)
    sh("git", "commit", "-qm", "trained", cwd=a)
    sh("git", "push", "-q", "origin", "main", cwd=a)
    sh("dvc", "push", "--run-cache", cwd=a, env=env)

    # B pulls: every output is there and nothing retrains.
    sh("git", "pull", "-q", "origin", "main", cwd=b)
    # (a real project's dvc.lock lists every stage, so plain `dvc pull`; this tiny one ran one)
    sh("dvc", "pull", "--run-cache", "--with-deps", TRAIN, cwd=b, env=env)
    for out in ("results/ex1/baseline.json", "data/prepared/ex1/x_train.npy"):
        assert (b / out).read_bytes() == (a / out).read_bytes(), out
    assert stages_run(sh("dvc", "repro", TRAIN, cwd=b, env=env).stdout) == set()
    assert "up to date" in sh("dvc", "status", TRAIN, cwd=b).stdout

    # B runs two experiments through the queue, two workers at once, and shares them.
    for name, setting in (("team-b1", "train.ex1.epochs=5"), ("team-b2", "train.ex1.epochs=6")):
        sh("dvc", "exp", "run", "--queue", "-n", name, "-S", setting, TRAIN, cwd=b, env=env)
    sh("dvc", "queue", "start", "-j", "2", cwd=b, env=env)
    status = wait_for_queue(b, env, timeout=300)
    assert status.count("Success") == 2, status
    sh("dvc", "exp", "push", "--run-cache", "origin", "team-b1", "team-b2", cwd=b, env=env)

    # A pulls B's experiment: its metrics show in A's `dvc exp show`, its outputs in A's cache.
    sh("dvc", "exp", "pull", "origin", "team-b1", cwd=a, env=env)
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=a).stdout)
    exps = {e["name"]: e for row in shown for e in (row.get("experiments") or [])}
    b1 = exps["team-b1"]["revs"][0]["data"]
    assert b1["params"]["params.yaml"]["data"]["train"]["ex1"]["epochs"] == 5
    assert b1["metrics"]["metrics/ex1/baseline.json"]["data"]
    ref = next(r for r in sh("git", "for-each-ref", "--format=%(refname)", "refs/exps",
                             cwd=a).stdout.split() if r.endswith("/team-b1"))
    lock = yaml.safe_load(sh("git", "show", f"{ref}:dvc.lock", cwd=a).stdout)
    out = next(o for o in lock["stages"][TRAIN]["outs"] if o["path"] == "results/ex1/baseline.json")
    assert (a / ".dvc/cache/files/md5" / out["md5"][:2] / out["md5"][2:]).is_file()
    # and A runs one of its own, recorded in the same server under its name.
    sh("dvc", "exp", "run", "-n", "team-a1", "-S", "train.ex1.epochs=3", TRAIN, cwd=a, env=env)

    c, exp = client(env)
    runs = c.search_runs([exp], max_results=1000)
    assert {r.info.status for r in runs} == {"FINISHED"}
    by_exp = {r.data.tags.get("DVC_EXP_NAME") for r in runs}
    assert {"team-b1", "team-b2", "team-a1"} <= by_exp
    parent = next(r for r in runs if r.data.tags.get("DVC_EXP_NAME") == "team-b1"
                  and r.info.run_name == "ex1/baseline")
    # What `mlflow ui` reads, through the server's REST API: the parent, not a child, carries
    # the seed means, with a point at every measured epoch.
    api = f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow"
    found = rest(f"{api}/runs/search", {"experiment_ids": [exp], "filter": (
        "attributes.run_name = 'ex1/baseline' and tags.DVC_EXP_NAME = 'team-b2'")})["runs"]
    assert len(found) == 1 and "mlflow.parentRunId" not in {
        t["key"] for t in found[0]["data"]["tags"]}
    history = rest(f"{api}/metrics/get-history?run_id={found[0]['info']['run_id']}"
                   "&metric_key=train_frac_mean")["metrics"]
    steps = [m["step"] for m in history]
    assert len(steps) > 2 and steps == sorted(steps), steps
    # Artifacts went through the server to S3 and read back through it.
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")
    names = [f.path for f in c.list_artifacts(parent.info.run_id)]
    figure = next(n for n in names if n.endswith(".png"))
    local = c.download_artifacts(parent.info.run_id, figure, str(layout.root.parent))
    assert Path(local).read_bytes()[:4] == b"\x89PNG"
    child = next(r for r in runs if r.info.run_name == "ex1/baseline/seed0")
    import mlflow

    # Not mlflow.set_tracking_uri: it would set MLFLOW_TRACKING_URI for the rest of the worker.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])
    model = Path(mlflow.artifacts.download_artifacts(f"runs:/{child.info.run_id}/model",
                                                     dst_path=str(layout.root.parent / "model")))
    assert (model / "MLmodel").is_file() and any(model.rglob("*.keras"))


def test_wrong_s3_credentials_name_the_remote(stack, clones, tmp_path):
    _, env = stack
    a, _ = clones
    wrong = tmp_path / "credentials"
    wrong.write_text("[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong0000\n")
    out = sh("dvc", "fetch", "--run-cache", cwd=a, check=False,
             env={"AWS_SHARED_CREDENTIALS_FILE": str(wrong)})
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Forbidden" in text and "Traceback" not in text, text
    # DVC's message does not always name the remote; the check does.
    check = sh(sys.executable, "-m", "lstm_overfit.infrastructure.team", "check", cwd=a, check=False,
               env={"AWS_SHARED_CREDENTIALS_FILE": str(wrong)})
    assert check.returncode == 1
    assert re.match(r"error: DVC remote `team` \(s3://dvc/cache at http://127\.0\.0\.1:\d+\) "
                    r"refused the credentials from .*: \w+ 403$", check.stderr.strip()), check.stderr
    assert "wrong0000" not in check.stderr + check.stdout
    ok = sh(sys.executable, "-m", "lstm_overfit.infrastructure.team", "check", cwd=a, env=env)
    assert "credentials accepted" in ok.stdout


# A setting under which the tiny ex1 stage trains for some seconds: big enough to be stopped
# while it trains, never memorized early (the stop threshold is out of reach). The rerun that
# must finish keeps the 1200 epochs (a history longer than one MLflow batch) on a narrow LSTM.
NEVER_MEMORIZED = ("-S", "train.ex1.epochs=1200", "-S", "memorization.stop_frac=0.000000001")
LONG = ("-S", "train.ex1.units=256", *NEVER_MEMORIZED)
RERUN = ("-S", "train.ex1.units=8", *NEVER_MEMORIZED)


def test_tracking_server_stopped_mid_pipeline_fails_fast_and_loses_nothing(stack, clones,
                                                                          tmp_path):
    layout, env = stack
    a, _ = clones
    c, exp = client(env)
    before = {r.info.run_id for r in c.search_runs([exp], max_results=1000)}

    # Stopped while a stage trains: its live metrics already reach the server.
    cmd = ["dvc", "exp", "run", "-n", "team-a2", *LONG, TRAIN]
    with open(tmp_path / "out", "w+") as out:
        proc = subprocess.Popen(cmd, cwd=a, env=clean_env(**env), stdout=out, stderr=out)
        deadline = time.monotonic() + 120
        while not any(r.data.metrics.get("fit_loss") for r in c.search_runs(
                [exp], "tags.DVC_EXP_NAME = 'team-a2'", max_results=10)):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "out").read_text()
            time.sleep(0.5)
        os.kill(read_state(layout)["servers"]["mlflow"], signal.SIGTERM)
        stopped = time.monotonic()
        assert proc.wait(timeout=120) != 0
        assert time.monotonic() - stopped < 30
        out.seek(0)
        text = out.read()
    assert f"MLflow tracking store {env['MLFLOW_TRACKING_URI']} stopped answering" in text, text
    assert "Traceback" not in text
    assert not (a / "results/ex1/baseline.json").exists()  # the failed stage wrote nothing
    deadline = time.monotonic() + 60
    while running(layout) is not None:  # the supervisor takes the stack down with it
        assert time.monotonic() < deadline
        time.sleep(0.5)

    # Started while the server is down: refused before any training.
    start = time.monotonic()
    failed = sh("dvc", "exp", "run", "-n", "team-a2", *LONG, TRAIN, cwd=a, env=env, check=False)
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert f"MLflow tracking store {env['MLFLOW_TRACKING_URI']} is unreachable" in text, text
    assert "Traceback" not in text
    assert time.monotonic() - start < 60

    assert team("up", layout, cwd=a) == env  # same ports, same data
    done = sh("dvc", "exp", "run", "-n", "team-a2", *RERUN, TRAIN, cwd=a, env=env)
    assert TRAIN in stages_run(done.stdout)
    c, exp = client(env)
    runs = c.search_runs([exp], max_results=1000)
    assert before <= {r.info.run_id for r in runs}  # nothing lost
    attempts = [r for r in runs if r.data.tags.get("DVC_EXP_NAME") == "team-a2"]
    # The stopped attempt could not end its runs (the server was down); the rerun found their
    # process gone and ended them KILLED. The rerun's all finished.
    finished = [r for r in attempts if r.info.status == "FINISHED"]
    assert len(finished) == 3  # a parent and a child per seed
    for r in finished:
        if "mlflow.parentRunId" in r.data.tags:
            assert len(c.get_metric_history(r.info.run_id, "fit_loss")) == 1200
    assert {r.info.status for r in attempts} == {"FINISHED", "KILLED"}


def test_a_stage_killed_while_logging_its_models_leaves_nothing_running_or_pending(stack, clones,
                                                                                   tmp_path):
    """SIGKILL while the stage logs its models to `mlflow server` (PostgreSQL, S3): the rerun
    ends the dead attempt's runs KILLED and its unfinished models FAILED; only the rerun's
    models are READY."""
    from mlflow.entities import LoggedModelStatus

    from lstm_overfit.infrastructure.tracking import ENDED_TAG

    layout, env = stack
    a, _ = clones
    c, exp = client(env)
    setting = ("-S", "train.ex1.epochs=6")  # trained nowhere before: nothing to restore

    def models(runs: set[str]) -> list:
        return [m for m in c.search_logged_models([exp], max_results=1000) if m.source_run_id in runs]

    def attempt() -> set[str]:
        return {r.info.run_id for r in c.search_runs([exp], "tags.DVC_EXP_NAME = 'team-killed'")}

    with open(tmp_path / "out", "w") as out:
        proc = subprocess.Popen(["dvc", "exp", "run", "-n", "team-killed", *setting, TRAIN], cwd=a,
                                env=clean_env(**env), stdout=out, stderr=out)
        deadline = time.monotonic() + 120
        # Caught mid-upload: the model exists in the store, its files are not all there.
        while not (pending := [m for m in models(attempt()) if m.status == LoggedModelStatus.PENDING]):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "out").read_text()
            time.sleep(0.02)
        # The stage, as the OOM killer would: its pid is its run's owner tag.
        os.kill(int(c.get_run(pending[0].source_run_id).data.tags["lstm_overfit.pid"]), signal.SIGKILL)
        proc.wait(timeout=60)
    dead = attempt()
    done = sh("dvc", "exp", "run", "-n", "team-killed", *setting, TRAIN, cwd=a, env=env)
    assert TRAIN in stages_run(done.stdout)
    for run_id in dead:
        run = c.get_run(run_id)
        assert run.info.status == "KILLED" and "is gone" in run.data.tags[ENDED_TAG]
    statuses = [m.status for m in models(dead)]
    assert LoggedModelStatus.FAILED in statuses and LoggedModelStatus.PENDING not in statuses
    rerun = attempt() - dead
    assert {c.get_run(r).info.status for r in rerun} == {"FINISHED"}
    assert [m.status for m in models(rerun)] == [LoggedModelStatus.READY] * 2  # a model per seed
    assert not c.search_runs([exp], "attributes.status = 'RUNNING'")


def test_a_supervisor_that_crashes_shows_why(tmp_path):
    """A state file from another version (no internal ports): the supervisor's traceback
    reaches the user, not only "exited with code 1"."""
    layout = Layout(tmp_path / "stack")
    layout.root.mkdir()
    layout.state.write_text(json.dumps({"ports": {"postgres": 1, "s3": 2, "mlflow": 3}}))
    out = sh(sys.executable, "-m", "lstm_overfit.infrastructure.team", "up", "--dir", str(layout.root),
             "--ttl", "30", cwd=tmp_path, check=False, timeout=60)
    assert out.returncode == 1
    assert "supervisor exited with code 1" in out.stderr
    assert "KeyError: 'internal'" in out.stderr
    assert running(layout) is None
