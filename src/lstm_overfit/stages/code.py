"""Stage `code`: per stage module, the hashes of the source files it runs (`<out>/<module>.json`),
which the stages of that module depend on (infrastructure/code.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.infrastructure.code import fingerprints, stage_modules
from lstm_overfit.infrastructure.outputs import write_json


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="code", description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    for stage, files in fingerprints([s for s in stage_modules() if s != "code"]).items():
        write_json(args.out / f"{stage}.json", files)
