"""The training engine against TensorFlow and Keras, and its independence and determinism."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.datasets.synthetic import random_split
from lstm_overfit.engine.fast import (
    ORDER_STREAM,
    Job,
    Network,
    RunSpec,
    Schedule,
    Trainer,
    initial_weights,
    train_all,
)
from lstm_overfit.infrastructure.runtime import import_keras


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def tiny(n: int = 40, steps: int = 6, features: int = 3) -> Dataset:
    x, y = random_split(n, steps, features, 0)
    xv, yv = random_split(16, steps, features, 1)
    return Dataset(x, y, xv, yv)


def tokens(n: int = 40, steps: int = 7, vocab: int = 12) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.integers(2, vocab, (n, steps)).astype(np.int32)
    x[:, 5:] = 0  # padding at the end, as TextVectorization writes it
    x[3, :] = 0
    y = (rng.random((n, 1)) > 0.5).astype(np.float32)
    return Dataset(x, y, x[:16], y[:16], vocab=vocab)


def job(data: Dataset, net: Network, run: RunSpec, epochs: int = 3, **sched) -> Job:
    return Job("t", data, net, run, Schedule(epochs, tuple(range(1, epochs + 1)), **sched), 32)


def reference_gradients(keras, w, data, idx, net, run, u):
    """TensorFlow's autodiff of the same model (Keras' gate order and masking) and loss."""
    import tensorflow as tf

    v = {k: tf.Variable(a) for k, a in w.items()}
    with tf.GradientTape() as tape:
        if net.vocab:
            x = tf.gather(v["embedding"], data.x_train[idx])
            mask = tf.cast(data.x_train[idx] != 0, tf.float32)
        else:
            x, mask = tf.constant(data.x_train[idx]), None
        h = tf.zeros((len(idx), net.units))
        c = tf.zeros_like(h)
        for t in range(x.shape[1]):
            z = x[:, t] @ v["kernel"] + h @ v["recurrent"] + v["bias"]
            i, f, g, o = tf.split(z, 4, axis=-1)
            cn = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            hn = tf.sigmoid(o) * tf.tanh(cn)
            if mask is not None:
                m = mask[:, t:t + 1]
                cn, hn = m * cn + (1 - m) * c, m * hn + (1 - m) * h
            c, h = cn, hn
        if u is not None:
            h = h * tf.cast(u >= run.dropout, tf.float32) / (1 - run.dropout)
        out = h @ v["dense"] + v["dense_bias"]
        y = data.y_train[idx]
        if net.task == "classification":
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=out))
        else:
            loss = tf.reduce_mean((out - y) ** 2)
        loss += run.l2 * (tf.reduce_sum(v["kernel"] ** 2) + tf.reduce_sum(v["recurrent"] ** 2))
    grads = tape.gradient(loss, v)
    return {k: tf.convert_to_tensor(g).numpy() for k, g in grads.items()}


@pytest.mark.parametrize("case", ["regression", "classification"])
def test_gradients_match_tensorflow_autodiff(keras, case):
    data = tiny() if case == "regression" else tokens()
    net = Network(8, 3) if case == "regression" else Network(8, 5, "classification", 12)
    run = RunSpec("dropout", 1, dropout=0.3, l2=0.01)
    w = initial_weights(net, 1)
    trainer = Trainer(job(data, net, run), w)
    idx = np.arange(32)
    u = np.random.default_rng(5).random((32, 8), dtype=np.float32)
    trainer.step(idx, u)  # leaves the step's gradients in trainer.g
    ref = reference_gradients(keras, w, data, idx, net, run, u)
    for name, g in trainer.g.items():
        if name not in ref:
            continue
        if name in ("kernel", "recurrent"):
            g = g + 2 * run.l2 * w[name]  # the engine adds the penalty inside Adam's kernel
        scale = np.abs(ref[name]).max()
        assert np.abs(g - ref[name]).max() <= 1e-5 * scale + 1e-9, name


TRAJECTORY_STEPS = 240  # 60 epochs of 4 batches
TOLERANCE = 1e-5  # largest prediction difference allowed after TRAJECTORY_STEPS steps


@pytest.mark.parametrize("variant", ["baseline", "l2"])
def test_runs_follow_a_plain_keras_lstm_model(keras, variant):
    """The article's model in plain Keras, fed the same batches from the same weights: after
    240 optimizer steps the predictions agree to within TOLERANCE."""
    x, y = random_split(100, 10, 1, 0)
    data = Dataset(x, y, x[:20], y[:20])
    net, run = Network(32, 1), RunSpec(variant, 3, l2=1e-3 if variant == "l2" else 0.0)
    w = initial_weights(net, 3)
    trainer = Trainer(job(data, net, run), w)
    reg = keras.regularizers.L2(run.l2) if run.l2 else None
    inp = keras.Input((10, 1))
    out = keras.layers.Dense(1)(keras.layers.LSTM(32, kernel_regularizer=reg,
                                                  recurrent_regularizer=reg)(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss="mse")
    model.set_weights([w[k] for k in ("kernel", "recurrent", "bias", "dense", "dense_bias")])
    steps = 0
    for epoch in range(1, TRAJECTORY_STEPS // 4 + 1):
        order = np.random.default_rng([3, ORDER_STREAM, epoch]).permutation(100)
        for start in range(0, 100, 32):
            idx = order[start:start + 32]
            ours = trainer.step(idx, None) / len(idx)
            theirs = float(model.train_on_batch(x[idx], y[idx]))
            if not run.l2:
                assert ours == pytest.approx(theirs, rel=1e-4)
            steps += 1
    assert steps == TRAJECTORY_STEPS
    diff = np.abs(model.predict(x, verbose=0)[:, 0] - trainer.predict(x)).max()
    assert diff < TOLERANCE
    moved = np.abs(trainer.w["recurrent"] - w["recurrent"]).max()
    assert moved > 100 * TOLERANCE  # the weights did move: the agreement is not trivial


def histories_equal(a, b) -> bool:
    return (a.loss == b.loss and a.measurements == b.measurements
            and all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights))


@pytest.mark.parametrize("units", [16, 64])
def test_the_recurrent_kernel_is_keras_orthogonal_initializer(keras, units):
    """Same draws, same QR up to rounding (ours sums in one fixed order), same signs; 64
    units reach TensorFlow's blocked QR, where its bits follow the CPU's cache sizes."""
    from lstm_overfit.engine.fast import orthogonal

    ours = orthogonal(7, (units, 4 * units))
    ref = keras.ops.convert_to_numpy(keras.initializers.Orthogonal(seed=7)((units, 4 * units)))
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-6
    assert np.abs(ours @ ours.T - np.eye(units)).max() <= 1e-6
    assert not np.array_equal(orthogonal(8, (units, 4 * units)), ours)


def test_a_run_is_the_same_alone_or_beside_others_on_any_number_of_threads():
    data = tiny()
    net = Network(6, 3)
    runs = [RunSpec("baseline", 0), RunSpec("dropout", 1, dropout=0.5), RunSpec("l2", 2, l2=1e-2)]
    together = train_all([job(data, net, r) for r in runs], workers=2)  # all three at once
    in_turn = train_all([job(data, net, r) for r in runs], workers=2, at_once=1)
    alone = train_all([job(data, net, runs[1])], workers=1)
    assert histories_equal(together[1], alone[0])
    assert all(histories_equal(a, b) for a, b in zip(together, in_turn, strict=True))
    assert not histories_equal(together[0], together[1])


def test_a_run_helped_by_an_idle_core_is_the_same_run():
    """One run on two cores: the idle one helps its products (LSTM(64): big enough to split)."""
    data = tiny()
    run = job(data, Network(64, 3), RunSpec("dropout", 1, dropout=0.5))
    (helped,) = train_all([run], workers=2)
    (alone,) = train_all([run], workers=2, lend=False)
    assert histories_equal(helped, alone)


def test_no_core_is_lent_once_every_run_has_ended():
    """The last events (a stage draws its last figure there, its side process logs the last
    models) leave both cores free: no helper spins once no run trains. A spinning helper
    would use a core for the whole pause below."""
    import threading
    import time

    data = tiny()
    spent = []

    def on_event(ev) -> None:
        if ev.done and not spent:  # the first run to end: wait for the other, then pause
            while any(t.name.endswith("(worker)") for t in threading.enumerate()):
                time.sleep(0.01)
            start = time.process_time()
            time.sleep(0.3)
            spent.append(time.process_time() - start)

    train_all([job(data, Network(64, 3), RunSpec("baseline", s), 2) for s in (0, 1)], on_event,
              workers=2)
    assert spent[0] < 0.1, spent  # this process's threads, all of them


def test_an_early_epoch_of_a_long_run_is_a_short_run():
    data, net, run = tiny(), Network(6, 3), RunSpec("dropout", 0, dropout=0.5)
    long, short = train_all([job(data, net, run, 5), job(data, net, run, 2)])
    assert long.loss[:2] == short.loss
    assert long.measurements[:2] == short.measurements


def test_a_run_stops_once_memorized_but_not_before_min_epochs():
    data, net, run = tiny(), Network(6, 3), RunSpec("baseline", 0)
    stopped, full = train_all([job(data, net, run, 6, min_epochs=3, stop_below=1e9),
                               job(data, net, run, 6)])
    assert len(stopped.loss) == 3 and stopped.stopped_early
    assert len(full.loss) == 6 and not full.stopped_early
    assert stopped.loss == full.loss[:3]


def test_a_runs_last_event_carries_its_finished_history():
    """So a run can be recorded while others train: its weights are final when it is sent."""
    data, net = tiny(), Network(6, 3)
    seen = []
    hs = train_all([job(data, net, RunSpec("baseline", s), 4) for s in (0, 1, 2)],
                   lambda ev: seen.append((ev, ev.history and {k: w.copy() for k, w
                                                               in ev.history.weights.items()})),
                   workers=2)
    for i, h in enumerate(hs):
        mine = [(ev, w) for ev, w in seen if ev.index == i]
        (last, weights), earlier = mine[-1], mine[:-1]
        assert last.done and last.history is h and all(ev.history is None for ev, _ in earlier)
        assert weights.keys() == h.weights.keys()
        assert all(np.array_equal(weights[k], h.weights[k]) for k in weights)


def test_measurements_are_inference_mode(keras):
    """With dropout the training-mode loss is noisy; measured MSE is a plain Keras predict."""
    from lstm_overfit.runs import keras_model

    data, net, run = tiny(), Network(6, 3), RunSpec("dropout", 0, dropout=0.5)
    (h,) = train_all([job(data, net, run, 2)])
    model = keras_model(h.weights, net, run, data.x_train.shape[1:])
    pred = model.predict(data.x_train, verbose=0)
    assert h.measurements[-1].train_error == pytest.approx(
        float(np.mean((pred - data.y_train) ** 2)), rel=1e-5)


@pytest.mark.parametrize("data", [tiny(150), tokens(150)], ids=["numbers", "tokens"])
def test_measuring_in_chunks_gives_each_rows_bits_alone(data):
    """A set longer than a chunk (MEASURE_CHUNK rows) is measured in several products; each
    row's output is what it gets measured alone."""
    from lstm_overfit.engine.fast import MEASURE_CHUNK

    assert len(data.x_train) > 2 * MEASURE_CHUNK
    net = (Network(5, 3) if data.x_train.ndim == 3 else Network(5, 4, "classification", 12))
    trainer = Trainer(job(data, net, RunSpec("baseline", 0), 2), initial_weights(net, 0))
    trainer.train_epoch(1)
    whole = trainer.predict(data.x_train)
    alone = np.concatenate([trainer.predict(data.x_train[i:i + 1]) for i in range(len(whole))])
    assert whole.tobytes() == alone.tobytes()


