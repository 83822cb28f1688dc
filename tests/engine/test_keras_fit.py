"""The Keras engine: plain `keras.Model.fit` from the fast engine's weights and batch order,
measured and stopped as the fast engine measures and stops."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.datasets.synthetic import random_split
from lstm_overfit.engine import keras_fit
from lstm_overfit.engine.cluster import trainer
from lstm_overfit.engine.fast import Job, Network, RunSpec, Schedule, train_all
from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.runtime import import_keras

# Largest relative difference of a loss or a measured error between the engines over these
# tests' few epochs: both are Keras' float32 math, summed in another order.
AGREE = 1e-4


@pytest.fixture(scope="module")
def keras():
    return import_keras()


def data(n: int = 70) -> Dataset:
    x, y = random_split(n, 6, 2, 0)
    xv, yv = random_split(20, 6, 2, 1)
    return Dataset(x, y, xv, yv)


def tokens(n: int = 70, steps: int = 7, vocab: int = 12, unique: bool = False) -> Dataset:
    """Token ids padded at the end as TextVectorization writes them; with `unique`, no token
    appears twice in the whole set."""
    rng = np.random.default_rng(0)
    if unique:
        x = (rng.permutation(vocab - 2)[:n * steps] + 2).reshape(n, steps).astype(np.int32)
    else:
        x = rng.integers(2, vocab, (n, steps)).astype(np.int32)
    x[:, 5:] = 0
    y = (rng.random((n, 1)) > 0.5).astype(np.float32)
    return Dataset(x, y, x[:20], y[:20], vocab=vocab)


def job(d: Dataset, net: Network, run: RunSpec, epochs: int, **sched) -> Job:
    return Job("t", d, net, run, Schedule(epochs, tuple(range(1, epochs + 1)), **sched), 32)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= AGREE * abs(a)


@pytest.mark.parametrize(("net", "run", "d"), [
    (Network(8, 2), RunSpec("baseline", 1), data()),
    (Network(8, 2), RunSpec("l2", 2, l2=1e-2), data()),
    (Network(6, 4, "classification", 500), RunSpec("baseline", 0), tokens(60, 7, 500, True)),
], ids=["regression", "l2", "classifier"])
def test_keras_runs_agree_with_the_fast_engine(keras, net, run, d):
    jobs = [job(d, net, run, 5)]
    (fast,) = train_all(jobs)
    events = []
    (ker,) = keras_fit.train_all(jobs, events.append)
    assert len(ker.loss) == 5 and all(close(a, b) for a, b in zip(fast.loss, ker.loss, strict=True))
    for a, b in zip(fast.measurements, ker.measurements, strict=True):
        assert a.epoch == b.epoch and close(a.train_error, b.train_error)
        assert close(a.val_error, b.val_error) and a.train_acc == b.train_acc
    assert fast.loss[0] != fast.loss[-1]  # it trained: the agreement is not trivial
    assert [e.epoch for e in events] == [1, 2, 3, 4, 5] and events[-1].done
    assert set(ker.weights) == set(fast.weights)


def test_keras_3_adam_moves_a_token_seen_twice_in_a_batch_further_than_adam(keras):
    """Keras 3's Adam takes an Embedding's gradient one occurrence at a time: a token seen k
    times in a batch adds k squared gradients to Adam's second moment and k steps to its row,
    where Adam (Keras 2, PyTorch, the fast engine) squares the summed gradient and moves each
    element at most the learning rate on its first step. So the engines agree on a classifier
    only while no token repeats within a batch (above); the cross-check measures what the
    difference does to C8 (README)."""
    from lstm_overfit.engine.fast import ADAM_LR, Trainer, initial_weights

    d, net, run = tokens(), Network(6, 4, "classification", 12), RunSpec("baseline", 0)
    w = initial_weights(net, 0)
    ours = Trainer(job(d, net, run, 1), w)
    idx = np.arange(32)
    ours.step(idx, None)
    model = keras_fit.article_model(keras, net, run, d.x_train.shape[1:])
    model.set_weights([w[k] for k in keras_fit.weight_names(net)])
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    model.train_on_batch(d.x_train[idx], d.y_train[idx])
    theirs = model.get_weights()[0]
    assert np.abs(ours.w["embedding"] - w["embedding"]).max() <= ADAM_LR * 1.001
    assert np.abs(theirs - w["embedding"]).max() > 1.5 * ADAM_LR


def test_every_epoch_has_a_fresh_order_from_the_seed_and_the_epoch(keras):
    d = data(70)
    ds, steps = keras_fit.batches(keras, job(d, Network(4, 2), RunSpec("baseline", 5), 3))
    assert steps == 3 and len(ds) == 9
    first, second = keras_fit.epoch_order(5, 1, 70), keras_fit.epoch_order(5, 2, 70)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(ds[0][0], d.x_train[first[:32]])
    np.testing.assert_array_equal(ds[2][1], d.y_train[first[64:]])  # the short last batch
    np.testing.assert_array_equal(ds[3][0], d.x_train[second[:32]])
    # ... and the same orders in any other process
    code = ("from lstm_overfit.engine.keras_fit import epoch_order;"
            "print(epoch_order(5, 1, 70).tolist(), epoch_order(5, 2, 70).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{first.tolist()} {second.tolist()}"


def test_a_run_stops_once_memorized_and_dropout_runs_repeat(keras):
    d = data()
    drop = RunSpec("dropout", 0, dropout=0.5)
    stopped, full = keras_fit.train_all([job(d, Network(6, 2), drop, 6, min_epochs=3, stop_below=1e9),
                                         job(d, Network(6, 2), drop, 6)])
    assert len(stopped.loss) == 3 and stopped.stopped_early and not full.stopped_early
    assert stopped.loss == full.loss[:3]  # the same dropout draws: one run, cut short


def test_measurements_are_inference_mode(keras):
    from lstm_overfit.runs import keras_model

    d, net, run = data(), Network(6, 2), RunSpec("dropout", 0, dropout=0.5)
    (h,) = keras_fit.train_all([job(d, net, run, 2)])
    pred = keras_model(h.weights, net, run, d.x_train.shape[1:]).predict(d.x_train, verbose=0)
    assert h.measurements[-1].train_error == pytest.approx(
        float(np.mean((pred - d.y_train) ** 2)), rel=1e-5)


def test_the_keras_engine_is_not_sent_to_a_dask_cluster(monkeypatch):
    import dask.config

    monkeypatch.setitem(dask.config.config, "scheduler-address", "tcp://127.0.0.1:9")
    with pytest.raises(StageError, match="engine: keras trains in the stage's process"):
        trainer("keras")
    monkeypatch.setitem(dask.config.config, "scheduler-address", None)
    assert trainer("keras") is keras_fit.train_all and trainer("fast") is train_all


FIT_ORDERS = """
import numpy as np
import keras

