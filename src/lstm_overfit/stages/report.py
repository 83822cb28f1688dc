"""Stage `report`: `reports/claims.md` and its figures; also recorded in MLflow as a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lstm_overfit.figures import figure
from lstm_overfit.outputs import atomic_dir, atomic_file, read_json
from lstm_overfit.params import load_params
from lstm_overfit.records import load_results
from lstm_overfit.report import figure_names, render
from lstm_overfit.tracking import Tracker, tracked


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="report", description=__doc__)
    ap.add_argument("--claims", type=Path, required=True)
    ap.add_argument("--verdicts", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--figures", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    claims, verdicts = read_json(args.claims), read_json(args.verdicts)
    results = load_results(args.results)
    tracker = Tracker(p.mlflow.experiment, os.environ)
    tracker.connect()
    with tracked(tracker):
        with atomic_dir(args.figures) as figs:
            for name in figure_names():
                figure(name)(results, p, figs / f"{name}.png")
        with atomic_file(args.out) as tmp:
            tmp.write_text(render(verdicts, claims, results, p), encoding="utf-8")
        tags = {f"verdict.{c}": v for c, v in verdicts.items()}
        group = tracker.start("claims", [], {"kind": "claims", **tags},
                              entry_point="lstm_overfit report")
        tracker.log(group.parent, artifacts=[args.out, args.claims, args.verdicts,
                                             *sorted(args.figures.glob("*.png"))])
