"""`params.yaml`, parsed once into frozen, typed models (pydantic).

Every value is checked before a stage does any work; a bad one stops the stage with one line
naming the key, the value and what is allowed: `params.yaml: train.ex2.epochs = 0: Input
should be greater than or equal to 1`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from lstm_overfit.errors import StageError

Count = Annotated[StrictInt, Field(ge=1)]
Seed = Annotated[StrictInt, Field(ge=0)]
Number = Annotated[float, Field(strict=True)]
Positive = Annotated[float, Field(strict=True, gt=0)]
NonNegative = Annotated[float, Field(strict=True, ge=0)]
Fraction = Annotated[float, Field(strict=True, gt=0, lt=1)]
Rate = Annotated[float, Field(strict=True, ge=0, lt=1)]
# Tickers become file names: this keeps every path inside the data folder.
TICKER_PATTERN = r"^[A-Za-z0-9.^=-]+$"
Ticker = Annotated[str, Field(strict=True, pattern=TICKER_PATTERN)]
REGULARIZED = ("dropout", "l2")


class ParamError(StageError):
    """A value in params.yaml that the pipeline cannot use."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        text = f"{key} is missing" if value is _MISSING else f"{key} = {value!r}: {allowed}"
        super().__init__(f"params.yaml: {text}")
        self.key = key


_MISSING = object()


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unique(values: tuple, key: str) -> tuple:
    if len(set(values)) != len(values):
        raise ParamError(key, list(values), "must not repeat a value")
    return values


class Base(Section):
    seeds: Annotated[tuple[Seed, ...], Field(min_length=1)]
    batch_size: Count
    article_epochs: Count  # the article's budget: measured in every run, no run stops before

    @model_validator(mode="after")
    def _distinct(self) -> Base:
        _unique(self.seeds, "base.seeds")
        return self


class Model(Section):
    dropout_rate: Rate
    l2: NonNegative


class Variants(Section):
    """The datasets that train each regularized variant besides the baseline."""

    dropout: tuple[str, ...]
    l2: tuple[str, ...]


class RandomData(Section):
    """Uniform random inputs and targets, as in the article's three examples."""

    kind: Literal["random"] = "random"
    n_train: Count
    n_val: Count
    seq_len: Count
    features: Count
    seed: Seed
    val_seed: Seed


class SineData(Section):
    """Windows of a noisy sinusoid, each predicting the next value."""

    kind: Literal["sine"] = "sine"
    n_train: Count
    n_val: Count
    window: Count
    period: Positive
    noise: Positive
    seed: Seed
    val_seed: Seed


DataParams = Annotated[RandomData | SineData, Field(discriminator="kind")]


class Train(Section):
    """One dataset's model and budget: training stops at `epochs`, or earlier once every
    measured number says the run has memorized (see `memorization`)."""

    units: Count
    epochs: Count
    embed_dim: Count | None = None  # text classifier only


class Memorization(Section):
    stop_frac: Fraction  # memorized: training MSE <= this x the noise floor; training stops
    half_frac: Fraction  # also report the first epoch at or below this
    plateau: Fraction  # not memorized, and the last half of training beat the first half by less
    every_until: Count  # measure every epoch up to this one ...
    growth: Annotated[float, Field(strict=True, gt=1)]  # ... then whenever epochs grew this much

    @model_validator(mode="after")
    def _order(self) -> Memorization:
        if self.half_frac <= self.stop_frac:
            raise ParamError("memorization.half_frac", self.half_frac,
                             f"must be above memorization.stop_frac ({self.stop_frac})")
        return self


class Stocks(Section):
    source: Literal["snapshot", "yfinance"]
    tickers: Annotated[tuple[Ticker, ...], Field(min_length=1)]
    start: dt.date
    end: dt.date  # inclusive
    price: Literal["adj_close", "close"]
    fallback: Literal["none", "snapshot"]
    lookback: Count
    horizon: Count
    train_fraction: Fraction

    @model_validator(mode="after")
    def _range(self) -> Stocks:
        _unique(self.tickers, "stocks.tickers")
        if self.start >= self.end:
            raise ParamError("stocks.start", self.start.isoformat(),
                             f"must be before stocks.end ({self.end})")
        return self


class Sentiment(Section):
    vocab_size: Annotated[StrictInt, Field(ge=3, le=100_000)]
    seq_len: Annotated[StrictInt, Field(ge=1, le=1000)]
    val_fraction: Fraction
    seed: Seed


class Sweep(Section):
    """Claim C7: ex1-shaped random data at several sizes, baseline, each trained until it
    memorizes or reaches `max_steps` optimizer steps."""

    sizes: Annotated[tuple[Count, ...], Field(min_length=2)]
    max_steps: Count
    n_val: Count
    seq_len: Count
    features: Count
    units: Count
    seed: Seed
    val_seed: Seed

    @model_validator(mode="after")
    def _sizes(self) -> Sweep:
        _unique(self.sizes, "sweep.sizes")
        if list(self.sizes) != sorted(self.sizes):
            raise ParamError("sweep.sizes", list(self.sizes), "must be in increasing order")
        return self


class Curves(Section):
    """Claims C2 and C5: regularizer strength against memorizing noise and learning a pattern."""

    datasets: Annotated[tuple[str, str], Field()]  # random targets, then a noisy pattern
    dropout: Annotated[tuple[Rate, ...], Field(min_length=1)]  # rates
    l2: Annotated[tuple[NonNegative, ...], Field(min_length=1)]  # factors

    @model_validator(mode="after")
    def _grids(self) -> Curves:
        _unique(self.dropout, "curves.dropout")
        _unique(self.l2, "curves.l2")
        return self


