"""Process settings every stage shares, applied before numpy or TensorFlow load."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# What makes the bits the same on every machine of this kind (some have AVX-512, some not):
# - The engine's products and kernels add in one order on every instruction set (gemm.c,
#   kernels.py), so they need no pin and run at the CPU's full width.
# - OpenBLAS picks its kernels by CPU at load time, and AVX-512 kernels add in another order;
#   every machine of this kind has the Haswell set (AVX2 + FMA), so numpy's own products
#   (matplotlib's transforms of the committed figures' coordinates) all use that one.
# - One OpenBLAS thread: runs train side by side, one per core (engine/fast.py).
# - TensorFlow (the Keras engine; the side process that saves the models) caps oneDNN at AVX2
#   for the same reason.
PINNED_ENV = {
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # No CUDA probing (and its error-level lines) on machines that have no GPU.
    "CUDA_VISIBLE_DEVICES": "",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


HIDDEN_GPUS = "LSTM_OVERFIT_HID_GPUS"  # "1": pin_runtime, not the user, hid the GPUs


def pin_runtime(env: MutableMapping[str, str] = os.environ) -> None:
    """Set the settings above unless the user set them (so each one's effect can be
    measured). Must run before numpy is imported: OpenBLAS reads them when it loads."""
    if "CUDA_VISIBLE_DEVICES" not in env:
        env.setdefault(HIDDEN_GPUS, "1")
    for key, value in PINNED_ENV.items():
        env.setdefault(key, value)


def show_gpus(env: MutableMapping[str, str] = os.environ) -> None:
    """Undo pin_runtime's hiding of the GPUs (the Keras engine trains on one if there is
    one), before TensorFlow loads; GPUs the user hid stay hidden."""
    if env.get(HIDDEN_GPUS) == "1" and env.get("CUDA_VISIBLE_DEVICES") == "":
        del env["CUDA_VISIBLE_DEVICES"]
        env[HIDDEN_GPUS] = "0"


# TensorFlow's C++ start-up lines that ignore TF_CPP_MIN_LOG_LEVEL (absl logs them before it
# is initialised): on a CPU-only machine they are noise, one of them at error level.
IMPORT_NOISE = ("absl::InitializeLog", "cudart_stub.cc", "cuInit", "cuda_executor.cc",
                "cpu_feature_guard.cc", "oneDNN custom operations are on",
                "computer_vision", "TensorFlow binary is optimized",
                "rebuild TensorFlow with the appropriate compiler flags")


def import_keras():
    """`import keras` (TensorFlow backend), with TensorFlow's known start-up noise on stderr
    filtered out. The C++ lines go to file descriptor 2 directly, so only redirecting the
    descriptor catches them; every other line is passed on unchanged."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    # Keras imports scikit-learn for its sklearn wrappers whenever it is installed (MLflow
    # installs it): 1.3 s of every stage's start, for wrappers this project never uses. Keras
    # treats it as absent when the import fails; a later `import sklearn` works as usual.
    hide_sklearn = "sklearn" not in sys.modules
    if hide_sklearn:
        sys.modules["sklearn"] = None  # type: ignore[assignment]
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras
            import tensorflow  # noqa: F401  (its noise is printed at import)
        finally:
            if hide_sklearn:
                del sys.modules["sklearn"]
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not any(noise in line for noise in IMPORT_NOISE):
                    sys.stderr.write(line)
            sys.stderr.flush()
    return keras
