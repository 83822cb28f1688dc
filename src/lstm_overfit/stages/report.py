"""Stage `report`: `reports/claims.md` beside its figures; also recorded in MLflow as a run
with the verdicts as tags and the report, claims, verdicts and figures as artifacts."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.outputs import atomic_file, read_json
from lstm_overfit.infrastructure.tracking import Tracker, tracked
from lstm_overfit.params import load_params
from lstm_overfit.records import load_results
from lstm_overfit.reporting.report import render

DIAGNOSIS_FILE = "diagnosis.json"  # diagnose@<series> writes diagnoses/<series>/diagnosis.json


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="report", description=__doc__)
    ap.add_argument("--claims", type=Path, required=True)
    ap.add_argument("--verdicts", type=Path, required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--figures", type=Path, required=True, help="the figures stage's folder")
    ap.add_argument("--diagnoses", type=Path, required=True,
                    help="the diagnose stages' folder (one sub-folder per series)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    claims, verdicts = read_json(args.claims), read_json(args.verdicts)
    results = load_results(args.results)
    diagnoses = {}
    for name in p.series:
        path = args.diagnoses / name / DIAGNOSIS_FILE
        if not path.is_file():
            raise StageError(f"{path} is missing: run diagnose@{name} first")
        diagnoses[name] = read_json(path)
    figures = sorted(args.figures.glob("*.png"))
    if not figures:
        raise StageError(f"{args.figures} holds no figures: run the figures stage first")
    text = render(verdicts, claims, results, p, diagnoses)
    tags = {f"verdict.{c}": v for c, v in verdicts.items()}
    tags |= {f"diagnosis.{name}": d["answer"] for name, d in diagnoses.items()}
    tracker = Tracker(p.mlflow.experiment, os.environ)
    tracker.connect()
    # The run ends before the report lands. Git keeps the report, not DVC's cache, so a report
    # in place beside a run still RUNNING (the stage killed in between) would look up to date
    # to the next `dvc repro`, and no stage of it would end the dead run.
    with tracked(tracker), tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / args.out.name
        staged.write_text(text, encoding="utf-8")
        group = tracker.start("claims", [], {"kind": "claims", **tags},
                              entry_point="lstm_overfit report")
        tracker.log(group.parent, artifacts=[staged, args.claims, args.verdicts, *figures])
    with atomic_file(args.out) as tmp:
        tmp.write_text(text, encoding="utf-8")
