"""The training engine: the article's model trained run by run, each run on its own thread.

A run is the article's model exactly: [Embedding(mask_zero=True)] -> LSTM(units) -> [Dropout]
-> Dense(1 [, sigmoid]), Keras' initializers, Adam with Keras' defaults, MSE (or binary
cross-entropy), batch 32, the epoch's last batch short. Forward and backward are written out:
per time step one matrix product (gemm.c, the same bits on every instruction set) and one fused
kernel (kernels.py); the recurrent kernel's gradient is one product over all time steps.

Runs share nothing: each has its own weights, Adam state, batch order and dropout stream,
both drawn from its seed and the epoch, so a run's numbers do not depend on which other runs
train beside it, on how many threads there are, or on the budget (epoch 50 of a long run is a
50-epoch run). Runs train side by side, one per core; a core left without a run helps the
products of those still training (gemm.c), which changes no bits.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.engine import initializers as init
from lstm_overfit.engine import kernels as k

ADAM_LR, ADAM_BETA_1, ADAM_BETA_2 = 1e-3, 0.9, 0.999  # keras.optimizers.Adam()
# Rows per inference-mode product when measuring a whole set: a chunk's inputs times the kernel
# for all its time steps stay in cache (the sentiment LSTM's training set: 28.8 ms with 512,
# 21.9 with 64 on the AVX2 machine). Each row is its own computation: the same bits.
MEASURE_CHUNK = 64
ORDER_STREAM, DROPOUT_STREAM = 0, 1  # batch order and dropout never share random numbers
WEIGHT_NAMES = ("kernel", "recurrent", "bias", "dense", "dense_bias")
Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class Network:
    """The model's shape. A classifier reads token ids through Embedding(vocab, features)."""

    units: int
    features: int
    task: Task = "regression"
    vocab: int = 0

    def __post_init__(self) -> None:
        if (self.task == "classification") != (self.vocab > 0):
            raise ValueError("a classifier reads tokens (vocab > 0); a regressor reads numbers")

    def weight_count(self) -> int:
        """Trainable parameters, as Keras' model.count_params() counts them."""
        u, f = self.units, self.features
        return self.vocab * f + 4 * u * (f + u + 1) + u + 1


@dataclass(frozen=True)
class RunSpec:
    """One training run: its regularization and the seed of its weights, order and dropout."""

    variant: str
    seed: int
    dropout: float = 0.0
    l2: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.variant}_seed{self.seed}"


@dataclass(frozen=True)
class Schedule:
    """How long a run trains and when it is measured.

    Training stops at `epochs`, or earlier at the first measured epoch >= `min_epochs` whose
    training error is <= `stop_below` (the run has memorized; see measure.stop_threshold)."""

    epochs: int
    eval_epochs: tuple[int, ...]
    min_epochs: int = 0
    stop_below: float | None = None


@dataclass(frozen=True)
class Job:
    """A run to train: `key` names it in events and results."""

    key: str
    data: Dataset
    network: Network
    run: RunSpec
    schedule: Schedule
    batch_size: int

    def flops_per_epoch(self) -> float:
        return lstm_flops(len(self.data.x_train), self.data.x_train.shape[1], self.network,
                          training=True)

    def flops_per_measurement(self) -> float:
        rows = len(self.data.x_train) + len(self.data.x_val)
        return lstm_flops(rows, self.data.x_train.shape[1], self.network, training=False)


def lstm_flops(rows: int, steps: int, network: Network, training: bool) -> float:
    """Multiply-add FLOPs of the LSTM's matrix products over `rows` sequences: the forward
    pass, times 3 in training (backward is two more products of the same size per weight)."""
    u, f = network.units, network.features
    forward = 2.0 * steps * rows * (f + u) * 4 * u
    return 3.0 * forward if training else forward


@dataclass(frozen=True)
class Measurement:
    """Inference-mode numbers of one run at one epoch. `error` is the MSE (regression) or
    the binary cross-entropy (classification); accuracy only for a classifier."""

    epoch: int
    train_error: float
    val_error: float
    train_acc: float | None = None
    val_acc: float | None = None


