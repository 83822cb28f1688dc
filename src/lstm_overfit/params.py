"""`params.yaml`, parsed once into frozen dataclasses.

Every value is checked here, before any stage does work, so that a bad value stops the
pipeline with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lstm_overfit.errors import StageError

VARIANTS = ("baseline", "dropout", "l2")
STOCK_SOURCES = ("snapshot", "yfinance")
STOCK_FALLBACKS = ("none", "snapshot")
PRICE_COLUMNS = ("adj_close", "close")
# Tickers become file names: this keeps every path inside the data folder.
TICKER_PATTERN = re.compile(r"^[A-Za-z0-9.^=-]+$")


class ParamError(StageError):
    """A value in params.yaml that the pipeline cannot use."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"params.yaml: {key} = {value!r}: {allowed}")
        self.key = key


@dataclass(frozen=True)
class BaseParams:
    seeds: tuple[int, ...]
    batch_size: int
    variants: tuple[str, ...]


@dataclass(frozen=True)
class ModelParams:
    dropout_rate: float
    l2: float


@dataclass(frozen=True)
class RandomData:
    """Uniform random inputs and targets, as in the article's three examples."""

    n_train: int
    n_val: int
    seq_len: int
    features: int
    seed: int
    val_seed: int


@dataclass(frozen=True)
class SineData:
    """Windows of a noisy sinusoid, each predicting the next value."""

    n_train: int
    n_val: int
    window: int
    period: float
    noise: float
    seed: int
    val_seed: int


DataParams = RandomData | SineData


@dataclass(frozen=True)
class TrainParams:
    units: int
    epochs: int
    checkpoints: tuple[int, ...]


@dataclass(frozen=True)
class StocksParams:
    source: str
    tickers: tuple[str, ...]
    start: dt.date
    end: dt.date
    price: str
    fallback: str
    lookback: int
    horizon: int
    train_fraction: float


@dataclass(frozen=True)
class SweepParams:
    """The sample-size sweep (claim C7): ex1-shaped random data at several sizes."""

    sizes: tuple[int, ...]
    steps: int
    epochs: int
    n_val: int
    seq_len: int
    features: int
    units: int
    seed: int
    val_seed: int


@dataclass(frozen=True)
class MlflowParams:
    experiment: str


@dataclass(frozen=True)
class ClaimParams:
    article_epoch: int
    overfit_train_frac: float
    overfit_val_ratio: float
    c1_min_train_frac: float
    c1_max_train_frac: float
    c4_train_floor: float
    c4_val_ceiling: float
    c4_refute_train: float
    c4_val_rise: float
    c6_tail: float
    c6_plateau: float
    c6_refute_val_ratio: float


@dataclass(frozen=True)
class Params:
    base: BaseParams
    model: ModelParams
    datasets: dict[str, DataParams]
    train: dict[str, TrainParams]
    stocks: StocksParams
    sweep: SweepParams
    mlflow: MlflowParams
    claims: ClaimParams


