"""A stage's runs on a Dask cluster, when Dask's own configuration names a scheduler.

`DASK_SCHEDULER_ADDRESS` (or `scheduler-address` in a Dask config file) is not a DVC param: it
changes where runs train, never what they compute. Each run is one task (retried elsewhere if
its worker dies); the datasets go to the workers once; each measured epoch comes back as an
event to the stage process, which alone talks to MLflow and draws the progress line. A run's
numbers are the engine's, bit for bit, on any worker: the engine pins its own arithmetic
(kernels.py, gemm.c), and the workers are checked to run the same engine and libraries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import uuid
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

from lstm_overfit.engine.fast import Event, History, Job, Measurement, initial_weights, train_run
from lstm_overfit.errors import StageError

CONNECT_SECONDS = 10  # an unreachable scheduler fails the stage within this
# The libraries a run's bits depend on on a worker (the stage draws the initial weights with
# Keras); Dask's own version check covers Python, dask, distributed and their serializers.
LIBRARIES = ("numpy", "numba")
ENGINE_FILES = ("fast.py", "kernels.py", "gemm.c")


def scheduler_address() -> str | None:
    """The scheduler Dask's configuration names, or None: train in this process."""
    import dask.config

    return dask.config.get("scheduler-address", None) or None


def warm_up() -> None:
    """Import Dask's configuration, which every training stage reads (`scheduler_address`;
    importing it took ~0.15 s of a core): in the warm server (server.py), once for all its
    stages, each of which then calls `read_configuration`."""
    import dask.config  # noqa: F401


def read_configuration() -> None:
    """Read Dask's configuration (`DASK_*` variables, its files) again, as a fresh process
    reads it when Dask loads: for a stage forked from the warm server, which loaded Dask
    before the stage's environment was known."""
    import dask.config

    dask.config.refresh()


def fingerprint() -> dict[str, str]:
    """What a worker must share with the stage to compute the same bits: the engine's source
    and the versions of the libraries its numbers depend on."""
    h = hashlib.sha256()
    for name in ENGINE_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    out = {"lstm_overfit engine": h.hexdigest()[:16]}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "missing"
    return out


def differences(mine: Mapping[str, str], theirs: Mapping[str, str]) -> list[str]:
    return [f"{k} {theirs.get(k, 'missing')} (here {v})" for k, v in mine.items()
            if theirs.get(k) != v]


def connect(address: str):
    """A client of the scheduler at `address`, checked: the same Dask as here (Dask's own
    version check) and, on every worker, the same engine and libraries. One line otherwise."""
    from distributed import Client

    try:
        client = Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise StageError(f"Dask scheduler {address} (DASK_SCHEDULER_ADDRESS) did not answer within "
                         f"{CONNECT_SECONDS} s: {type(exc).__name__}") from None
    try:
        try:
            client.get_versions(check=True)
        except ValueError as exc:
            raise StageError(f"Dask cluster {address}: {' '.join(str(exc).split())}") from None
        try:
            remote = client.run(fingerprint)
        except Exception as exc:  # e.g. a worker that cannot import lstm_overfit
            raise StageError(f"Dask cluster {address}: a worker cannot run the engine: "
                             f"{type(exc).__name__}: {exc}") from None
        if not remote:
            raise StageError(f"Dask cluster {address} has no workers")
        mine = fingerprint()
        for worker, theirs in sorted(remote.items()):
            diff = differences(mine, theirs)
            if diff:
                raise StageError(f"Dask worker {worker} differs from this machine: "
                                 f"{'; '.join(diff)}")
    except BaseException:
        client.close()
        raise
    return client


def _encode(ev: Event) -> dict:
    m = ev.measurement
    return {"index": ev.index, "epoch": ev.epoch, "losses": list(ev.losses), "done": ev.done,
            "m": None if m is None else list(dataclasses.astuple(m))}


def _decode(msg: Mapping) -> Event:
    m = msg["m"]
    return Event(msg["index"], msg["epoch"], tuple(msg["losses"]),
                 None if m is None else Measurement(*m), msg["done"])


def _identity(x):
    return x


def run_task(job: Job, data, weights: dict, index: int, topic: str) -> History:
    """One run on a worker, from the initial weights the stage drew (so workers need no
    TensorFlow); each measured epoch is sent to the stage process as an event on `topic`."""
    import threading

    from distributed import get_worker

    worker = get_worker()
    history = train_run(dataclasses.replace(job, data=data), weights, index,
                        lambda ev: worker.log_event(topic, _encode(ev)), threading.Event())
    history.job = job  # the data stay on the worker: the stage has them
    return history