@dataclass
class History:
    """What a run measured: `loss[e - 1]` is epoch e's training-mode loss (Keras' epoch loss,
    without the L2 penalty), `measurements` the inference-mode numbers at measured epochs."""

    job: Job
    loss: list[float] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    stopped_early: bool = False
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """Sent by a training thread after every measured epoch and when a run ends. A run's last
    event (`done`) carries its finished history, trained weights included, so that it can be
    recorded while other runs still train (Keras' engine, whose runs train one after another,
    sends none)."""

    index: int
    epoch: int
    losses: tuple[float, ...]
    measurement: Measurement | None
    done: bool
    history: History | None = None


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def initial_weights(network: Network, seed: int) -> dict[str, np.ndarray]:
    """Keras' own initializers, as `keras.layers.LSTM`, `Dense` and `Embedding` draw them with
    the TensorFlow backend (engine/initializers.py, bit for bit, without TensorFlow):
    Glorot-uniform kernels, an orthogonal recurrent kernel (`orthogonal`), zero biases with the
    forget gate's at 1 (unit_forget_bias), uniform(-0.05, 0.05) embeddings. Same seed, same
    weights, whatever the variant."""
    u, f = network.units, network.features
    bias = np.zeros(4 * u, np.float32)
    bias[u:2 * u] = 1.0
    weights = {
        "kernel": init.glorot_uniform((f, 4 * u), 4 * seed),
        "recurrent": orthogonal(4 * seed + 1, (u, 4 * u)),
        "bias": bias,
        "dense": init.glorot_uniform((u, 1), 4 * seed + 2),
        "dense_bias": np.zeros(1, np.float32),
    }
    if network.vocab:
        weights["embedding"] = init.uniform((network.vocab, f), -0.05, 0.05, 4 * seed + 3)
    return {name: np.ascontiguousarray(w) for name, w in weights.items()}


