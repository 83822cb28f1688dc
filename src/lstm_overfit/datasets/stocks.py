"""Daily stock prices (claim C6): pulled with yfinance or read from the committed snapshot,
then turned into standardized windows of log returns.

Both sources produce the same tidy table, so nothing downstream can tell them apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_overfit.datasets.arrays import Dataset, log_returns
from lstm_overfit.errors import StageError
from lstm_overfit.params import TICKER_PATTERN, Stocks

PRICE_FIELDS = ("open", "high", "low", "close", "adj_close")
TIDY_COLUMNS = ("date", "ticker", *PRICE_FIELDS, "volume")
# Yahoo's column names (the snapshot's header and yfinance's "Price" level) -> ours.
YAHOO_NAMES = {"Open": "open", "High": "high", "Low": "low", "Close": "close",
               "Adj Close": "adj_close", "Volume": "volume"}


def ticker_file(folder: Path, ticker: str) -> Path:
    """The snapshot file of a ticker; refuses names that could leave `folder`."""
    if not re.match(TICKER_PATTERN, ticker) or ticker in {".", ".."}:
        raise StageError(f"ticker {ticker!r}: only A-Z a-z 0-9 . ^ = - are allowed")
    path = folder / f"{ticker}.csv"
    if path.resolve().parent != folder.resolve():
        raise StageError(f"ticker {ticker!r} names a file outside {folder}")
    return path


def validate_prices(df: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Reject what would silently poison returns: NaN or non-positive prices, duplicate or
    unordered dates."""
    if df.empty:
        raise StageError(f"{origin}: no rows")
    prices = df[list(PRICE_FIELDS)]
    if prices.isna().any().any():
        raise StageError(f"{origin}: missing (NaN) prices")
    if (prices <= 0).any().any():
        raise StageError(f"{origin}: zero or negative prices")
    dates = pd.to_datetime(df["date"])
    if dates.duplicated().any():
        raise StageError(f"{origin}: duplicate dates, e.g. {dates[dates.duplicated()].iloc[0]:%Y-%m-%d}")
    if not dates.is_monotonic_increasing:
        raise StageError(f"{origin}: dates are not increasing")
    return df


def read_snapshot(folder: Path, tickers: tuple[str, ...], start: dt.date, end: dt.date
                  ) -> pd.DataFrame:
    """The tidy table of `tickers` from start to end (inclusive) out of the snapshot files."""
    frames = []
    for ticker in tickers:
        path = ticker_file(folder, ticker)
        if not path.is_file():
            have = sorted(p.stem for p in folder.glob("*.csv"))
            raise StageError(f"ticker {ticker} is not in the snapshot {folder} "
                             f"(it has {', '.join(have)})")
        raw = pd.read_csv(path)
        missing = set(YAHOO_NAMES) | {"Date"}
        missing -= set(raw.columns)
        if missing:
            raise StageError(f"{path}: missing columns {', '.join(sorted(missing))}")
        df = raw.rename(columns={"Date": "date", **YAHOO_NAMES})
        df.insert(1, "ticker", ticker)
        df = validate_prices(df[list(TIDY_COLUMNS)], str(path))
        first, last = df["date"].iloc[0], df["date"].iloc[-1]
        if start.isoformat() < first or end.isoformat() > last:
            raise StageError(f"stocks range {start}..{end} is outside the snapshot of {ticker} "
                             f"({first}..{last})")
        mask = (df["date"] >= start.isoformat()) & (df["date"] <= end.isoformat())
        frames.append(df[mask])
    return pd.concat(frames, ignore_index=True)


Downloader = Callable[..., pd.DataFrame]


