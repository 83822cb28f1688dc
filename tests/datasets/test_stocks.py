"""Stock prices: the yfinance path against fakes with yfinance 1.x's real shapes, the
snapshot path, windowing, the split and the scaling. No network anywhere."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from lstm_overfit.datasets.arrays import log_returns
from lstm_overfit.datasets.stocks import (
    TIDY_COLUMNS,
    download_yfinance,
    prepare,
    pull,
    read_snapshot,
    ticker_file,
    windows,
)
from lstm_overfit.errors import StageError
from lstm_overfit.params import Stocks

D = dt.date
SNAP_HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def yf_frame(tickers: list[str], days: int = 5, failed: tuple[str, ...] = ()) -> pd.DataFrame:
    """What `yf.download(..., auto_adjust=False)` returns in yfinance 1.x: (Price, Ticker)
    MultiIndex columns even for one ticker, index named Date, a failed ticker all NaN."""
    index = pd.DatetimeIndex(pd.bdate_range("2020-01-02", periods=days), name="Date")
    fields = ["Adj Close", "Close", "High", "Low", "Open", "Volume"]
    cols = pd.MultiIndex.from_product([fields, tickers], names=["Price", "Ticker"])
    data = np.empty((days, len(cols)))
    for j, (field, ticker) in enumerate(cols):
        base = 100.0 + 10 * tickers.index(ticker) + np.arange(days)
        data[:, j] = np.nan if ticker in failed else (base * 1000 if field == "Volume" else base)
    return pd.DataFrame(data, index=index, columns=cols)


class FakeDownload:
    def __init__(self, result=None, exc: Exception | None = None):
        self.result, self.exc, self.calls = result, exc, []

    def __call__(self, tickers, **kwargs):
        self.calls.append((tickers, kwargs))
        if self.exc:
            raise self.exc
        return self.result


def stock_params(**kw) -> Stocks:
    base = dict(source="snapshot", tickers=("AAA",), start=D(2020, 1, 1), end=D(2020, 2, 11),
                price="adj_close", fallback="none", lookback=3, horizon=1, train_fraction=0.5)
    return Stocks(**{**base, **kw})


@pytest.fixture
def snapshot(tmp_path):
    folder = tmp_path / "snap"
    folder.mkdir()
    dates = pd.bdate_range("2020-01-01", periods=30)
    for k, t in enumerate(("AAA", "BBB")):
        rows = [f"{d:%Y-%m-%d},{p},{p + 1},{p - 1},{p},{p * 0.9},{1000 + i}"
                for i, (d, p) in enumerate(zip(dates, 50.0 + k + np.sin(np.arange(30)), strict=True))]
        (folder / f"{t}.csv").write_text(SNAP_HEADER + "\n".join(rows) + "\n")
    return folder


def test_download_single_ticker_multiindex():
    fake = FakeDownload(yf_frame(["AAPL"]))
    df = download_yfinance(fake, ("AAPL",), D(2020, 1, 1), D(2020, 1, 8))
    assert tuple(df.columns) == TIDY_COLUMNS
    assert len(df) == 5 and df["date"].iloc[0] == "2020-01-02"
    tickers, kw = fake.calls[0]
    assert tickers == ["AAPL"]
    assert kw["start"] == "2020-01-01" and kw["end"] == "2020-01-09"  # end made inclusive
    assert kw["auto_adjust"] is False


def test_download_multi_ticker():
    df = download_yfinance(FakeDownload(yf_frame(["AAPL", "MSFT"])), ("AAPL", "MSFT"),
                           D(2020, 1, 1), D(2020, 1, 8))
    assert list(df["ticker"].unique()) == ["AAPL", "MSFT"]
    assert df[df.ticker == "MSFT"]["close"].iloc[0] == 110.0


def test_download_offline_empty_frame_fails_naming_yfinance_and_tickers():
    with pytest.raises(StageError, match=r"yfinance returned no prices for AAPL, MSFT"):
        download_yfinance(FakeDownload(pd.DataFrame()), ("AAPL", "MSFT"), D(2020, 1, 1), D(2020, 2, 1))


def test_download_partial_failure_names_the_failed_ticker():
    fake = FakeDownload(yf_frame(["AAPL", "NOPE"], failed=("NOPE",)))
    with pytest.raises(StageError, match=r"no prices for NOPE \("):
        download_yfinance(fake, ("AAPL", "NOPE"), D(2020, 1, 1), D(2020, 2, 1))


def test_download_rate_limit_error_is_one_clear_line():
    from yfinance.exceptions import YFRateLimitError

    with pytest.raises(StageError, match=r"yfinance download of AAPL failed: YFRateLimitError"):
        download_yfinance(FakeDownload(exc=YFRateLimitError()), ("AAPL",), D(2020, 1, 1), D(2020, 2, 1))


def test_pull_fallback_to_snapshot_is_recorded(snapshot, capsys):
    p = stock_params(source="yfinance", fallback="snapshot")
    prices, meta = pull(p, snapshot, FakeDownload(pd.DataFrame()))
    assert meta["source"] == "snapshot" and meta["requested_source"] == "yfinance"
    assert "yfinance returned no prices for AAA" in meta["warning"]
    assert "warning:" in capsys.readouterr().err
    assert len(prices) == 30


def test_pull_without_fallback_fails(snapshot):
    with pytest.raises(StageError, match="yfinance"):
        pull(stock_params(source="yfinance"), snapshot, FakeDownload(pd.DataFrame()))


def test_yfinance_and_snapshot_give_the_same_table_shape(snapshot):
    a, meta_a = pull(stock_params(), snapshot, None)
    b, meta_b = pull(stock_params(source="yfinance", tickers=("AAPL",)), snapshot,
                     FakeDownload(yf_frame(["AAPL"])))
    assert list(a.columns) == list(b.columns)
    assert set(meta_a) == set(meta_b)
    assert meta_a["sha256"] != meta_b["sha256"]


def test_snapshot_reads_and_cuts_the_range(snapshot):
    df = read_snapshot(snapshot, ("AAA", "BBB"), D(2020, 1, 2), D(2020, 1, 10))
    assert df["date"].min() == "2020-01-02" and df["date"].max() == "2020-01-10"
    assert tuple(df.columns) == TIDY_COLUMNS


def test_snapshot_unknown_ticker(snapshot):
    with pytest.raises(StageError, match=r"ticker ZZZ is not in the snapshot .* \(it has AAA, BBB\)"):
        read_snapshot(snapshot, ("ZZZ",), D(2020, 1, 2), D(2020, 1, 10))


@pytest.mark.parametrize("ticker", ["../AAA", "a/b", "..", "AA A"])
def test_ticker_cannot_escape_the_folder(snapshot, ticker):
    with pytest.raises(StageError, match="ticker"):
        ticker_file(snapshot, ticker)


def test_range_outside_snapshot(snapshot):
    with pytest.raises(StageError, match="outside the snapshot of AAA"):
        read_snapshot(snapshot, ("AAA",), D(2019, 1, 1), D(2020, 1, 10))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lines: lines.__setitem__(3, lines[3].replace(",", ",,", 1).replace(",,", ",", 1)
                                         .split(",")[0] + ",,1,1,1,1,5"), "NaN"),
        (lambda lines: lines.__setitem__(3, lines[3].split(",")[0] + ",0,1,1,1,1,5"), "zero or negative"),
        (lambda lines: lines.__setitem__(3, lines[3].split(",")[0] + ",-2,1,1,1,1,5"), "zero or negative"),
        (lambda lines: lines.__setitem__(3, lines[2]), "duplicate dates"),
        (lambda lines: lines.__setitem__(slice(2, 4), [lines[3], lines[2]]), "not increasing"),
    ],
)
def test_bad_source_files(snapshot, mutate, message):
    path = snapshot / "AAA.csv"
    lines = path.read_text().splitlines()
    mutate(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StageError, match=message):
        read_snapshot(snapshot, ("AAA",), D(2020, 1, 1), D(2020, 1, 10))


def test_windows_align_inputs_and_target():
    s = np.arange(10.0)
    x, y = windows(s, lookback=3, horizon=2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 1)
    np.testing.assert_array_equal(x[0, :, 0], [0, 1, 2])
    assert y[0, 0] == 4  # two steps after the window's last input (2)
    np.testing.assert_array_equal(x[-1, :, 0], [5, 6, 7])
    assert y[-1, 0] == 9


def test_windows_too_short_series():
    x, y = windows(np.arange(3.0), lookback=3, horizon=1)
    assert len(x) == 0 and len(y) == 0


def _prices(n: int, tickers=("AAA",)) -> pd.DataFrame:
    frames = []
    for k, t in enumerate(tickers):
        p = np.exp(np.cumsum(np.r_[0.0, np.linspace(-0.05, 0.05, n - 1)])) * (10 + k)
        frames.append(pd.DataFrame({"date": [f"2020-01-{i + 1:02d}" for i in range(n)], "ticker": t,
                                    "open": p, "high": p, "low": p, "close": p, "adj_close": p,
                                    "volume": 1.0}))
    return pd.concat(frames, ignore_index=True)


def test_prepare_has_no_leakage_and_scales_with_training_statistics():
    prices = _prices(21)  # 20 returns: 10 train, 10 validation
    ds, scaler = prepare(prices, stock_params(lookback=3, horizon=1))
    r = log_returns(prices["adj_close"].to_numpy())
    train_r, val_r = r[:10], r[10:]
    assert scaler.mean == pytest.approx(train_r.mean()) and scaler.std == pytest.approx(train_r.std())
    raw = lambda a: a.astype(np.float64) * scaler.std + scaler.mean  # noqa: E731
    # every training input and target comes from the training part, every validation one after it
    assert np.isin(np.round(raw(ds.x_train), 6), np.round(train_r, 6)).all()
    assert np.isin(np.round(raw(ds.y_train), 6), np.round(train_r, 6)).all()
    assert np.isin(np.round(raw(ds.x_val), 6), np.round(val_r, 6)).all()
    assert len(ds.x_train) == 10 - 3 - 1 + 1 and len(ds.x_val) == 7
    assert abs(float(ds.y_val.mean())) > 0.5  # the later, rising returns are not re-centred


def test_prepare_windows_per_ticker():
    ds, _ = prepare(_prices(21, ("AAA", "BBB")), stock_params(tickers=("AAA", "BBB")))
    assert len(ds.x_train) == 2 * 7 and len(ds.x_val) == 2 * 7


def test_prepare_too_few_rows():
    with pytest.raises(StageError, match=r"AAA: 8 rows are too few for lookback 3 \+ horizon 1"):
        prepare(_prices(8), stock_params())
