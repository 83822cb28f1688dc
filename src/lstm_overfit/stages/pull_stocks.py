"""Stage `pull_stocks`: daily prices from yfinance or the committed snapshot, one tidy CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstm_overfit.datasets.stocks import pull
from lstm_overfit.infrastructure.outputs import atomic_file, write_json
from lstm_overfit.params import load_params


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="pull_stocks", description=__doc__)
    ap.add_argument("--snapshot", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--meta", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params).stocks
    download = None
    if p.source == "yfinance":
        import yfinance as yf

        download = yf.download
    prices, meta = pull(p, args.snapshot, download)
    with atomic_file(args.out) as tmp:
        prices.to_csv(tmp, index=False, lineterminator="\n")
    write_json(args.meta, meta)
