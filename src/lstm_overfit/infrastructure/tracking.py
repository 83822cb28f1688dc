"""MLflow records of the training stages: a parent run per (dataset, variant), a child per seed.

DVC owns the pipeline and the metrics `dvc exp show` reads; MLflow only records. Nothing here
writes a DVC-tracked file, so run ids and timestamps never reach the DVC outputs.

Why not `mlflow.keras.autolog` or its `MlflowCallback`: they hook into `model.fit`, and the
runs here train in the engine (engine/fast.py), several at once. The per-epoch values reach MLflow
while training runs instead, through `LiveLog`: buffered, with `step` = epoch, one `log_batch`
per run at most every few seconds. Each trained model is still logged in MLflow's Keras flavour.

A training stage keeps its `Tracker` in its side process (`RemoteTracker`, infrastructure/
sidecar.py): MLflow imports, opens its store and creates the runs there while the stage trains;
the stage queues its calls and waits for them only once training is over. A stage that fails
or is interrupted kills that process and ends its own runs itself (`Tracker.end_owned`).

A process killed with SIGKILL (the OOM killer, a closed lid, a CI timeout) cannot end its runs,
so every run names its owner (host, boot, pid and the pid's start time) and carries a heartbeat;
the next stage that opens the store ends the runs whose owner is gone (`end_stale_runs`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.sidecar import Calls, Ref

DB_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
# Fail fast on an unreachable server instead of MLflow's minutes of retries; and no
# "View run at <url>" line per run on a tracking server (the progress line says enough).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
                 "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call
FLUSH_SECONDS = 3.0  # how often live metrics reach the store: curves grow, the store is not flooded
# Who owns a RUNNING run, so that a later stage can tell a dead owner from a live one.
OWNER_TAGS = ("lstm_overfit.host", "lstm_overfit.boot", "lstm_overfit.pid", "lstm_overfit.pid_start")
HEARTBEAT_TAG = "lstm_overfit.heartbeat"  # ms since the epoch, renewed while the owner lives
ENDED_TAG = "lstm_overfit.ended"  # why a later stage ended the run
HEARTBEAT_SECONDS = 60.0
# A run on another host (its pid cannot be checked from here) counts as dead after this long
# without a heartbeat: ten missed beats, so a busy store or a slow host is not mistaken for one.
STALE_SECONDS = 600.0


def project_root(env: Mapping[str, str]) -> Path:
    """The repository the store belongs to. Queued DVC experiments run in temporary copies;
    DVC_ROOT points them back at the real root so their runs are not thrown away."""
    return Path(env.get("DVC_ROOT") or os.getcwd()).resolve()


def tracking_uri(env: Mapping[str, str], root: Path) -> str:
    """MLFLOW_TRACKING_URI if set, else the SQLite store at the root (MLflow 3's default)."""
    return env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / DB_FILE}"


def git_commit(cwd: Path) -> str | None:
    """The commit of the code that ran, or None outside a git checkout."""
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True)
    return out.stdout.strip() or None if out.returncode == 0 else None