def test_classifier_measures_loss_and_accuracy():
    data = tokens()
    net = Network(6, 4, "classification", 12)
    (h,) = train_all([job(data, net, RunSpec("baseline", 0), 3)])
    m = h.measurements[-1]
    assert 0 <= m.train_acc <= 1 and 0 <= m.val_acc <= 1 and m.train_error > 0


def test_an_error_in_a_run_reaches_the_caller():
    data = tiny()
    bad = Job("t", data, Network(6, 3), RunSpec("baseline", 0), Schedule(2, (1, 2)), 0)
    with pytest.raises(ValueError):
        train_all([bad])


DIGEST = textwrap.dedent("""
    import hashlib
    from lstm_overfit.infrastructure.runtime import pin_runtime
    pin_runtime()
    from lstm_overfit.datasets.arrays import Dataset
    from lstm_overfit.datasets.synthetic import random_split
    from lstm_overfit.engine.fast import Job, Network, RunSpec, Schedule, train_all
    x, y = random_split(40, 6, 2, 0)
    xv, yv = random_split(16, 6, 2, 1)
    data = Dataset(x, y, xv, yv)
    runs = [RunSpec("baseline", 0), RunSpec("dropout", 1, dropout=0.5), RunSpec("l2", 2, l2=1e-2)]
    hs = train_all([Job("t", data, Network(64, 2), r, Schedule(4, (2, 4)), 32) for r in runs])
    h = hashlib.sha256()
    for run in hs:
        h.update(repr((run.loss, run.measurements)).encode())
        for name in sorted(run.weights):
            h.update(run.weights[name].tobytes())
    print(h.hexdigest())
""")
# The digest of DIGEST's tiny training: LSTM(64), so the products take the vector paths and the
# orthogonal initializer is past TensorFlow's QR block size (an LSTM(16) digest agreed between
# an AMD and an Intel machine whose full pipelines did not). Computed on an Intel machine with
# AVX-512 and checked there against the forced AVX2 and plain-C products: every machine of this
# kind, with AVX-512 or without, must reproduce it.
GOLDEN = "e10c1db7594142ec6147339f9a999a5c32a421c359a5ff16f0362ec78123dfc7"


