"""The process settings every stage shares: the pins, and `import keras` without its noise or
the scikit-learn import Keras would make for wrappers the project never uses."""

from __future__ import annotations

import subprocess
import sys

from lstm_overfit.infrastructure.runtime import (
    HIDDEN_GPUS,
    IMPORT_NOISE,
    PINNED_ENV,
    pin_runtime,
    show_gpus,
)


def test_pins_leave_what_the_user_set():
    env = {"OPENBLAS_CORETYPE": "SkylakeX"}
    pin_runtime(env)
    assert env == {**PINNED_ENV, "OPENBLAS_CORETYPE": "SkylakeX", HIDDEN_GPUS: "1"}


def test_the_keras_engine_sees_the_gpus_that_only_the_pins_hid():
    env: dict[str, str] = {}
    pin_runtime(env)
    show_gpus(env)
    assert "CUDA_VISIBLE_DEVICES" not in env
    user = {"CUDA_VISIBLE_DEVICES": ""}
    pin_runtime(user)
    show_gpus(user)
    assert user["CUDA_VISIBLE_DEVICES"] == "" and HIDDEN_GPUS not in user


def test_import_keras_is_quiet_and_leaves_sklearn_importable():
    code = (
        "import sys\n"
        "from lstm_overfit.infrastructure.runtime import import_keras\n"
        "keras = import_keras()\n"
        "print('sklearn loaded by keras:', 'sklearn' in sys.modules)\n"
        "from keras.src.wrappers import fixes\n"
        "print('keras wrappers see sklearn:', fixes.sklearn is not None)\n"
        "import sklearn.base\n"
        "print('sklearn after:', sklearn.base.BaseEstimator.__name__)\n"
        "print('backend:', keras.backend.backend())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.splitlines() == [
        "sklearn loaded by keras: False", "keras wrappers see sklearn: False",
        "sklearn after: BaseEstimator", "backend: tensorflow"]
    assert not any(noise in proc.stderr for noise in IMPORT_NOISE), proc.stderr
