"""`python -m lstm_overfit <stage> [args]`: the entry point of every DVC stage.

The process settings that make results bit-reproducible are applied here, before the stage
module (and with it numpy) is imported: OpenBLAS reads them when it loads. The stage itself
runs in a child of the warm server (server.py, infrastructure/warm.py), which has imported
the stages' libraries once; `LSTM_OVERFIT_WARM=0` runs it in this process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lstm_overfit.infrastructure import warm
from lstm_overfit.infrastructure.runtime import pin_runtime

PACKAGE = Path(__file__).parent


def main(argv: list[str] | None = None) -> int:
    pin_runtime()
    args = sys.argv[1:] if argv is None else argv
    if argv is None and os.environ.get(warm.SWITCH, "1") != "0":
        command = [sys.executable, *warm.interpreter_options(), "-c",
                   "import sys; from lstm_overfit.server import serve; serve(sys.argv[1])"]
        code = warm.run(args, warm.build_key(PACKAGE, dict(os.environ)), command)
        if code is not None:
            return code
    from lstm_overfit.cli import run_stage

    return run_stage(args)


if __name__ == "__main__":
    sys.exit(main())