def replay(history: History, index: int, after: int) -> list[Event]:
    """The events of a finished run after epoch `after`, rebuilt from its history: what the
    worker sent, for any that had not arrived when its result did."""
    out, start = [], 0
    for m in history.measurements:
        losses = tuple(history.loss[start:m.epoch])
        done = m is history.measurements[-1]
        if m.epoch > after:
            out.append(Event(index, m.epoch, losses, m, done, history if done else None))
        start = m.epoch
    return out


Trainer = Callable[[list[Job], Callable[[Event], None] | None], list[History]]


def trainer(engine: str = "fast") -> Trainer:
    """How this stage trains: with Keras in this process (`engine: keras`); on the cluster
    Dask's configuration names (connected and checked now, before any run starts); else in
    this process (fast.train_all)."""
    from lstm_overfit.engine.fast import train_all

    address = scheduler_address()
    if engine == "keras":
        if address is not None:
            raise StageError(f"engine: keras trains in the stage's process, not on the Dask "
                             f"cluster at {address}: unset DASK_SCHEDULER_ADDRESS, or use "
                             f"engine: fast")
        from lstm_overfit.engine.keras_fit import train_all as keras_train_all

        return keras_train_all
    if address is None:
        return train_all
    client = connect(address)
    workers = client.scheduler_info()["workers"]
    threads = sum(w.get("nthreads", 1) for w in workers.values())
    print(f"training on the Dask cluster at {address}: {len(workers)} workers, {threads} threads",
          flush=True)
    return lambda jobs, on_event: train_on_cluster(client, jobs, on_event)


def train_on_cluster(client, jobs: list[Job], on_event: Callable[[Event], None] | None
                     ) -> list[History]:
    """Train every job on the cluster, one task per run, and return their histories in the
    order of `jobs`; `on_event` runs here, in order per run, once per measured epoch (a run
    retried after its worker died repeats none), the last with the run's history. Closes the
    client."""
    topic = f"lstm-overfit-{uuid.uuid4().hex}"
    inbox: queue.Queue = queue.Queue()
    seen = [0] * len(jobs)  # the last epoch relayed, per run
    futures: dict[int, object] = {}

    def relay(ev: Event) -> None:
        # A run's last event waits for its result, whose history it carries (replay).
        if ev.epoch > seen[ev.index] and (ev.history is not None or not ev.done):
            seen[ev.index] = ev.epoch
            if on_event is not None:
                on_event(ev)

    try:
        client.subscribe_topic(topic, lambda event: inbox.put(event[1]))
        # Each dataset is sent once, as a task that returns it rather than scattered: the
        # scheduler keeps the task, so a dataset whose worker died is recomputed there.
        shared = {}
        for job in jobs:
            if id(job.data) not in shared:
                shared[id(job.data)] = client.submit(_identity, job.data, pure=False,
                                                     key=f"data-{job.key}-{uuid.uuid4().hex[:8]}")
        weights = [initial_weights(j.network, j.run.seed) for j in jobs]
        order = sorted(range(len(jobs)),
                       key=lambda i: -jobs[i].flops_per_epoch() * jobs[i].schedule.epochs)
        for i in order:
            job = jobs[i]
            # A dead worker's runs are retried by the scheduler (distributed.scheduler.
            # allowed-failures); a run that raises is not retried: it would raise again.
            futures[i] = client.submit(run_task, dataclasses.replace(job, data=None),
                                       shared[id(job.data)], weights[i], i, topic, pure=False,
                                       key=f"{job.key}-{job.run.name}-{uuid.uuid4().hex[:8]}")
        results: list[History | None] = [None] * len(jobs)
        while any(r is None for r in results):
            try:
                relay(_decode(inbox.get(timeout=0.2)))
                continue
            except queue.Empty:
                pass
            for i, fut in futures.items():
                if results[i] is not None or not fut.done():
                    continue
                if fut.status != "finished":
                    exc = fut.exception() if fut.status == "error" else None
                    why = f"{type(exc).__name__}: {exc}" if exc else f"its task was {fut.status}"
                    raise StageError(f"run {jobs[i].key} seed {jobs[i].run.seed} failed on the "
                                     f"Dask cluster: {why}")
                results[i] = fut.result()
                results[i].job = jobs[i]
                for ev in replay(results[i], i, seen[i]):
                    relay(ev)
        return [r for r in results if r is not None]
    finally:
        for fut in futures.values():
            fut.cancel()
        client.close()
