"""The sweep's data: nested sizes sharing one validation set."""

from __future__ import annotations

import numpy as np

from lstm_overfit.params import Sweep
from lstm_overfit.stages.sweep import sweep_datasets


def test_sizes_are_nested_prefixes_with_one_validation_set():
    p = Sweep(sizes=(4, 8, 16), max_steps=10, n_val=5, seq_len=3, features=2, units=2, seed=1,
              val_seed=2)
    sets = sweep_datasets(p)
    assert list(sets) == [4, 8, 16]
    np.testing.assert_array_equal(sets[16].x_train[:8], sets[8].x_train)
    np.testing.assert_array_equal(sets[4].y_train, sets[16].y_train[:4])
    assert all(s.x_val is sets[4].x_val for s in sets.values())
    assert sets[16].x_train.shape == (16, 3, 2)