class Series(Section):
    """A user's series (a CSV named in params.yaml), diagnosed by the `diagnose` stage.

    Columns: `time` (numbers such as years, or ISO 8601 dates; increasing, no repeats), the
    `target` and optional `features`, all numeric with no gaps. The model reads windows of
    `lookback` rows of [target, *features] and predicts the target `horizon` rows after the
    window's last one."""

    path: Annotated[str, Field(strict=True, min_length=1)]
    time: Annotated[str, Field(strict=True, min_length=1)]
    target: Annotated[str, Field(strict=True, min_length=1)]
    features: tuple[Annotated[str, Field(strict=True, min_length=1)], ...] = ()
    transform: Literal["none", "difference", "log-return"]
    lookback: Count
    horizon: Count
    val_fraction: Fraction  # the last rows (by time) validate
    units: Count
    epochs: Count


class Diagnosis(Section):
    """When a series' measurements count as a pattern, a rise, a test result."""

    skill: Fraction  # signal: best validation MSE <= (1 - this) x the better naive forecast's
    alpha: Fraction  # Ljung-Box: autocorrelated when p < this
    lags: Count  # Ljung-Box lags (fewer when the training part is short)
    val_rise: Positive  # overfits: validation MSE ends this much above its best
    shuffle_seed: Seed  # the randomization test's permutation of the training targets


class Mlflow(Section):
    experiment: Annotated[str, Field(strict=True, min_length=1, pattern=r"\S")]


class Claims(Section):
    overfit_train_frac: Fraction  # overfits: train_frac <= this ...
    overfit_val_ratio: Positive  # ... and val_ratio >= this
    c1_min_train_frac: Fraction  # C1 "learned the mean": train_frac between this ...
    c1_max_train_frac: Positive  # ... and this
    c4_train_floor: Positive  # C4 pattern, not noise: train MSE >= this x noise variance ...
    c4_val_ceiling: Positive  # ... and validation MSE <= this x noise variance
    c4_refute_train: Positive  # C4 fits the noise: train MSE < this x noise variance ...
    val_rise: Positive  # validation got worse: its end is this much above its best
    c6_refute_val_ratio: Positive  # C6 overfits: memorized and val_ratio above this
    c8_stable_rise: Positive  # C8 stable: validation loss ends at most this above its best
    fragile: Fraction  # a verdict within this relative distance of a threshold is fragile


class Params(Section):
    engine: Literal["fast", "keras"] = "fast"
    base: Base
    model: Model
    variants: Variants
    datasets: dict[str, DataParams]
    train: dict[str, Train]
    memorization: Memorization
    stocks: Stocks
    sentiment: Sentiment
    sweep: Sweep
    curves: Curves
    mlflow: Mlflow
    claims: Claims
    series: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], Series] = {}
    diagnosis: Diagnosis

    @model_validator(mode="after")
    def _references(self) -> Params:
        known = set(self.datasets) | {"stocks", "sentiment"}
        for name in self.train:
            if name not in known:
                raise ParamError(f"train.{name}", name,
                                 f"must name a dataset ({', '.join(sorted(known))})")
        for variant in REGULARIZED:
            for name in getattr(self.variants, variant):
                if name not in self.train:
                    raise ParamError(f"variants.{variant}", name,
                                     f"must name a dataset of train ({', '.join(self.train)})")
        for name in self.curves.datasets:
            if name not in self.train or name not in self.datasets:
                raise ParamError("curves.datasets", name, "must name a generated dataset of train")
        if "sentiment" in self.train and self.train["sentiment"].embed_dim is None:
            raise ParamError("train.sentiment.embed_dim", _MISSING, "")
        if self.model.dropout_rate not in self.curves.dropout:
            raise ParamError("model.dropout_rate", self.model.dropout_rate,
                             f"must be one of curves.dropout {list(self.curves.dropout)}")
        if self.model.l2 not in self.curves.l2:
            raise ParamError("model.l2", self.model.l2,
                             f"must be one of curves.l2 {list(self.curves.l2)}")
        for name, spec in self.series.items():
            if len({spec.time, spec.target, *spec.features}) != 2 + len(spec.features):
                raise ParamError(f"series.{name}.features", list(spec.features),
                                 "must not repeat a column or name the time or target column")
        random_set, pattern_set = (self.datasets[d] for d in self.curves.datasets)
        if not isinstance(random_set, RandomData) or not isinstance(pattern_set, SineData):
            raise ParamError("curves.datasets", list(self.curves.datasets),
                             "must name a random dataset, then a sine dataset")
        return self


def _error(exc: ValidationError, raw: object) -> ParamError:
    """The first error as a ParamError keyed by its path in params.yaml (pydantic's path also
    names the branch of a tagged union, which is not a key of the file)."""
    err = exc.errors()[0]
    keys, node = [], raw
    for part in err["loc"]:
        inside = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node))
        if inside:
            node = node[part]
        elif isinstance(node, dict) and err["type"] != "missing":
            continue  # a union's tag
        keys.append(str(part))
    key = ".".join(keys)
    if err["type"] == "missing":
        return ParamError(key, _MISSING, "")
    return ParamError(key, err["input"], err["msg"])


def parse_params(raw: object) -> Params:
    """Check every value of a loaded params.yaml and return it typed; raise ParamError."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise _error(exc, raw) from None


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does, as DVC reads params.yaml:
    `dvc exp run -S curves.l2=[0.00001]` writes `1e-05`, which YAML 1.1 takes for a string."""


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_yaml(text: str) -> object:
    """params.yaml's text as DVC reads it."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader


def load_params(path: Path) -> Params:
    """Read and check a params file."""
    return parse_params(load_yaml(path.read_text(encoding="utf-8")))