class _Section:
    """Reads typed values out of one mapping, naming the full key in every error."""

    def __init__(self, raw: object, key: str) -> None:
        if not isinstance(raw, dict):
            raise ParamError(key, raw, "must be a mapping")
        self.raw = raw
        self.key = key

    def _path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def get(self, name: str) -> Any:
        if name not in self.raw:
            raise ParamError(self._path(name), None, "is missing")
        return self.raw[name]

    def section(self, name: str) -> _Section:
        return _Section(self.get(name), self._path(name))

    def done(self, names: set[str]) -> None:
        """Reject keys nobody reads: a typo must not silently fall back to a default."""
        for extra in sorted(set(self.raw) - names):
            raise ParamError(self._path(extra), self.raw[extra], "is not a known key")

    def int(self, name: str, minimum: int = 1) -> int:
        value = self.get(name)
        return _check_int(value, self._path(name), minimum)

    def float(self, name: str, low: float, high: float, high_open: bool = False) -> float:
        value = self.get(name)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and low <= value and (value < high if high_open else value <= high)
        if not ok:
            bracket = ")" if high_open else "]"
            raise ParamError(self._path(name), value, f"must be a number in [{low}, {high}{bracket}")
        return float(value)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.get(name)
        if value not in allowed:
            raise ParamError(self._path(name), value, f"must be one of {', '.join(allowed)}")
        return str(value)

    def int_list(self, name: str, minimum: int = 1) -> tuple[int, ...]:
        value = self.get(name)
        if not isinstance(value, list) or not value:
            raise ParamError(self._path(name), value, "must be a non-empty list of integers")
        items = tuple(_check_int(v, self._path(name), minimum) for v in value)
        if len(set(items)) != len(items):
            raise ParamError(self._path(name), value, "must not repeat a value")
        return items

    def date(self, name: str) -> dt.date:
        value = self.get(name)
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ParamError(self._path(name), value, "must be a date YYYY-MM-DD") from None

    def text(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ParamError(self._path(name), value, "must be a non-empty string")
        return value


def _check_int(value: object, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParamError(key, value, f"must be an integer >= {minimum}")
    return value


def _base(s: _Section) -> BaseParams:
    variants = s.get("variants")
    if not isinstance(variants, list) or not variants:
        raise ParamError("base.variants", variants, f"must be a non-empty list of {', '.join(VARIANTS)}")
    for v in variants:
        if v not in VARIANTS:
            raise ParamError("base.variants", v, f"must be one of {', '.join(VARIANTS)}")
    s.done({"seeds", "batch_size", "variants"})
    return BaseParams(seeds=s.int_list("seeds", minimum=0), batch_size=s.int("batch_size"),
                      variants=tuple(dict.fromkeys(variants)))


def _dataset(s: _Section) -> DataParams:
    kind = s.choice("kind", ("random", "sine"))
    common = dict(n_train=s.int("n_train"), n_val=s.int("n_val"), seed=s.int("seed", 0),
                  val_seed=s.int("val_seed", 0))
    if common["seed"] == common["val_seed"]:
        raise ParamError(s._path("val_seed"), common["val_seed"], "must differ from seed")
    if kind == "random":
        s.done({"kind", "n_train", "n_val", "seq_len", "features", "seed", "val_seed"})
        return RandomData(seq_len=s.int("seq_len"), features=s.int("features"), **common)
    s.done({"kind", "n_train", "n_val", "window", "period", "noise", "seed", "val_seed"})
    return SineData(window=s.int("window"), period=s.float("period", 1e-9, float("inf")),
                    noise=s.float("noise", 0.0, float("inf")), **common)


def _train(s: _Section) -> TrainParams:
    s.done({"units", "epochs", "checkpoints"})
    epochs = s.int("epochs")
    checkpoints = s.int_list("checkpoints")
    for c in checkpoints:
        if c > epochs:
            raise ParamError(s._path("checkpoints"), c, f"must be <= {s._path('epochs')} ({epochs})")
    return TrainParams(units=s.int("units"), epochs=epochs,
                       checkpoints=tuple(sorted(set(checkpoints) | {epochs})))


def _stocks(s: _Section) -> StocksParams:
    s.done({"source", "tickers", "start", "end", "price", "fallback", "lookback", "horizon",
            "train_fraction"})
    tickers = s.get("tickers")
    if not isinstance(tickers, list) or not tickers:
        raise ParamError("stocks.tickers", tickers, "must be a non-empty list of tickers")
    for t in tickers:
        if not isinstance(t, str) or not TICKER_PATTERN.match(t):
            raise ParamError("stocks.tickers", t, "must use only the characters A-Z a-z 0-9 . ^ = -")
    start, end = s.date("start"), s.date("end")
    if start >= end:
        raise ParamError("stocks.start", start.isoformat(), f"must be before stocks.end ({end})")
    return StocksParams(
        source=s.choice("source", STOCK_SOURCES), tickers=tuple(dict.fromkeys(tickers)),
        start=start, end=end, price=s.choice("price", PRICE_COLUMNS),
        fallback=s.choice("fallback", STOCK_FALLBACKS), lookback=s.int("lookback"),
        horizon=s.int("horizon"),
        train_fraction=s.float("train_fraction", 0.0, 1.0, high_open=True),
    )


def _sweep(s: _Section) -> SweepParams:
    s.done({"sizes", "steps", "epochs", "n_val", "seq_len", "features", "units", "seed",
            "val_seed"})
    return SweepParams(sizes=tuple(sorted(s.int_list("sizes"))), steps=s.int("steps"),
                       epochs=s.int("epochs"), n_val=s.int("n_val"), seq_len=s.int("seq_len"),
                       features=s.int("features"), units=s.int("units"), seed=s.int("seed", 0),
                       val_seed=s.int("val_seed", 0))


def _claims(s: _Section) -> ClaimParams:
    fraction = dict(low=0.0, high=1.0)
    ratio = dict(low=0.0, high=float("inf"))
    names = {f.name for f in dataclasses.fields(ClaimParams)}
    s.done(names)
    return ClaimParams(
        article_epoch=s.int("article_epoch"),
        overfit_train_frac=s.float("overfit_train_frac", **fraction),
        overfit_val_ratio=s.float("overfit_val_ratio", **ratio),
        c1_min_train_frac=s.float("c1_min_train_frac", **fraction),
        c1_max_train_frac=s.float("c1_max_train_frac", **ratio),
        c4_train_floor=s.float("c4_train_floor", **ratio),
        c4_val_ceiling=s.float("c4_val_ceiling", **ratio),
        c4_refute_train=s.float("c4_refute_train", **ratio),
        c4_val_rise=s.float("c4_val_rise", **ratio),
        c6_tail=s.float("c6_tail", 0.0, 1.0, high_open=True),
        c6_plateau=s.float("c6_plateau", **ratio),
        c6_refute_val_ratio=s.float("c6_refute_val_ratio", **ratio),
    )


def parse_params(raw: object) -> Params:
    """Check every value of a loaded params.yaml and return it typed; raise ParamError."""
    top = _Section(raw, "")
    top.done({"base", "model", "datasets", "train", "stocks", "sweep", "mlflow", "claims"})
    model = top.section("model")
    model.done({"dropout_rate", "l2"})
    datasets_raw = top.section("datasets")
    datasets = {name: _dataset(datasets_raw.section(name)) for name in datasets_raw.raw}
    train_raw = top.section("train")
    train = {name: _train(train_raw.section(name)) for name in train_raw.raw}
    for name in train:
        if name not in datasets and name != "stocks":
            raise ParamError(f"train.{name}", train_raw.raw[name], "names no dataset under datasets")
    mlflow = top.section("mlflow")
    mlflow.done({"experiment"})
    return Params(
        base=_base(top.section("base")),
        model=ModelParams(dropout_rate=model.float("dropout_rate", 0.0, 1.0, high_open=True),
                          l2=model.float("l2", 0.0, float("inf"))),
        datasets=datasets,
        train=train,
        stocks=_stocks(top.section("stocks")),
        sweep=_sweep(top.section("sweep")),
        mlflow=MlflowParams(experiment=mlflow.text("experiment")),
        claims=_claims(top.section("claims")),
    )


def load_params(path: Path) -> Params:
    """Read and check a params file."""
    with open(path, encoding="utf-8") as f:
        return parse_params(yaml.safe_load(f))