def keras_version() -> str:
    import keras

    return keras.__version__


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, /proc/<pid>/stat), or None if there
    is no such process. With the pid it names a process even after the pid is reused."""
    stat = _read(f"/proc/{pid}/stat")
    # Fields after the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19] if stat else None


@dataclass(frozen=True)
class Owner:
    """The process that created a run."""

    host: str
    boot: str
    pid: int
    started: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id") or "",
                   os.getpid(), process_start(os.getpid()) or "")

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> Owner | None:
        if not all(tags.get(t) for t in OWNER_TAGS[:3]):
            return None
        host, boot, pid, started = (tags.get(t, "") for t in OWNER_TAGS)
        return cls(host, boot, int(pid), started)

    def tags(self) -> dict[str, str]:
        return dict(zip(OWNER_TAGS, (self.host, self.boot, str(self.pid), self.started), strict=True))


def stale_reason(tags: Mapping[str, str], start_ms: int, now_ms: int, me: Owner,
                 ours: bool) -> str | None:
    """Why a RUNNING run can no longer be running, or None if it may be. On this host its
    owner's pid is checked; elsewhere its heartbeat. A run without owner tags (an earlier
    version's) is judged by its age, and only in this project's own experiment (`ours`)."""
    owner = Owner.of(tags)
    if owner is not None and owner.host == me.host and owner.boot == me.boot:
        if process_start(owner.pid) == owner.started:
            return None
        return f"its process {owner.pid} on {owner.host} is gone"
    if owner is not None and owner.host == me.host:
        return f"{owner.host} restarted since its process {owner.pid} started it"
    if owner is None and not ours:
        return None
    beat = int(tags.get(HEARTBEAT_TAG) or start_ms)
    silent = (now_ms - beat) / 1000
    if silent <= STALE_SECONDS:
        return None
    who = f"process {owner.pid} on {owner.host}" if owner else "its process (no owner recorded)"
    return f"no heartbeat from {who} for {silent / 60:.0f} min (limit {STALE_SECONDS / 60:.0f} min)"


@contextlib.contextmanager
def store_lock(uri: str, root: Path) -> Iterator[None]:
    """SQLite allows one writer: parallel queued experiments (and a stage's side process)
    take turns, so neither sees "database is locked" nor races to create the experiment."""
    if not uri.startswith("sqlite:"):
        yield
        return
    with open(root / f"{DB_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def answering(uri: str) -> Iterator[None]:
    """A store that stops answering mid-stage fails the stage with one line naming it."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(f"MLflow tracking store {uri} stopped answering: {first}") from exc


def log_keras_model(uri: str, root: Path, run_id: str, model, example,
                    name: str = "model") -> None:
    """The trained model in MLflow's Keras flavour (native `.keras`) on run `run_id` of the
    store at `uri` (project `root`), with a signature taken from `example` inputs. Runs in the
    stage's side process, where Keras is imported while the stage trains."""
    import mlflow
    from mlflow.models import infer_signature

    # A signature holds only types and shapes: the output's, from the model's graph, instead
    # of calling the model (TensorFlow's eager LSTM, ~0.2 s a model in the side process).
    out = model.outputs[0]
    signature = infer_signature(example, np.zeros((len(example), *out.shape[1:]), out.dtype))
    with store_lock(uri, root), answering(uri):
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(run_id=run_id):
            # Explicit requirements: inferring them re-imports the world (seconds a model).
            mlflow.keras.log_model(model, name=name, signature=signature,
                                   pip_requirements=[f"keras=={keras_version()}"])


def warm_mlflow_keras() -> None:
    """Import what `log_keras_model` uses, before it is needed (in the side process): also
    what MLflow imports only at its first model (pyfunc), its first tracking URI (tracing)
    and its first run (GitPython, for the source commit), which each stage's side process
    would import anew. Saving a first model here too was measured slower: MLflow's first save
    checks its requirements against every installed package (~1.5 s of a core), which then
    competes with training."""
    import git  # noqa: F401
    import mlflow.keras  # noqa: F401
    import mlflow.pyfunc  # noqa: F401
    import mlflow.tracing.processor.base_mlflow  # noqa: F401
    from mlflow.models import infer_signature  # noqa: F401


def import_sql_store() -> None:
    """Import MLflow's SQL store (SQLAlchemy's models of every MLflow table: ~2.3 s of a core
    when a stage opens its store), without opening any: in the warm server (server.py), once
    for all its stages."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def warm_requirements() -> None:
    """Build MLflow's map of the installed packages, which its first model save builds to check
    the model's requirements (~1.5 s of a core reading every package's metadata): in the warm
    server (server.py), once for all its stages. Reads files only, starts no thread."""
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    warn_dependency_requirement_mismatches([f"keras=={keras_version()}"])


@dataclass
class RunGroup:
    """A parent run and its children, keyed by seed."""

    parent: str
    children: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DataInput:
    """One dataset a run saw, for MLflow's Dataset column: `context` is `training` or
    `validation`, `digest` the data's hash."""

    context: str
    name: str
    x: np.ndarray
    y: np.ndarray
    source: str
    digest: str