def orthogonal(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """keras.initializers.Orthogonal(seed)(shape), step for step: the same normal draws, then
    the QR and the sign fix. The QR is ours (kernels.orthonormal_columns, float64, then float32):
    TensorFlow's blocks its products by the CPU's cache sizes, so its last bits differ from
    machine to machine once a side reaches its block size (48); this agrees with it to ~1e-6."""
    rows, cols = shape
    a = init.normal((max(rows, cols), min(rows, cols)), seed)
    q_t = k.orthonormal_columns(np.ascontiguousarray(a.T, np.float64))
    q = q_t if rows < cols else q_t.T
    return np.ascontiguousarray(q, np.float32)


def _buffers(steps: int, rows: int, features: int, units: int) -> tuple[np.ndarray, ...]:
    """Work arrays of one batch size, in the order kernels.train_step unpacks them."""
    four = 4 * units

    def zeros(*shape: int, dtype=np.float32) -> np.ndarray:
        return np.zeros(shape, dtype)

    return (zeros(steps, rows, features), np.ones((steps, rows), np.bool_),
            zeros(steps, rows, four), zeros(rows, four), zeros(steps, rows, four),
            zeros(steps + 1, rows, units), zeros(steps + 1, rows, units),
            zeros(steps, rows, units), zeros(steps, rows, four), zeros(rows, units),
            zeros(rows, units), zeros(rows, units), zeros(rows, units), zeros(rows),
            zeros(rows), zeros(steps, rows, features), zeros(four, units), zeros(four, features),
            k.packed_buffer(units, four), k.packed_buffer(four, units))


class Trainer:
    """One run's training state: weights, Adam moments and work arrays."""

    def __init__(self, job: Job, weights: dict[str, np.ndarray]) -> None:
        self.job = job
        self.net = job.network
        names = (*WEIGHT_NAMES, "embedding")
        # A regressor has no embedding: a 1 x 1 placeholder keeps one compiled step for both.
        self.w = {n: np.array(weights.get(n, np.zeros((1, 1), np.float32)), np.float32, copy=True)
                  for n in names}
        self.g = {n: np.zeros_like(a) for n, a in self.w.items()}
        self.m = {n: np.zeros_like(a) for n, a in self.w.items()}
        self.v = {n: np.zeros_like(a) for n, a in self.w.items()}
        self.l2 = np.float32(job.run.l2)
        self.beta_powers = (1.0, 1.0)
        data = job.data
        self.tokens = data.x_train.ndim == 2
        steps = data.x_train.shape[1]
        if self.tokens:
            self.token_ids = np.ascontiguousarray(data.x_train, np.int32)
            self.x = np.zeros((0, steps, 1), np.float32)
        else:
            self.token_ids = np.zeros((0, steps), np.int32)
            self.x = np.ascontiguousarray(data.x_train, np.float32)
        self.y = np.ascontiguousarray(data.y_train[:, 0], np.float32)
        self.steps = steps
        self.buffers: dict[int, tuple[tuple[np.ndarray, ...], np.ndarray]] = {}
        self.gemm = k.gemm_kernel()
        self.kernels = k.step_kernels()
        # The arrays a step updates in place, in `names` order (train_step's), gathered once: a
        # step of a small model takes ~1 ms, and building these tuples anew took ~3% of it.
        self.state = tuple(tuple(d[n] for n in names) for d in (self.w, self.g, self.m, self.v))
        self.classifier = self.net.task == "classification"

    def weights(self) -> dict[str, np.ndarray]:
        return {n: a for n, a in self.w.items() if n != "embedding" or self.tokens}

    def step(self, idx: np.ndarray, u: np.ndarray | None) -> float:
        """Train on the rows `idx`; `u` are the dropout draws (None: no dropout). Returns the
        batch's summed loss (float64)."""
        rows = len(idx)
        buffers = self.buffers.get(rows)
        if buffers is None:  # the batch's work arrays, and no-dropout draws (all kept)
            buffers = self.buffers[rows] = (_buffers(self.steps, rows, self.net.features,
                                                     self.net.units),
                                            np.zeros((rows, self.net.units), np.float32))
        p1 = self.beta_powers[0] * ADAM_BETA_1
        p2 = self.beta_powers[1] * ADAM_BETA_2
        self.beta_powers = (p1, p2)
        alpha = np.float32(ADAM_LR * math.sqrt(1.0 - p2) / (1.0 - p1))
        rate = np.float32(self.job.run.dropout if u is not None else 0.0)
        w, g, m, v = self.state
        return k.train_step(
            self.gemm, self.kernels, self.x, self.token_ids, self.y,
            np.asarray(idx, np.int64), u if u is not None else buffers[1], rate,
            self.classifier, w, g, m, v, self.l2, alpha, buffers[0])

    def train_epoch(self, epoch: int) -> float:
        """Epoch `epoch` (1-based): every training row once, in this run's order for the
        epoch, batches of batch_size with a short last one. Returns the mean loss."""
        n, batch = len(self.y), self.job.batch_size
        seed = self.job.run.seed
        order = np.random.default_rng([seed, ORDER_STREAM, epoch]).permutation(n)
        drop = self.job.run.dropout > 0
        rng = np.random.default_rng([seed, DROPOUT_STREAM, epoch]) if drop else None
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            u = rng.random((len(idx), self.net.units), dtype=np.float32) if rng else None
            total += self.step(idx, u)
        return total / n

    # --- inference-mode measurement -------------------------------------------------------

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Inference-mode outputs for every row of x (no dropout): the regression output or
        the classifier's logit, float32, MEASURE_CHUNK rows at a time."""
        w = self.w
        units, features = self.net.units, self.net.features
        out = np.empty(len(x), np.float32)
        packed_u = k.packed_buffer(units, 4 * units)
        for start in range(0, len(x), MEASURE_CHUNK):
            idx = np.arange(start, min(len(x), start + MEASURE_CHUNK))
            rows = len(idx)
            xt = np.zeros((self.steps, rows, features), np.float32)
            mask = np.ones((self.steps, rows), np.bool_)
            if self.tokens:
                k.embed_time_major(w["embedding"], x, idx, xt, mask)
            else:
                k.gather_time_major(x, idx, xt)
            xw = np.empty((self.steps, rows, 4 * units), np.float32)
            z = np.empty((rows, 4 * units), np.float32)
            c, h, tc = (np.empty((rows, units), np.float32) for _ in range(3))
            gates = np.empty((rows, 4 * units), np.float32)
            k.infer(self.gemm, self.kernels, xt, mask, w["kernel"], w["recurrent"], w["bias"],
                    w["dense"], w["dense_bias"], xw, z, c, h, gates, tc, packed_u,
                    out[start:start + rows])
        return out

    def measure(self, epoch: int) -> Measurement:
        """Training and validation error (and accuracy) in inference mode, in float64."""
        data = self.job.data
        parts = []
        for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val)):
            x = x if self.tokens else np.ascontiguousarray(x, np.float32)
            parts.append(score(self.predict(x), y[:, 0], self.net.task))
        (train_err, train_acc), (val_err, val_acc) = parts
        return Measurement(epoch, train_err, val_err, train_acc, val_acc)


def score(out: np.ndarray, y: np.ndarray, task: Task) -> tuple[float, float | None]:
    """(error, accuracy) of outputs against targets, summed exactly (math.fsum), so the value
    does not depend on the order a library would add in."""
    out64, y64 = np.asarray(out, np.float64), np.asarray(y, np.float64)
    if task == "regression":
        return math.fsum(((out64 - y64) ** 2).tolist()) / len(y64), None
    # math's log1p/exp, not numpy's: numpy picks SIMD variants by CPU, whose last bits differ.
    losses = [max(z, 0.0) - z * t + math.log1p(math.exp(-abs(z)))
              for z, t in zip(out64.tolist(), y64.tolist(), strict=True)]
    correct = int(((out64 > 0.0) == (y64 > 0.5)).sum())
    return math.fsum(losses) / len(y64), correct / len(y64)


