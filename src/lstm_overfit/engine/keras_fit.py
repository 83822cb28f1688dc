"""The Keras engine (`engine: keras`): the article's code, `keras.Model.fit`, for the cross-check.

Each run is the article's Sequential model compiled with Adam and MSE (or binary cross-entropy)
and trained by one `fit` call, batch 32, from the same initial weights as the fast engine. Two
things differ from the article's few lines, each because the fast engine's runs are measured
that way:
- The batches come from `Batches`, every epoch in a fresh order drawn from the run's seed and
  the epoch (the fast engine's order). `fit(shuffle=True)` with a global seed set repeats one
  permutation every epoch, which memorizes sooner (README, "The Keras engine").
- `Measure`, a Keras callback, measures in inference mode at the schedule's epochs and stops the
  run once it has memorized; it sends the same events as the fast engine.

TensorFlow picks the device: on a machine with a GPU the LSTM runs there unchanged. Its numbers
agree with the fast engine's to float32 rounding per step, not bit for bit, and may differ
between machines (TensorFlow's kernels follow the CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from lstm_overfit.engine.fast import (
    ORDER_STREAM,
    WEIGHT_NAMES,
    Event,
    History,
    Job,
    Measurement,
    Network,
    RunSpec,
    initial_weights,
    score,
    steps_per_epoch,
)

PREDICT_BATCH = 512  # rows per inference-mode batch when measuring
PROBABILITY_CLIP = 1e-7  # keras.config.epsilon(): BCE clips probabilities as Keras does


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training rows in epoch `epoch` (1-based): the fast engine's."""
    return np.random.default_rng([seed, ORDER_STREAM, epoch]).permutation(n)


def article_model(keras, network: Network, run: RunSpec, input_shape: tuple[int, ...],
                  dropout_seed: int | None = None):
    """The article's model: [Embedding(mask_zero)] -> LSTM(units) -> [Dropout] -> Dense(1
    [, sigmoid]), with Keras' own initializers (replaced by `set_weights` where it matters).
    `dropout_seed` seeds the Dropout layer's draws when it trains. The layers are named, not
    numbered by how many models the process built before (`lstm_3`): a saved file's bytes
    carry the names."""
    reg = keras.regularizers.L2(run.l2) if run.l2 else None
    if network.vocab:
        inp = keras.Input(shape=input_shape, dtype="int32", name="input_layer")
        x = keras.layers.Embedding(network.vocab, network.features, mask_zero=True,
                                   name="embedding")(inp)
    else:
        inp = keras.Input(shape=input_shape, name="input_layer")
        x = inp
    h = keras.layers.LSTM(network.units, kernel_regularizer=reg, recurrent_regularizer=reg,
                          name="lstm")(x)
    if run.dropout:
        h = keras.layers.Dropout(run.dropout, seed=dropout_seed, name="dropout")(h)
    out = keras.layers.Dense(1, activation="sigmoid" if network.vocab else None,
                             name="dense")(h)
    return keras.Model(inp, out, name=run.name)


def weight_names(network: Network) -> tuple[str, ...]:
    """The names of `model.get_weights()`, in its order."""
    return (("embedding",) if network.vocab else ()) + WEIGHT_NAMES


def batches(keras, job: Job):
    """Every epoch's batches as one `PyDataset`: item i is batch i % steps of epoch
    i // steps + 1, in that epoch's order (the last batch short). Indexed by the global
    batch, so the order cannot depend on when Keras asks for a batch or prefetches one."""
    x, y = job.data.x_train, job.data.y_train
    n, size = len(x), job.batch_size
    steps = steps_per_epoch(n, size)

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps * job.schedule.epochs

        def __getitem__(self, i: int):
            epoch, b = divmod(i, steps)
            idx = epoch_order(job.run.seed, epoch + 1, n)[b * size:(b + 1) * size]
            return x[idx], y[idx]

    return Batches(), steps


