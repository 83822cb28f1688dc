"""Stage `prepare_stocks`: standardized windows of daily log returns, split by time."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

from lstm_overfit.datasets.arrays import save_dataset
from lstm_overfit.datasets.stocks import prepare, validate_prices
from lstm_overfit.infrastructure.outputs import atomic_dir, write_json
from lstm_overfit.params import load_params


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="prepare_stocks", description=__doc__)
    ap.add_argument("--prices", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scaler", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params).stocks
    prices = pd.read_csv(args.prices, dtype={"date": str, "ticker": str})
    for ticker, rows in prices.groupby("ticker", sort=False):
        validate_prices(rows, f"{args.prices} ({ticker})")
    dataset, scaler = prepare(prices, p)
    with atomic_dir(args.out) as tmp:
        save_dataset(dataset, tmp)
    write_json(args.scaler, {**dataclasses.asdict(scaler), "fitted_on": "training returns",
                             "column": p.price, "tickers": list(p.tickers)})
