"""The article's model, trained for several (variant, seed) runs at once.

Each run is its own LSTM + Dense branch with its own input; the branches share nothing but
the optimizer object, whose Adam update is per weight. The summed loss therefore gives each
branch exactly the gradient it would get alone, so one fit of N branches is N independent
trainings. It is ~2x faster per model on 2 CPU cores than one model at a time (see bench/).
Each branch also gets its own batch order, drawn from its seed, so nothing couples the runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lstm_overfit.data import Dataset
from lstm_overfit.measure import eval_epochs, mse


@dataclass(frozen=True)
class RunSpec:
    """One training run: a model variant and the seed of its weights and batch order."""

    variant: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}_seed{self.seed}"


@dataclass(frozen=True)
class ModelSpec:
    units: int
    dropout_rate: float
    l2: float


@dataclass(frozen=True)
class RunResult:
    """What one run measured. `loss` is Keras' training loss per epoch (1-based list index+1)."""

    run: RunSpec
    loss: tuple[float, ...]
    eval_epochs: tuple[int, ...]
    train_mse: tuple[float, ...]
    val_mse: tuple[float, ...]


def configure_determinism() -> None:
    """Same params and code give the same weights, bit for bit, on CPU."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()


def build_model(input_shape: tuple[int, int], spec: ModelSpec, runs: list[RunSpec]):
    """One branch per run: LSTM(units) [+ Dropout] + Dense(1), Adam, MSE, as in the article.

    The initial weights depend only on the seed, so variants with the same seed start from
    the same point and differ only by their regulariser.
    """
    import keras

    inputs, outputs = [], []
    for i, run in enumerate(runs):
        reg = keras.regularizers.L2(spec.l2) if run.variant == "l2" else None
        inp = keras.Input(shape=input_shape, name=f"x{i}")
        h = keras.layers.LSTM(
            spec.units,
            kernel_initializer=keras.initializers.GlorotUniform(seed=3 * run.seed),
            recurrent_initializer=keras.initializers.Orthogonal(seed=3 * run.seed + 1),
            kernel_regularizer=reg,
            recurrent_regularizer=reg,
            name=f"lstm{i}",
        )(inp)
        if run.variant == "dropout":
            h = keras.layers.Dropout(spec.dropout_rate, seed=run.seed, name=f"dropout{i}")(h)
        out = keras.layers.Dense(
            1, kernel_initializer=keras.initializers.GlorotUniform(seed=3 * run.seed + 2),
            name=f"run{i}",
        )(h)
        inputs.append(inp)
        outputs.append(out)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(), loss=["mse"] * len(runs))
    return model


def branch_model(model, index: int):
    """The stand-alone Keras model of one run, sharing the trained layers."""
    import keras

    return keras.Model(model.inputs[index], model.outputs[index], name=f"run{index}")


def batch_orders(n: int, seeds: list[int], epochs: int) -> np.ndarray:
    """(epochs, runs, n) permutations: each run's batch order, epoch by epoch, from its seed.

    Epoch e's order does not depend on how many epochs follow, so the state after 50 epochs
    of a long run is what a 50-epoch run gives.
    """
    rngs = [np.random.default_rng([seed, n]) for seed in seeds]
    return np.stack(
        [np.stack([rng.permutation(n) for rng in rngs]) for _ in range(epochs)]
    ).astype(np.int32)


def batch_dataset(x: np.ndarray, y: np.ndarray, orders: np.ndarray, batch_size: int):
    """A tf.data pipeline of per-run batches following `orders`; an epoch ends on its last
    (possibly short) batch, as with Keras' own shuffling."""
    import tensorflow as tf

    runs = orders.shape[1]
    xt, yt = tf.constant(x), tf.constant(y)

    def one_epoch(order):
        return tf.data.Dataset.from_tensor_slices(tf.transpose(order)).batch(batch_size)

    def gather(idx):
        xs = tuple(tf.gather(xt, idx[:, r]) for r in range(runs))
        ys = tuple(tf.gather(yt, idx[:, r]) for r in range(runs))
        return xs, ys

    return (tf.data.Dataset.from_tensor_slices(orders).flat_map(one_epoch)
            .map(gather).prefetch(2))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def _measure_callback(data: Dataset, n_runs: int, epochs_to_eval: tuple[int, ...]):
    import keras

    class Measure(keras.callbacks.Callback):
        """Keras' per-epoch loss of each branch, and inference-mode MSE at chosen epochs."""

        def __init__(self) -> None:
            super().__init__()
            self.loss: list[list[float]] = [[] for _ in range(n_runs)]
            self.train_mse: list[list[float]] = [[] for _ in range(n_runs)]
            self.val_mse: list[list[float]] = [[] for _ in range(n_runs)]
            self._eval = set(epochs_to_eval)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            for r in range(n_runs):
                # With one output Keras reports only `loss`.
                self.loss[r].append(float(logs[f"run{r}_loss"] if n_runs > 1 else logs["loss"]))
            if epoch + 1 in self._eval:
                # predict_on_batch runs in inference mode: no dropout; MSE has no L2 term.
                for x, y, store in ((data.x_train, data.y_train, self.train_mse),
                                    (data.x_val, data.y_val, self.val_mse)):
                    preds = self.model.predict_on_batch([x] * n_runs)
                    preds = preds if isinstance(preds, list | tuple) else [preds]
                    for r in range(n_runs):
                        store[r].append(mse(preds[r], y))

    return Measure()


def train_runs(data: Dataset, spec: ModelSpec, runs: list[RunSpec], epochs: int,
               checkpoints: tuple[int, ...], batch_size: int, callbacks: list | None = None
               ) -> tuple[list[RunResult], object]:
    """Train every run for `epochs` epochs; return their measurements and the Keras model."""
    configure_determinism()
    n = len(data.x_train)
    model = build_model(data.x_train.shape[1:], spec, runs)
    orders = batch_orders(n, [r.seed for r in runs], epochs)
    epochs_to_eval = eval_epochs(epochs, checkpoints)
    measure = _measure_callback(data, len(runs), epochs_to_eval)
    model.fit(batch_dataset(data.x_train, data.y_train, orders, batch_size), epochs=epochs,
              steps_per_epoch=steps_per_epoch(n, batch_size), shuffle=False, verbose=0,
              callbacks=[measure, *(callbacks or [])])
    results = [
        RunResult(run=run, loss=tuple(measure.loss[r]), eval_epochs=epochs_to_eval,
                  train_mse=tuple(measure.train_mse[r]), val_mse=tuple(measure.val_mse[r]))
        for r, run in enumerate(runs)
    ]
    return results, model