class Tracker:
    """Creates, fills and closes the MLflow runs of one stage.

    Runs are named by MLflow's run ids, or by the names a `RemoteTracker` gave them when it
    started them (`start(..., names=...)`)."""

    def __init__(self, experiment: str, env: Mapping[str, str], owner: Owner | None = None) -> None:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.root = project_root(env)
        self.uri = tracking_uri(env, self.root)
        self.env = env
        self.experiment = experiment
        self.groups: list[RunGroup] = []
        self._experiment_id: str | None = None
        self._client = None
        self._owner = owner or Owner.this_process()
        self._ids: dict[str, str] = {}  # a RemoteTracker's run names -> MLflow's run ids
        self._beating: threading.Event | None = None  # set to stop the heartbeat

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return store_lock(self.uri, self.root)

    def connect(self) -> None:
        """Open the store and the experiment; fail in seconds (in a side process: at the
        stage's next check)."""
        from mlflow import MlflowClient

        try:
            with self._locked():
                self._client = MlflowClient(tracking_uri=self.uri)
                exp = self._client.get_experiment_by_name(self.experiment)
                if exp is None:
                    location = None
                    if self.uri.startswith("sqlite:"):
                        location = (self.root / ARTIFACT_DIR).as_uri()
                    self._experiment_id = self._create_experiment(location)
                else:
                    self._experiment_id = exp.experiment_id
                ended = self.end_stale_runs()
        except Exception as exc:  # any failure here means: no store to record into
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StageError(f"MLflow tracking store {self.uri} is unreachable: {first}") from exc
        if ended:
            print(f"MLflow: ended {len(ended)} run(s) left RUNNING by a process that is gone: "
                  f"{ended[0][1]}{' (and others)' if len(set(r for _, r in ended)) > 1 else ''}",
                  file=sys.stderr)

    def end_stale_runs(self, now_ms: int | None = None) -> list[tuple[str, str]]:
        """End KILLED, with a tag saying why, every RUNNING run whose process is gone (see
        `stale_reason`); return (run id, reason) of each."""
        from mlflow.entities import RunTag

        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        ids = [e.experiment_id for e in self._client.search_experiments()]
        ended, token = [], None
        while ids:
            page = self._client.search_runs(ids, "attributes.status = 'RUNNING'",
                                            max_results=1000, page_token=token)
            for run in page:
                reason = stale_reason(run.data.tags, run.info.start_time, now_ms, self._owner,
                                      run.info.experiment_id == self._experiment_id)
                if reason:
                    self._fail_pending_models(run.info.experiment_id, run.info.run_id)
                    self._client.log_batch(run.info.run_id, tags=[RunTag(ENDED_TAG, reason)])
                    self._client.set_terminated(run.info.run_id, status="KILLED")
                    ended.append((run.info.run_id, reason))
            token = page.token
            if not token:
                break
        return ended

    def _create_experiment(self, location: str | None) -> str:
        """Create the experiment; on a shared server another stage (a parallel queue worker)
        may create it first, which is not an error."""
        from mlflow.exceptions import MlflowException

        try:
            return self._client.create_experiment(self.experiment, artifact_location=location)
        except MlflowException:
            exp = self._client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    def _fail_pending_models(self, experiment_id: str, run_id: str) -> None:
        """A model whose logging was cut short stays PENDING in MLflow 3: mark it FAILED, so
        that no half-uploaded model reads as a finished one."""
        from mlflow.entities import LoggedModelStatus

        for model in self._client.search_logged_models(
                [experiment_id], filter_string=f"source_run_id = '{run_id}'"):
            if model.status == LoggedModelStatus.PENDING:
                self._client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)

    def base_tags(self, entry_point: str = "") -> dict[str, str]:
        """DVC's experiment and stage, and the code that ran: MLflow's Source column shows
        `mlflow.source.name` and the git commit."""
        tags = {"DVC_EXP_NAME": self.env.get("DVC_EXP_NAME", ""),
                "DVC_STAGE": self.env.get("DVC_STAGE", ""),
                "mlflow.source.name": entry_point,
                "mlflow.source.type": "LOCAL" if entry_point else ""}
        commit = git_commit(Path.cwd())
        if commit:
            tags["mlflow.source.git.commit"] = commit
        return {k: v for k, v in tags.items() if v}

    def _id(self, run: str) -> str:
        return self._ids.get(run, run)

    def start(self, name: str, seeds: list[int], tags: dict[str, str],
              entry_point: str = "", names: RunGroup | None = None) -> RunGroup:
        """Create a parent run and one child per seed, all RUNNING until finished, each naming
        its owner and kept alive by its heartbeat. With `names`, later calls may name the runs
        by those instead of their ids."""
        tags = {**self.base_tags(entry_point), **self._owner.tags(),
                HEARTBEAT_TAG: str(int(time.time() * 1000)), **tags}
        with self._locked(), self._answering():
            parent = self._client.create_run(self._experiment_id, tags=tags, run_name=name)
            group = RunGroup(parent.info.run_id)
            for seed in seeds:
                child = self._client.create_run(
                    self._experiment_id, run_name=f"{name}/seed{seed}",
                    tags={**tags, "seed": str(seed), "mlflow.parentRunId": group.parent})
                group.children[seed] = child.info.run_id
        self.groups.append(group)
        if names is not None:
            self._ids[names.parent] = group.parent
            self._ids.update((names.children[s], group.children[s]) for s in seeds)
        if self._beating is None:
            self._beating = threading.Event()
            threading.Thread(target=self._heartbeat, args=(self._beating,), name="mlflow-heartbeat",
                             daemon=True).start()
        return group

    def _heartbeat(self, stop: threading.Event) -> None:
        """Renew the heartbeat of this tracker's open runs until they end. A store that fails
        here is reported by the stage's next write, not by this thread."""
        from mlflow.entities import RunTag

        while not stop.wait(HEARTBEAT_SECONDS):
            beat = [RunTag(HEARTBEAT_TAG, str(int(time.time() * 1000)))]
            with contextlib.suppress(Exception), self._locked():
                for group in list(self.groups):
                    for run_id in [group.parent, *group.children.values()]:
                        self._client.log_batch(run_id, tags=beat)

    def log(self, run_id: str, params: Mapping[str, object] | None = None,
            series: Mapping[str, list[tuple[int, float]]] | None = None,
            artifacts: list[Path] | None = None,
            values: Mapping[str, float | None] | None = None) -> None:
        """Log params, metric histories (key -> [(step, value)]), single values (step 0;
        None is skipped) and files to one run."""
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(v), now, int(step))
                   for key, points in (series or {}).items() for step, v in points]
        metrics += [Metric(key, float(v), now, 0) for key, v in (values or {}).items()
                    if v is not None]
        run_id = self._id(run_id)
        with self._locked(), self._answering():
            if params:
                self._client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
            for i in range(0, len(metrics), MAX_BATCH):
                self._client.log_batch(run_id, metrics=metrics[i:i + MAX_BATCH])
            for path in artifacts or []:
                self._client.log_artifact(run_id, str(path))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        with self._locked(), self._answering():
            self._client.log_batch(self._id(run_id),
                                   tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def _answering(self) -> contextlib.AbstractContextManager[None]:
        return answering(self.uri)

    def log_datasets(self, run_ids: list[str], datasets: list[DataInput]) -> None:
        """Name the data each run saw as MLflow dataset inputs (MLflow's Dataset column)."""
        from mlflow.data import from_numpy
        from mlflow.entities import DatasetInput, InputTag

        inputs = []
        with warnings.catch_warnings():
            # MLflow registers the local-path source twice and warns that either would do.
            warnings.filterwarnings("ignore", message="The specified dataset source can be")
            for d in datasets:
                ds = from_numpy(d.x, targets=d.y, source=d.source, name=d.name, digest=d.digest)
                inputs.append(DatasetInput(ds._to_mlflow_entity(),
                                           [InputTag("mlflow.data.context", d.context)]))
        with self._locked(), self._answering():
            for run_id in run_ids:
                self._client.log_inputs(self._id(run_id), datasets=inputs)

    def log_model(self, run_id: str, build: Callable[..., Any], args: tuple[Any, ...],
                  example: np.ndarray) -> None:
        """The Keras model `build(*args)` in MLflow's Keras flavour on run `run_id`."""
        log_keras_model(self.uri, self.root, self._id(run_id), build(*args), example)

    def end_owned(self, status: str) -> list[str]:
        """End `status` every RUNNING run of the experiment that this tracker's owner created
        (for a stage whose side process, which knows its runs' ids, is gone); their ids."""
        owner = self._owner.tags()
        query = " and ".join(["attributes.status = 'RUNNING'",
                              *(f"tags.`{k}` = '{v}'" for k, v in owner.items())])
        with self._locked(), self._answering():
            runs = self._client.search_runs([self._experiment_id], query, max_results=1000)
            for run in runs:
                self._client.set_terminated(run.info.run_id, status=status)
        return [run.info.run_id for run in runs]

    def end(self, status: str = "FINISHED") -> None:
        """Close every run this tracker opened."""
        if self._beating is not None:
            self._beating.set()
            self._beating = None
        if self._client is None:
            return
        with self._locked():
            for group in self.groups:
                for run_id in [*group.children.values(), group.parent]:
                    self._client.set_terminated(run_id, status=status)
        self.groups = []


class RemoteTracker:
    """A `Tracker` that lives where `calls` run (the stage's side process): MLflow imports and
    opens its store there while the stage trains. Every call is queued and returns at once;
    `start` names the runs itself, so nothing waits for MLflow's run ids. A call that fails
    (an unreachable store) raises in the stage at its next `check` (every training event) or
    when the runs end."""

    KEY = "tracker"

    def __init__(self, experiment: str, env: Mapping[str, str], calls: Calls) -> None:
        self.root = project_root(env)
        self.uri = tracking_uri(env, self.root)
        self.calls = calls
        self._experiment, self._env = experiment, dict(env)
        self._runs = 0
        calls.submit(Tracker, experiment, self._env, Owner.this_process(), keep=self.KEY)

    def _send(self, method: str, *args: Any) -> None:
        self.calls.submit(Ref(self.KEY, method), *args)

    def _name(self) -> str:
        self._runs += 1
        return f"run-{self._runs}"

    def connect(self) -> None:
        """Open the store and the experiment (see `Tracker.connect`); where the calls run in
        this process, a store that does not answer fails here."""
        self._send("connect")
        self.calls.poll()

    def start(self, name: str, seeds: list[int], tags: dict[str, str],
              entry_point: str = "") -> RunGroup:
        """A parent run and one child per seed (see `Tracker.start`), under names of ours."""
        group = RunGroup(self._name(), {seed: self._name() for seed in seeds})
        self._send("start", name, seeds, tags, entry_point, group)
        return group

    def log(self, run_id: str, params: Mapping[str, object] | None = None,
            series: Mapping[str, list[tuple[int, float]]] | None = None,
            artifacts: list[Path] | None = None,
            values: Mapping[str, float | None] | None = None) -> None:
        """See `Tracker.log`; a file in `artifacts` must exist until the next `drain`."""
        self._send("log", run_id, params, series, artifacts, values)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._send("set_tags", run_id, dict(tags))

    def log_datasets(self, run_ids: list[str], datasets: list[DataInput]) -> None:
        self._send("log_datasets", run_ids, datasets)

    def log_model(self, run_id: str, build: Callable[..., Any], args: tuple[Any, ...],
                  example: np.ndarray) -> None:
        """See `Tracker.log_model`; `build` must be importable by name."""
        self._send("log_model", run_id, build, args, example)

    def check(self) -> None:
        """Raise the error of a call that already failed, without waiting."""
        self.calls.poll()

    def end(self, status: str = "FINISHED") -> None:
        """FINISHED: close every run once every queued call has succeeded (else raise the
        first one's error, the runs still open). FAILED or KILLED: at once, not behind the
        queue (an import, models, a store that hangs): the side process is killed and this
        process ends the runs its owner tags name."""
        if status == "FINISHED":
            self.calls.drain()
            self._send("end", status)
            self.calls.drain()
            return
        self.calls.kill()
        tracker = Tracker(self._experiment, self._env, Owner.this_process())
        tracker.connect()
        tracker.end_owned(status)


@contextlib.contextmanager
def tracked(tracker: Tracker | RemoteTracker) -> Iterator[Tracker | RemoteTracker]:
    """End the runs FINISHED, FAILED on an error (ending them FINISHED included), KILLED on
    Ctrl-C or SIGTERM."""
    try:
        yield tracker
        tracker.end("FINISHED")
    except KeyboardInterrupt:
        _end_quietly(tracker, "KILLED")
        raise
    except BaseException:
        _end_quietly(tracker, "FAILED")
        raise


def _end_quietly(tracker: Tracker | RemoteTracker, status: str) -> None:
    """Mark the runs on the way out of a failure; a store that is gone must not hide why."""
    with contextlib.suppress(Exception):
        tracker.end(status)


class LiveLog:
    """Metric points buffered per run and sent together at most every `every` seconds, so a
    user watching `mlflow ui` sees curves grow while the stage trains."""

    def __init__(self, tracker: RemoteTracker, every: float = FLUSH_SECONDS,
                 now=time.monotonic) -> None:
        self.tracker = tracker
        self.every = every
        self.now = now
        self.pending: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self.last = now()

    def add(self, run_id: str, series: Mapping[str, list[tuple[int, float]]]) -> None:
        slot = self.pending.setdefault(run_id, {})
        for key, points in series.items():
            slot.setdefault(key, []).extend(points)

    def flush(self, force: bool = False) -> None:
        """Send what is buffered if `every` seconds have passed (or always, with force); a
        store that failed meanwhile fails the stage now."""
        self.tracker.check()
        if not force and self.now() - self.last < self.every:
            return
        pending, self.pending = self.pending, {}
        for run_id, series in pending.items():
            self.tracker.log(run_id, series=series)
        self.last = self.now()