class Recorder(keras.Model):
    seen = []

    def train_step(self, data):
        Recorder.seen.append(np.asarray(data[0])[:, 0, 0].astype(int).tolist())
        return super().train_step(data)

def distinct_orders():
    Recorder.seen = []
    inp = keras.Input((1, 1))
    model = Recorder(inp, keras.layers.Dense(1)(keras.layers.Flatten()(inp)))
    model.compile("adam", "mse", run_eagerly=True)
    x = np.arange(64, dtype="float32").reshape(64, 1, 1)
    model.fit(x, np.zeros((64, 1), "float32"), batch_size=32, epochs=3, shuffle=True, verbose=0)
    return len({str(Recorder.seen[i] + Recorder.seen[i + 1]) for i in (0, 2, 4)})

unseeded = distinct_orders()  # first: this process has never been seeded
keras.utils.set_random_seed(0)
print(unseeded, distinct_orders())
"""


def test_a_seeded_keras_fit_shuffles_every_epoch_alike():
    """Why the Keras engine draws its own order: Keras 3.15's `fit(shuffle=True)` after
    `keras.utils.set_random_seed` feeds one permutation every epoch (README, "The Keras
    engine"); without a seed, as in the article, each epoch gets a fresh one. (One process
    for both: TensorFlow's import is most of the test.)"""
    out = subprocess.run([sys.executable, "-c", FIT_ORDERS], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-2:] == ["3", "1"]


def test_a_saved_model_s_bytes_do_not_depend_on_the_models_built_before_it(keras, tmp_path):
    """Keras numbers unnamed layers by how many it made before (`lstm_3`), and a weights
    file carries the names: the side process builds each run's model for MLflow before it
    saves the weights, and a stage's files must not depend on how many runs came first."""
    net, run = Network(3, 1), RunSpec("dropout", 0, 0.5)

    def saved(path):
        model = keras_fit.article_model(keras, net, run, (4, 1))
        model.set_weights([np.full_like(w, 0.5) for w in model.get_weights()])
        model.save_weights(path)
        return path.read_bytes()

    first = saved(tmp_path / "a.weights.h5")
    keras_fit.article_model(keras, Network(2, 1, "classification", 5), run, (4,))
    assert saved(tmp_path / "b.weights.h5") == first
