"""A user's own series: a CSV read, checked, transformed, split by time and windowed.

What is accepted, and every refusal is one line naming the file and the line: a `time` column
of numbers (years, indices) or ISO 8601 dates, increasing with no repeats; a numeric `target`
and optional numeric `features`, with no empty or non-numeric cell. The last `val_fraction` of
the rows validates; each part is windowed on its own (no window crosses the split) and every
column is standardized with the training part's mean and spread only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_overfit.datasets.arrays import Dataset, load_dataset, log_returns, save_dataset
from lstm_overfit.errors import StageError
from lstm_overfit.params import Params, Series

TARGET_TRAIN, SERIES_INFO = "target_train.npy", "series.json"  # beside the dataset's arrays
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
HEADER_LINES = 1  # a data row's index i is line i + 2 of the file


def _line(i: int) -> int:
    return i + 1 + HEADER_LINES


def series_spec(p: Params, name: str) -> Series:
    """The `series.<name>` entry of params.yaml, or one line saying it is missing."""
    if name not in p.series:
        raise StageError(f"params.yaml: series.{name} is missing (it has "
                         f"{', '.join(p.series) or 'none'})")
    return p.series[name]


def read_table(path: Path, spec: Series) -> pd.DataFrame:
    """The file's time, target and feature columns as text, in file order."""
    if not path.is_file():
        raise StageError(f"{path}: no such file")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StageError(f"{path}: not a readable CSV ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0]})") from None
    wanted = [spec.time, spec.target, *spec.features]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise StageError(f"{path}: no column {', '.join(map(repr, missing))} "
                         f"(it has {', '.join(map(repr, raw.columns))})")
    return raw[wanted]


def numeric(column: pd.Series, name: str, origin: str) -> np.ndarray:
    """A column's cells as float64; the first empty, non-numeric or infinite one is an error."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        cell = column.iloc[i]
        what = "a missing value" if cell.strip().lower() in MISSING else f"{cell!r}, not a finite number"
        raise StageError(f"{origin}: line {_line(i)}, column {name!r}: {what}")
    return values


def times(column: pd.Series, name: str, origin: str) -> np.ndarray:
    """The time column as numbers (years, indices) or as dates; it must increase row by row."""
    as_numbers = pd.to_numeric(column, errors="coerce")
    if as_numbers.notna().all():
        t = as_numbers.to_numpy(np.float64)
    else:
        dates = pd.to_datetime(column, format="ISO8601", errors="coerce")
        bad = np.flatnonzero(dates.isna().to_numpy())
        if len(bad):
            i = int(bad[0])
            raise StageError(f"{origin}: line {_line(i)}, column {name!r}: {column.iloc[i]!r} "
                             "is neither a number nor an ISO 8601 date")
        t = dates.to_numpy()
    for i in range(1, len(t)):
        if t[i] == t[i - 1]:
            raise StageError(f"{origin}: line {_line(i)}, column {name!r}: time "
                             f"{column.iloc[i]!r} repeats line {_line(i - 1)}")
        if t[i] < t[i - 1]:
            raise StageError(f"{origin}: line {_line(i)}, column {name!r}: time "
                             f"{column.iloc[i]!r} comes before line {_line(i - 1)}'s "
                             f"{column.iloc[i - 1]!r}; sort the file by time")
    return t


def transformed(target: np.ndarray, spec: Series, origin: str) -> np.ndarray:
    """The series the model forecasts: the target itself, its differences, or its log
    returns (these two are one row shorter: row i is the change into row i + 1)."""
    if spec.transform == "none":
        return target
    if spec.transform == "difference":
        return np.diff(target)
    bad = np.flatnonzero(target <= 0)
    if len(bad):
        i = int(bad[0])
        raise StageError(f"{origin}: line {_line(i)}, column {spec.target!r}: {target[i]:g}; "
                         "log-return needs positive values")
    return log_returns(target)


@dataclass(frozen=True)
class Prepared:
    """The windows, and what the diagnosis reads beside them: the training part's
    standardized target series, its rows and times, and the scaling it was fitted on."""

    dataset: Dataset
    target_train: np.ndarray
    info: dict


def save_prepared(prepared: Prepared, folder: Path) -> None:
    """The dataset's files, the training target series and the info file, into `folder`."""
    save_dataset(prepared.dataset, folder)
    np.save(folder / TARGET_TRAIN, prepared.target_train, allow_pickle=False)
    with open(folder / SERIES_INFO, "w", encoding="utf-8") as f:
        json.dump(prepared.info, f, indent=2, sort_keys=True)
        f.write("\n")