def download_yfinance(download: Downloader, tickers: tuple[str, ...], start: dt.date,
                      end: dt.date) -> pd.DataFrame:
    """The tidy table from `yf.download` (passed in, so tests can fake it).

    yfinance 1.x returns (Price, Ticker) MultiIndex columns even for one ticker, does not
    raise when offline (it logs and returns an empty frame), and leaves a failed ticker's
    columns all NaN beside the others. Any of that is a failure naming the tickers.
    """
    try:
        raw = download(list(tickers), start=start.isoformat(),
                       end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                       auto_adjust=False, actions=False, progress=False, group_by="column",
                       threads=False)
    except Exception as exc:  # YFRateLimitError and network errors alike
        raise StageError(f"yfinance download of {', '.join(tickers)} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    frames, failed = [], []
    for ticker in tickers:
        part = _ticker_frame(raw, ticker)
        if part is None:
            failed.append(ticker)
        else:
            frames.append(part)
    if failed:
        raise StageError(f"yfinance returned no prices for {', '.join(failed)} "
                         f"(offline, rate-limited or unknown ticker)")
    return pd.concat(frames, ignore_index=True)


def _ticker_frame(raw: pd.DataFrame | None, ticker: str) -> pd.DataFrame | None:
    if raw is None or raw.empty or not isinstance(raw.columns, pd.MultiIndex):
        return None
    if ticker not in raw.columns.get_level_values("Ticker"):
        return None
    part = raw.xs(ticker, level="Ticker", axis=1).dropna(how="all")
    if part.empty:
        return None
    part = part.rename(columns=YAHOO_NAMES)
    missing = set(YAHOO_NAMES.values()) - set(part.columns)
    if missing:
        raise StageError(f"yfinance: {ticker} lacks {', '.join(sorted(missing))}")
    df = pd.DataFrame({"date": pd.to_datetime(part.index).strftime("%Y-%m-%d"), "ticker": ticker})
    for col in (*PRICE_FIELDS, "volume"):
        df[col] = part[col].to_numpy()
    return validate_prices(df.reset_index(drop=True), f"yfinance {ticker}")


def table_hash(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False, lineterminator="\n").encode()).hexdigest()


@dataclass(frozen=True)
class Scaler:
    """Standardization fitted on the training returns only."""

    mean: float
    std: float

    def apply(self, a: np.ndarray) -> np.ndarray:
        return ((a - self.mean) / self.std).astype(np.float32)


def windows(series: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """x[i] = series[i : i+lookback], y[i] = series[i + lookback - 1 + horizon].

    Built with Keras' `timeseries_dataset_from_array`; the target is `horizon` steps after the
    window's last input.
    """
    from lstm_overfit.infrastructure.runtime import import_keras

    keras = import_keras()
    n = len(series) - lookback - horizon + 1
    if n <= 0:
        return (np.empty((0, lookback, 1), np.float64), np.empty((0, 1), np.float64))
    ds = keras.utils.timeseries_dataset_from_array(
        series[: len(series) - horizon], series[lookback - 1 + horizon:],
        sequence_length=lookback, batch_size=n, shuffle=False)
    x, y = next(iter(ds))
    return np.asarray(x)[..., None], np.asarray(y)[:, None]


def prepare(prices: pd.DataFrame, p: Stocks) -> tuple[Dataset, Scaler]:
    """Per ticker: log returns, split by time (train first), windows inside each part;
    then standardize everything with the training part's mean and spread."""
    column = p.price
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": []}
    train_returns = []
    for ticker in p.tickers:
        rows = prices[prices["ticker"] == ticker]
        if rows.empty:
            raise StageError(f"prices have no rows for {ticker}")
        r = log_returns(rows[column].to_numpy())
        cut = int(len(r) * p.train_fraction)
        # Each part is windowed on its own: no window crosses the split, and no validation
        # return is ever an input or target of a training window.
        for name, segment in (("train", r[:cut]), ("val", r[cut:])):
            x, y = windows(segment, p.lookback, p.horizon)
            if len(x) == 0:
                raise StageError(
                    f"{ticker}: {len(rows)} rows are too few for lookback {p.lookback} + "
                    f"horizon {p.horizon} in the {name} part (stocks.train_fraction "
                    f"{p.train_fraction})")
            parts[name].append((x, y))
        train_returns.append(r[:cut])
    pooled = np.concatenate(train_returns)
    scaler = Scaler(mean=float(pooled.mean()), std=float(pooled.std()))
    if scaler.std == 0:
        raise StageError("training returns are constant: nothing to standardize by")

    def stack(name: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*parts[name], strict=True)
        return scaler.apply(np.concatenate(xs)), scaler.apply(np.concatenate(ys))

    (x_train, y_train), (x_val, y_val) = stack("train"), stack("val")
    return Dataset(x_train, y_train, x_val, y_val), scaler


def pull(p: Stocks, snapshot: Path, download: Downloader | None
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

