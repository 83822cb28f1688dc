"""What every stage's entry point shares: finding the stage, one-line errors, clean interruption."""

from __future__ import annotations

import importlib
import signal
import sys

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.code import stage_modules


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_stage(argv: list[str]) -> int:
    """Run `<stage> [args]`: the stage module's main(args). A StageError becomes one line on
    stderr and exit code 2; SIGTERM (how DVC and CI stop a stage) is treated like Ctrl-C, so
    MLflow runs end KILLED."""
    names = stage_modules()
    if not argv or argv[0] not in names:
        print(f"usage: python -m lstm_overfit <stage> [args]; stages: {', '.join(names)}",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    module = importlib.import_module(f"lstm_overfit.stages.{argv[0]}")
    try:
        module.main(argv[1:])
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
