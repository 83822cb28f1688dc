"""Stage `figures`: every figure the claims name, drawn from the results into one folder.

Its own stage so that DVC's run cache keeps it: the report's Markdown is versioned in git
(`cache: false`, not a metric or plot), and DVC never run-caches a stage with such an output.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.infrastructure.outputs import atomic_dir
from lstm_overfit.params import load_params
from lstm_overfit.records import load_results
from lstm_overfit.reporting.figures import figure
from lstm_overfit.science.catalogue import figure_names


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="figures", description=__doc__)
    ap.add_argument("--results", type=Path, required=True, help="folder of results files")
    ap.add_argument("--out", type=Path, required=True, help="folder the figures replace")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    results = load_results(args.results)
    with atomic_dir(args.out) as folder:
        for name in figure_names():
            figure(name)(results, p, folder / f"{name}.png")
