"""What every stage's entry point shares: finding the stage, one-line errors, clean interruption."""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys

from lstm_overfit import stages
from lstm_overfit.errors import StageError


def stage_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(stages.__path__))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_stage(argv: list[str]) -> int:
    """Run `<stage> [args]`: the stage module's main(args). A StageError becomes one line on
    stderr and exit code 2; SIGTERM (how DVC and CI stop a stage) is treated like Ctrl-C, so
    MLflow runs end KILLED."""
    names = stage_names()
    if not argv or argv[0] not in names:
        print(f"usage: python -m lstm_overfit <stage> [args]; stages: {', '.join(names)}",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    module = importlib.import_module(f"{stages.__name__}.{argv[0]}")
    try:
        module.main(argv[1:])
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