def load_prepared(folder: Path) -> Prepared:
    """Read what `save_prepared` wrote."""
    with open(folder / SERIES_INFO, encoding="utf-8") as f:
        info = json.load(f)
    return Prepared(load_dataset(folder), np.load(folder / TARGET_TRAIN, allow_pickle=False), info)


def split_rows(n: int, spec: Series, origin: str) -> int:
    """Rows in the training part; each part must hold at least one window."""
    val = max(1, math.floor(n * spec.val_fraction + 0.5))
    need = spec.lookback + spec.horizon
    if n - val < need or val < need:
        raise StageError(
            f"{origin}: {n} rows{' after the ' + spec.transform if spec.transform != 'none' else ''}"
            f" are too few: lookback {spec.lookback} + horizon {spec.horizon} needs {need} rows in "
            f"the training part and {need} in the validation part (val_fraction "
            f"{spec.val_fraction}), at least {need + max(need, math.ceil(need / spec.val_fraction))}"
            " rows")
    return n - val


def windows(values: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """x[i] = values[i : i + lookback] (all columns), y[i] = the target (column 0) `horizon`
    rows after the window's last one."""
    n = len(values) - lookback - horizon + 1
    view = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)  # (rows, cols, L)
    x = np.ascontiguousarray(view[:n].transpose(0, 2, 1))
    y = values[lookback - 1 + horizon:lookback - 1 + horizon + n, :1]
    return x.astype(np.float32), np.ascontiguousarray(y, np.float32)


def prepare(table: pd.DataFrame, spec: Series, origin: str) -> Prepared:
    """Check the table, transform the target, split by time, standardize with the training
    part's statistics and window each part."""
    if table.empty:
        raise StageError(f"{origin}: no rows")
    t = times(table[spec.time], spec.time, origin)
    target = numeric(table[spec.target], spec.target, origin)
    feats = [numeric(table[c], c, origin) for c in spec.features]
    series = transformed(target, spec, origin)
    shift = len(target) - len(series)  # a feature at row i + shift goes with the change into it
    values = np.column_stack([series, *(f[shift:] for f in feats)])
    cut = split_rows(len(values), spec, origin)
    train = values[:cut]
    mean, std = train.mean(axis=0), train.std(axis=0)
    for col, name in enumerate((spec.target, *spec.features)):
        if std[col] == 0:
            what = "target" if col == 0 else "feature"
            raise StageError(f"{origin}: {what} {name!r} is constant in the training part "
                             f"(lines {_line(shift)}-{_line(shift + cut - 1)}): nothing to learn")
    scaled = (values - mean) / std
    x_train, y_train = windows(scaled[:cut], spec.lookback, spec.horizon)
    x_val, y_val = windows(scaled[cut:], spec.lookback, spec.horizon)
    stamps = table[spec.time].iloc[shift:].tolist()
    info = {
        "csv": origin, "rows": len(values), "train_rows": cut, "val_rows": len(values) - cut,
        "first": stamps[0], "train_last": stamps[cut - 1], "val_first": stamps[cut],
        "last": stamps[-1], "transform": spec.transform, "columns": [spec.target, *spec.features],
        "mean": mean.tolist(), "std": std.tolist(), "time_kind": "number" if t.dtype.kind == "f"
        else "date",
    }
    return Prepared(Dataset(x_train, y_train, x_val, y_val),
                    np.ascontiguousarray(scaled[:cut, 0]), info)


def shuffled_targets(data: Dataset, seed: int) -> Dataset:
    """The randomization test's data: the same inputs, the training targets permuted (one
    permutation from `seed`); validation unchanged."""
    order = np.random.default_rng(seed).permutation(len(data.y_train))
    return Dataset(data.x_train, np.ascontiguousarray(data.y_train[order]), data.x_val,
                   data.y_val, None, data.vocab)
