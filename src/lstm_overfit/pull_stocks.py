"""Stage `pull_stocks`: daily prices from yfinance or the committed snapshot, one tidy CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from lstm_overfit.cli import run_stage
from lstm_overfit.errors import StageError
from lstm_overfit.outputs import atomic_file, write_json
from lstm_overfit.params import StocksParams, load_params
from lstm_overfit.stocks import Downloader, download_yfinance, read_snapshot, table_hash


def pull(p: StocksParams, snapshot: Path, download: Downloader | None
         ) -> tuple[pd.DataFrame, dict]:
    """The prices and their metadata; with `fallback: snapshot` a failed yfinance pull reads
    the snapshot instead and says so in the metadata."""
    source, warning = p.source, None
    if p.source == "yfinance":
        try:
            prices = download_yfinance(download, p.tickers, p.start, p.end)
        except StageError as exc:
            if p.fallback != "snapshot":
                raise
            source, warning = "snapshot", f"yfinance failed, used the snapshot: {exc}"
            print(f"warning: {warning}", file=sys.stderr)
    if source == "snapshot":
        prices = read_snapshot(snapshot, p.tickers, p.start, p.end)
    meta = {"source": source, "requested_source": p.source, "tickers": list(p.tickers),
            "start": p.start.isoformat(), "end": p.end.isoformat(), "rows": len(prices),
            "first_date": prices["date"].min(), "last_date": prices["date"].max(),
            "sha256": table_hash(prices), "warning": warning}
    return prices, meta


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
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


if __name__ == "__main__":
    sys.exit(run_stage(main))
