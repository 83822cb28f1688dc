"""The model builder and the multi-run training engine, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.data import Dataset, random_split
from lstm_overfit.training import (
    ModelSpec,
    RunSpec,
    batch_dataset,
    batch_orders,
    build_model,
    train_runs,
)

SPEC = ModelSpec(units=4, dropout_rate=0.5, l2=1e-3)


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    x, y = random_split(24, 3, 2, 0)
    xv, yv = random_split(8, 3, 2, 1)
    return Dataset(x, y, xv, yv)


@pytest.mark.parametrize("variant", ["baseline", "dropout", "l2"])
def test_build_model_variants(variant):
    model = build_model((3, 2), SPEC, [RunSpec(variant, 0)])
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[1] == "LSTM" and kinds[-1] == "Dense"
    assert ("Dropout" in kinds) == (variant == "dropout")
    lstm = model.layers[1]
    assert lstm.units == 4
    has_l2 = lstm.kernel_regularizer is not None and lstm.recurrent_regularizer is not None
    assert has_l2 == (variant == "l2")
    if variant == "dropout":
        assert model.layers[2].rate == 0.5
    assert model.loss == ["mse"]
    assert type(model.optimizer).__name__ == "Adam"


def test_same_seed_same_initial_weights_across_variants():
    model = build_model((3, 2), SPEC, [RunSpec("baseline", 1), RunSpec("l2", 1), RunSpec("l2", 2)])
    lstms = [layer for layer in model.layers if type(layer).__name__ == "LSTM"]
    w = [lstm.get_weights()[0] for lstm in lstms]
    np.testing.assert_array_equal(w[0], w[1])
    assert not np.array_equal(w[1], w[2])


def test_batch_orders_are_permutations_independent_of_the_budget():
    long, short = batch_orders(10, [0, 1], 5), batch_orders(10, [0, 1], 2)
    assert long.shape == (5, 2, 10)
    np.testing.assert_array_equal(long[:2], short)
    for e in range(5):
        for r in range(2):
            assert sorted(long[e, r]) == list(range(10))
    assert not np.array_equal(long[0, 0], long[0, 1])  # each seed its own order
    assert not np.array_equal(long[0, 0], long[1, 0])  # reshuffled every epoch


def test_batch_dataset_follows_the_orders_with_a_short_last_batch():
    x = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    y = x[:, 0] * 10
    orders = batch_orders(5, [0, 3], 2)
    batches = list(batch_dataset(x, y, orders, batch_size=2).as_numpy_iterator())
    assert len(batches) == 6  # 3 batches per epoch: 2 + 2 + 1
    for b, (xs, ys) in enumerate(batches):
        epoch, k = divmod(b, 3)
        for r in range(2):
            idx = orders[epoch, r, 2 * k:2 * k + 2]
            np.testing.assert_array_equal(xs[r][:, 0, 0], idx)
            np.testing.assert_array_equal(ys[r][:, 0], idx * 10)


def test_branches_train_exactly_like_separate_models(tiny):
    runs = [RunSpec("baseline", 0), RunSpec("dropout", 1), RunSpec("l2", 2)]
    together, _ = train_runs(tiny, SPEC, runs, epochs=3, checkpoints=(2,), batch_size=8)
    alone, _ = train_runs(tiny, SPEC, [runs[1]], epochs=3, checkpoints=(2,), batch_size=8)
    assert together[1].loss == alone[0].loss
    assert together[1].val_mse == alone[0].val_mse


def test_checkpoint_of_a_long_run_equals_a_short_run(tiny):
    runs = [RunSpec("dropout", 0)]
    long, _ = train_runs(tiny, SPEC, runs, epochs=4, checkpoints=(2,), batch_size=8)
    short, _ = train_runs(tiny, SPEC, runs, epochs=2, checkpoints=(2,), batch_size=8)
    i = long[0].eval_epochs.index(2)
    assert long[0].train_mse[i] == short[0].train_mse[-1]
    assert long[0].loss[:2] == short[0].loss


def test_measurements_are_inference_mode(tiny):
    """With dropout active the Keras loss is noisy; train_mse must equal a plain predict."""
    runs = [RunSpec("dropout", 0)]
    res, model = train_runs(tiny, SPEC, runs, epochs=2, checkpoints=(2,), batch_size=8)
    pred = model.predict([tiny.x_train], verbose=0)
    assert res[0].train_mse[-1] == pytest.approx(float(np.mean((pred - tiny.y_train) ** 2)), rel=1e-5)
    assert len(res[0].loss) == 2 and res[0].eval_epochs == (1, 2)
