"""Stage `claims`: a verdict per claim of the article, computed from measured results only."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.outputs import write_json
from lstm_overfit.params import load_params
from lstm_overfit.records import load_results
from lstm_overfit.science.catalogue import CLAIMS, headline


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="claims", description=__doc__)
    ap.add_argument("--results", type=Path, required=True, help="folder of results files")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--verdicts", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params)
    results = load_results(args.results)
    claims, verdicts = {}, {}
    for claim in CLAIMS:
        try:
            decisions = claim.judge(results, p)
        except (KeyError, LookupError) as exc:
            raise StageError(f"claim {claim.id} cannot be judged: missing results "
                             f"({exc.args[0]}); it reads {claim.reads(p)}") from None
        verdicts[claim.id] = headline(claim, decisions)
        claims[claim.id] = {part: d.as_json() for part, d in decisions.items()}
    write_json(args.out, claims, sort_keys=False)
    write_json(args.verdicts, verdicts, sort_keys=False)
