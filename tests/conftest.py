"""Shared fixtures: the pinned runtime, tiny params and records built in memory."""

from __future__ import annotations

from lstm_overfit.infrastructure.runtime import pin_runtime

# Before numpy loads anywhere in the test session: OpenBLAS reads these when it loads.
pin_runtime()

import contextlib  # noqa: E402
import copy  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What a copy of the project needs to run the pipeline (params.yaml is written separately).
PROJECT_FILES = ("src", "data/snapshot", ".dvc/config", ".dvcignore", ".gitignore", "dvc.yaml",
                 "pyproject.toml")
# A developer's shell settings that would point a test's pipeline at their own store or remote.
OUTSIDE_SETTINGS = ("MLFLOW_", "DVC_", "AWS_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end files first, the one with the most tests first, then the others the same
    way. With `--dist loadfile` (pyproject.toml) a file runs on one worker and the workers take
    the files in this order: an end-to-end file (minutes) taken late would run on alone while
    the other worker idles."""
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    order = sorted(files, key=lambda f: (files[f][0].get_closest_marker("e2e") is None,
                                         -len(files[f])))
    items[:] = [item for f in order for item in files[f]]


@pytest.fixture(scope="session")
def repo_params() -> dict:
    """The project's own params.yaml, as loaded YAML."""
    with open(ROOT / "params.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture
def raw_params(repo_params: dict) -> dict:
    """A copy each test may change."""
    return copy.deepcopy(repo_params)


def tiny_params(raw: dict) -> dict:
    """Shrink params so the whole pipeline runs in a couple of minutes on 2 cores."""
    raw = copy.deepcopy(raw)
    raw["base"].update(seeds=[0, 1], article_epochs=2)
    for d in raw["datasets"].values():
        d["n_train"] = min(d["n_train"], 40)
        d["n_val"] = min(d["n_val"], 40)
    for t in raw["train"].values():
        t.update(units=4, epochs=4)
    raw["train"]["sentiment"]["embed_dim"] = 4
    for s in raw.get("series", {}).values():
        s.update(units=4, epochs=4)
    raw["memorization"]["every_until"] = 2
    raw["sentiment"].update(vocab_size=50, seq_len=6)
    raw["sweep"].update(sizes=[8, 16], max_steps=6, n_val=16, units=4)
    raw["curves"].update(dropout=[0.0, 0.3, 0.5], l2=[0.0, 0.001, 0.01])
    return raw


def copy_project(dst: Path, params: dict) -> None:
    """Copy the pipeline's files into `dst`, with `params` as its params.yaml."""
    for rel in PROJECT_FILES:
        src, target = ROOT / rel, dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(
            src, target, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the settings above, this venv's tools first on PATH,
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OUTSIDE_SETTINGS)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def sh(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None,
       timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command as a user's shell would (`clean_env` plus `env`); fail the test with its
    output if it exits non-zero and `check`. Output goes through files, not pipes: a command
    that leaves daemons behind (`dvc queue start`'s workers inherit its stdout) returns when it
    exits, not when they do."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.run(list(args), cwd=cwd, env=clean_env(**(env or {})), stdout=out,
                              stderr=err, timeout=timeout).returncode
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(list(args), code, out.read().decode(errors="replace"),
                                           err.read().decode(errors="replace"))
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def stages_run(output: str) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def git_project(root: Path, params: dict, user: str) -> None:
    """A new git repository at `root` holding a copy of the project with `params`, committed."""
    copy_project(root, params)
    sh("git", "init", "-q", "-b", "main", cwd=root)
    set_git_user(root, user)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "tiny project", cwd=root)


def set_git_user(root: Path, user: str) -> None:
    sh("git", "config", "user.email", f"{user.replace(' ', '-')}@example.invalid", cwd=root)
    sh("git", "config", "user.name", user, cwd=root)


def wait_for_queue(cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """`dvc queue status` once no experiment is running or queued; fails the test after
    `timeout` seconds. Waits on a running experiment by following its log (`dvc queue logs
    -f`, which returns when it ends) rather than by asking for the status again and again."""
    deadline = time.monotonic() + timeout
    while re.search(r"\b(Running|Queued)\b", status := sh("dvc", "queue", "status", cwd=cwd,
                                                           env=env).stdout):
        left = deadline - time.monotonic()
        if left < 0:
            pytest.fail(f"queue did not finish:\n{status}")
        running = re.findall(r"^\S+\s+(\S+)\s.*\bRunning\s*$", status, flags=re.M)
        followed = running and "Queued" not in status and all(
            sh("dvc", "queue", "logs", "--follow", name, cwd=cwd, env=env, timeout=left,
               check=False).returncode == 0 for name in running)
        if not followed:  # not started yet (a task is Running a moment before its log exists)
            time.sleep(2)
    return status


class DaskCluster:
    """A real Dask scheduler and workers on loopback, as `dask scheduler` / `dask worker`
    start them: they stop by themselves (the scheduler after 15 idle minutes, workers once it
    is gone) and `close()` stops them sooner."""

    def __init__(self, folder: Path, workers: int = 2, env: dict[str, str] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.folder, self.procs = folder, []
        bin_dir = Path(sys.executable).parent
        self.procs.append(self._start([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--no-dashboard", "--idle-timeout", "900",
                                       "--scheduler-file", str(self.file)], "scheduler"))
        deadline = time.monotonic() + 60
        while not self.file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the Dask scheduler did not start")
            time.sleep(0.1)
        import json

        self.address = json.loads(self.file.read_text())["address"]
        for i in range(workers):
            self.add_worker(f"worker{i}", env)
        self.wait_for_workers(workers)

    def _start(self, args: list[str], name: str, env: dict[str, str] | None = None):
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(args, stdout=log, stderr=log, env=clean_env(**(env or {})),
                                start_new_session=True)

    def add_worker(self, name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = self._start([str(Path(sys.executable).parent / "dask"), "worker",
                            "--scheduler-file", str(self.file), "--nthreads", "1",
                            "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                            "--death-timeout", "60", "--name", name], name, env)
        self.procs.append(proc)
        return proc

    def client(self):
        from distributed import Client

        return Client(self.address, timeout="20s", set_as_default=False)

    def wait_for_workers(self, count: int) -> None:
        with self.client() as c:
            c.wait_for_workers(count, timeout=120)

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.close()
