"""Stage `generate@<name>`: the article's data, regenerated from `datasets.<name>`."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.datasets.arrays import save_dataset
from lstm_overfit.datasets.synthetic import make_dataset
from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.outputs import atomic_dir
from lstm_overfit.params import load_params


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="generate", description=__doc__)
    ap.add_argument("name")
    ap.add_argument("out", type=Path)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.name not in params.datasets:
        raise StageError(f"params.yaml: datasets.{args.name} is missing")
    with atomic_dir(args.out) as tmp:
        save_dataset(make_dataset(params.datasets[args.name]), tmp)