def train_run(job: Job, weights: dict[str, np.ndarray], index: int,
              report: Callable[[Event], None], stop: threading.Event) -> History:
    """Train one run to the end of its schedule, sending an Event after every measured epoch."""
    trainer = Trainer(job, weights)
    history = History(job)
    schedule = job.schedule
    evals = set(schedule.eval_epochs)
    pending: list[float] = []
    for epoch in range(1, schedule.epochs + 1):
        if stop.is_set():
            raise InterruptedError("training stopped")
        loss = trainer.train_epoch(epoch)
        history.loss.append(loss)
        pending.append(loss)
        if epoch not in evals:
            continue
        m = trainer.measure(epoch)
        history.measurements.append(m)
        done = epoch == schedule.epochs
        if (schedule.stop_below is not None and epoch >= schedule.min_epochs
                and m.train_error <= schedule.stop_below):
            done = history.stopped_early = epoch < schedule.epochs
        if done:
            history.weights = trainer.weights()
        report(Event(index, epoch, tuple(pending), m, done, history if done else None))
        pending = []
        if done:
            break
    history.weights = history.weights or trainer.weights()
    return history


def default_workers() -> int:
    """One training thread per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def train_all(jobs: list[Job], on_event: Callable[[Event], None] | None = None,
              workers: int | None = None, lend: bool = True,
              at_once: int | None = None) -> list[History]:
    """Train every job on `workers` cores, `at_once` runs at a time (the longest first), and
    return their histories in the order of `jobs`. `on_event` runs on the calling thread, so
    it may log to MLflow or redraw a progress line without locking. Ctrl-C stops every run.

    A run's length is not known ahead (it stops once it has memorized), so by default one run
    more than there are cores trains at a time: the last runs share the cores to the end
    instead of one of them training alone (three seeds on two cores: all three at once). With
    `lend`, a core with fewer runs than cores left to train helps the products of the runs
    still training. Neither changes a bit: each run is its own computation."""
    weights = [initial_weights(j.network, j.run.seed) for j in jobs]
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    results: list[History | None] = [None] * len(jobs)
    errors: list[BaseException] = []
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i].flops_per_epoch() * jobs[i].schedule.epochs)
    todo = iter(order)
    lock = threading.Lock()

    def next_job() -> int | None:
        with lock:
            return next(todo, None)

    cores = workers or default_workers()
    running = [min(len(jobs), at_once or cores + 1)]

    def lend_idle() -> None:
        # Helpers spin while lent: once no run trains there is no product for them to help,
        # and they would spin beside what comes after the last run (its figure, the side
        # process logging the models) until the end of this call.
        if lend:
            k.lend_cores(max(0, cores - running[0]) if running[0] else 0)

    def worker() -> None:
        while not stop.is_set():
            i = next_job()
            if i is None:
                break
            try:
                results[i] = train_run(jobs[i], weights[i], i, events.put, stop)
            except BaseException as exc:  # reported to the calling thread, which re-raises
                errors.append(exc)
                stop.set()
            events.put(None)
        with lock:
            running[0] -= 1
            lend_idle()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(running[0])]
    lend_idle()
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(jobs) and not errors:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if not any(t.is_alive() for t in threads):
                    break
                continue
            if event is None:
                finished += 1
            elif on_event is not None:
                on_event(event)
    except BaseException:
        stop.set()
        raise
    finally:
        stop.set()
        for t in threads:
            t.join()
        if lend:
            k.lend_cores(0)  # no product runs now
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def warm_up() -> None:
    """Load every compiled kernel that training and measuring call (numba's cache on disk,
    gemm.c's library), for a process that forks stages (server.py): one 1-epoch run of each
    kind (a regressor, one with dropout and L2, a classifier) on tiny arrays. One worker
    thread, which ends with the call, and no lent cores, whose helper threads would not."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 3, 2), dtype=np.float32)
    y = rng.random((8, 1), dtype=np.float32)
    tokens = rng.integers(1, 6, (8, 3)).astype(np.int32)
    numbers, text = Dataset(x, y, x, y), Dataset(tokens, y.round(), tokens, y.round(), vocab=6)
    once = Schedule(1, (1,))
    train_all([Job("warm", numbers, Network(4, 2), RunSpec("baseline", 0), once, 4),
               Job("warm", numbers, Network(4, 2), RunSpec("dropout", 0, 0.5, 0.01), once, 4),
               Job("warm", text, Network(4, 2, "classification", 6), RunSpec("baseline", 0),
                   once, 4)], workers=1, lend=False)
