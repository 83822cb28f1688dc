"""What every stage's entry point shares: one-line errors and clean interruption."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from lstm_overfit.errors import StageError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_stage(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> int:
    """Run a stage's main; turn a StageError into one line on stderr and exit code 2."""
    # DVC and CI stop a stage with SIGTERM: treat it like Ctrl-C so MLflow runs end KILLED.
    signal.signal(signal.SIGTERM, _interrupt)
    # TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) would bury the stage's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        main(argv)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
