"""`python -m lstm_overfit <stage> [args]`: the entry point of every DVC stage.

The process settings that make results bit-reproducible are applied here, before the stage
module (and with it numpy) is imported: OpenBLAS reads them when it loads.
"""

from __future__ import annotations

import sys

from lstm_overfit.infrastructure.runtime import pin_runtime


def main(argv: list[str] | None = None) -> int:
    pin_runtime()
    from lstm_overfit.cli import run_stage

    return run_stage(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