def measure(model, job: Job, epoch: int) -> Measurement:
    """Training and validation error (and accuracy) in inference mode, scored as the fast
    engine scores (a classifier's probability back to its logit, clipped as Keras clips)."""
    parts = []
    for x, y in ((job.data.x_train, job.data.y_train), (job.data.x_val, job.data.y_val)):
        out = model.predict(x, batch_size=PREDICT_BATCH, verbose=0)[:, 0].astype(np.float64)
        if job.network.task == "classification":
            p = np.clip(out, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
            out = np.log(p) - np.log1p(-p)
        parts.append(score(out, y[:, 0], job.network.task))
    (train_err, train_acc), (val_err, val_acc) = parts
    return Measurement(epoch, train_err, val_err, train_acc, val_acc)


def measuring_callback(keras, job: Job, index: int, history: History,
                       report: Callable[[Event], None]):
    """A Keras callback: each epoch's training-mode loss (the compiled metric, which leaves
    the L2 penalty out as the fast engine's loss does), inference-mode measurements at the
    schedule's epochs, and `stop_training` once the run has memorized."""
    schedule = job.schedule
    evals = set(schedule.eval_epochs)

    class Measure(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.pending: list[float] = []

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            epoch += 1  # Keras counts from 0
            loss = float(logs["fit_loss"])
            history.loss.append(loss)
            self.pending.append(loss)
            if epoch not in evals:
                return
            m = measure(self.model, job, epoch)
            history.measurements.append(m)
            done = epoch == schedule.epochs
            if (schedule.stop_below is not None and epoch >= schedule.min_epochs
                    and m.train_error <= schedule.stop_below):
                done = history.stopped_early = epoch < schedule.epochs
                self.model.stop_training = True
            report(Event(index, epoch, tuple(self.pending), m, done))
            self.pending = []

    return Measure()


def fit_run(keras, job: Job, weights: dict[str, np.ndarray], index: int,
            report: Callable[[Event], None]) -> History:
    """One run: `model.fit` to the end of its schedule (or until it has memorized)."""
    model = article_model(keras, job.network, job.run, job.data.x_train.shape[1:], job.run.seed)
    names = weight_names(job.network)
    model.set_weights([weights[k] for k in names])
    classify = job.network.task == "classification"
    loss = keras.losses.BinaryCrossentropy() if classify else keras.losses.MeanSquaredError()
    metric = (keras.metrics.BinaryCrossentropy(name="fit_loss") if classify
              else keras.metrics.MeanSquaredError(name="fit_loss"))
    model.compile(optimizer=keras.optimizers.Adam(), loss=loss, metrics=[metric])
    history = History(job)
    data, steps = batches(keras, job)
    model.fit(data, epochs=job.schedule.epochs, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=[measuring_callback(keras, job, index, history, report)])
    history.weights = {k: np.asarray(w, np.float32)
                       for k, w in zip(names, model.get_weights(), strict=True)}
    return history


def _not_retracing(record: logging.LogRecord) -> bool:
    """Each run's predict function traces once per set size; TensorFlow warns of retracing
    from the third model on, about the run-by-run loop that this engine is by design."""
    return "triggered tf.function retracing" not in record.getMessage()


def train_all(jobs: list[Job], on_event: Callable[[Event], None] | None = None) -> list[History]:
    """Train every job with Keras, one after the other (TensorFlow spreads each over the
    cores, or runs it on a GPU), and return their histories in the order of `jobs`;
    `on_event` as fast.train_all."""
    from lstm_overfit.infrastructure.runtime import import_keras, show_gpus

    show_gpus()
    keras = import_keras()
    import tensorflow as tf

    # The same bits on a rerun on this machine (TensorFlow may otherwise reorder its sums).
    tf.config.experimental.enable_op_determinism()
    logging.getLogger("tensorflow").addFilter(_not_retracing)  # added once, however often called
    report = on_event or (lambda ev: None)
    out = []
    for i, job in enumerate(jobs):
        keras.utils.clear_session()
        out.append(fit_run(keras, job, initial_weights(job.network, job.run.seed), i, report))
    return out
