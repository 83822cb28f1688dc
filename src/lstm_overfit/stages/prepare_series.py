"""Stage `prepare_series@<name>`: a user's CSV (params.yaml `series.<name>`) checked, split by
time, standardized on its training part and windowed."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.datasets.series import prepare, read_table, save_prepared, series_spec
from lstm_overfit.infrastructure.outputs import atomic_dir
from lstm_overfit.params import load_params


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="prepare_series", description=__doc__)
    ap.add_argument("name")
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    spec = series_spec(p, args.name)
    prepared = prepare(read_table(args.csv, spec), spec, str(args.csv))
    with atomic_dir(args.out) as tmp:
        save_prepared(prepared, tmp)