def digest(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENBLAS_", "ONEDNN_", "NUMBA_CPU", "LSTM_OVERFIT_GEMM"))}
    out = subprocess.run([sys.executable, "-c", DIGEST], env={**clean, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_same_bits_under_the_settings_that_differ_between_machines(tmp_path):
    """What differs between machines of this kind is the instruction set: AVX-512 or not.
    The engine's product takes the widest path the CPU has, its kernels compile to other
    instructions, TensorFlow's oneDNN picks other kernels. A tiny training gives one digest
    whatever each of them is told it may use."""
    # As every stage runs: the CPU's widest product, kernels compiled for this CPU.
    host = digest()
    # What a machine without AVX-512 runs: the AVX2 product, kernels for a plain x86-64 (a
    # cache of their own), oneDNN held below AVX2.
    assert digest(LSTM_OVERFIT_GEMM="avx2", NUMBA_CPU_NAME="generic", ONEDNN_MAX_CPU_ISA="AVX",
                  NUMBA_CACHE_DIR=str(tmp_path / "generic")) == host
    # Plain C products, and OpenBLAS told to use other kernels: the engine does not use it.
    assert digest(LSTM_OVERFIT_GEMM="scalar", OPENBLAS_CORETYPE="Sandybridge") == host
    # And what this machine computes is what the machine that committed the results computed.
    assert host == GOLDEN


def test_warm_up_loads_the_kernels_and_ends_its_thread():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, threading, time
        from lstm_overfit.infrastructure.runtime import pin_runtime
        pin_runtime()  # as every stage does: one OpenBLAS thread, which starts none of its own
        from lstm_overfit.engine import fast, kernels
        fast.warm_up()
        deadline = time.monotonic() + 5  # a joined thread may take a moment to leave the kernel
        while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        print(len(os.listdir("/proc/self/task")), threading.active_count(),
              len(kernels.train_step.signatures), len(kernels.infer.signatures))
    """)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    tasks, threads, steps, infers = map(int, out.stdout.split())
    assert (tasks, threads) == (1, 1)
    assert steps >= 1 and infers >= 1
