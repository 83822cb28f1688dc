"""params.yaml: the repo's own parses; every kind of bad value stops with one line naming the
key, the value and what is allowed."""

from __future__ import annotations

import pytest

from lstm_overfit.params import ParamError, load_params, parse_params


def test_repo_params_parse(repo_params):
    p = parse_params(repo_params)
    assert p.base.seeds == (0, 1, 2)
    assert p.base.article_epochs == 50
    assert p.train["ex1"].epochs >= 1000
    assert p.datasets["sine"].noise == 0.1
    assert p.stocks.tickers == ("AAPL",) and p.stocks.start.isoformat() == "2015-01-02"
    assert p.model.dropout_rate in p.curves.dropout and p.model.l2 in p.curves.l2
    assert p.train["sentiment"].embed_dim is not None


def _set(raw: dict, dotted: str, value) -> dict:
    *path, last = dotted.split(".")
    node = raw
    for k in path:
        node = node[k]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.ex1.epochs", 0, "train.ex1.epochs = 0: Input should be greater than or equal to 1"),
        ("train.ex1.epochs", 2.5, "train.ex1.epochs = 2.5: Input should be a valid integer"),
        ("train.ex1.units", "many", "train.ex1.units = 'many': Input should be a valid integer"),
        ("train.ex1.units", True, "train.ex1.units = True: Input should be a valid integer"),
        ("train.ex1.epochs", _DELETE, "train.ex1.epochs is missing"),
        ("train.ex1.patience", 3, "train.ex1.patience = 3: Extra inputs are not permitted"),
        ("model.dropout_rate", 1.0, "model.dropout_rate = 1.0: Input should be less than 1"),
        ("model.dropout_rate", 0.2, "model.dropout_rate = 0.2: must be one of curves.dropout"),
        ("model.l2", -1e-3, "model.l2 = -0.001: Input should be greater than or equal to 0"),
        ("base.seeds", [], "base.seeds = []: Tuple should have at least 1 item"),
        ("base.seeds", [1, 1], "base.seeds = [1, 1]: must not repeat a value"),
        ("datasets.sine.noise", -0.1, "datasets.sine.noise = -0.1: Input should be greater than 0"),
        ("datasets.ex1.kind", "walk", "datasets.ex1 = "),
        ("stocks.tickers", ["../../etc/passwd"],
         "stocks.tickers.0 = '../../etc/passwd': String should match pattern"),
        ("stocks.start", "2021-01-01", "stocks.start = '2021-01-01': must be before stocks.end"),
        ("stocks.source", "bloomberg", "stocks.source = 'bloomberg': Input should be 'snapshot'"),
        ("stocks.train_fraction", 1.0, "stocks.train_fraction = 1.0: Input should be less than 1"),
        ("memorization.half_frac", 0.05,
         "memorization.half_frac = 0.05: must be above memorization.stop_frac (0.1)"),
        ("sentiment.vocab_size", 2, "sentiment.vocab_size = 2: Input should be greater than or equal to 3"),
        ("sentiment.seq_len", 5000, "sentiment.seq_len = 5000: Input should be less than or equal to 1000"),
        ("sweep.sizes", [400, 25], "sweep.sizes = [400, 25]: must be in increasing order"),
        ("variants.dropout", ["ex9"], "variants.dropout = 'ex9': must name a dataset of train"),
        ("curves.datasets", ["sine_small", "ex1_small"],
         "curves.datasets = ['sine_small', 'ex1_small']: must name a random dataset, then a sine"),
        ("train.ex9", {"units": 4, "epochs": 4}, "train.ex9 = 'ex9': must name a dataset"),
        ("claims.fragile", 0.0, "claims.fragile = 0.0: Input should be greater than 0"),
    ],
)
def test_bad_values_name_key_value_and_allowed(raw_params, key, value, message):
    with pytest.raises(ParamError) as err:
        parse_params(_set(raw_params, key, value))
    text = str(err.value)
    assert text.startswith("params.yaml: ") and "\n" not in text
    assert message in text, text


def test_sentiment_needs_an_embedding_size(raw_params):
    del raw_params["train"]["sentiment"]["embed_dim"]
    with pytest.raises(ParamError, match="train.sentiment.embed_dim is missing"):
        parse_params(raw_params)


def test_yaml_dates_and_strings_both_parse(raw_params):
    import datetime as dt

    raw_params["stocks"]["start"] = dt.date(2016, 1, 4)
    assert parse_params(raw_params).stocks.start == dt.date(2016, 1, 4)


def test_floats_read_as_dvc_writes_them(raw_params, tmp_path):
    """`dvc exp run -S curves.l2=[0,0.00001]` writes `1e-05` (YAML 1.2): a number, not text."""
    import yaml

    raw_params["curves"]["l2"] = [0.0, 0.00001, 0.001]
    text = yaml.safe_dump(raw_params, sort_keys=False).replace("1.0e-05", "1e-05")
    assert "1e-05" in text
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert load_params(path).curves.l2 == (0.0, 1e-05, 0.001)


def test_params_are_frozen(repo_params):
    p = parse_params(repo_params)
    with pytest.raises(Exception, match="frozen"):
        p.base.batch_size = 64  # type: ignore[misc]
