from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from lstm_overfit.params import VARIANTS, ParamError, load_params, parse_params


def test_repo_params_parse(repo_params):
    p = parse_params(repo_params)
    assert p.base.seeds == (0, 1, 2)
    assert p.base.variants == VARIANTS
    assert p.train["ex1"].epochs == 1000
    # the full budget is always a checkpoint, beside the article's 50
    assert p.train["ex2"].checkpoints == (50, 300)
    assert p.datasets["sine"].noise == 0.1
    assert p.stocks.tickers == ("AAPL",)
    assert p.stocks.start.isoformat() == "2015-01-02"


def _set(raw: dict, dotted: str, value) -> dict:
    *path, last = dotted.split(".")
    node = raw
    for k in path:
        node = node[k]
    node[last] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.ex2.epochs", 0, "train.ex2.epochs = 0: must be an integer >= 1"),
        ("train.ex2.epochs", -5, "train.ex2.epochs = -5: must be an integer >= 1"),
        ("train.ex2.epochs", 2.5, "train.ex2.epochs = 2.5: must be an integer >= 1"),
        ("model.dropout_rate", 1.0, "model.dropout_rate = 1.0: must be a number in [0.0, 1.0)"),
        ("model.dropout_rate", -0.1, "model.dropout_rate = -0.1: must be a number in [0.0, 1.0)"),
        ("train.ex1.units", 0, "train.ex1.units = 0: must be an integer >= 1"),
        ("train.ex1.units", 12.5, "train.ex1.units = 12.5: must be an integer >= 1"),
        ("train.ex1.units", "many", "train.ex1.units = 'many': must be an integer >= 1"),
        ("train.ex1.units", True, "train.ex1.units = True: must be an integer >= 1"),
        ("base.variants", ["baseline", "batchnorm"],
         "base.variants = 'batchnorm': must be one of baseline, dropout, l2"),
        ("train.ex1.checkpoints", [50, 2000],
         "train.ex1.checkpoints = 2000: must be <= train.ex1.epochs (1000)"),
        ("base.seeds", [], "base.seeds = []: must be a non-empty list of integers"),
        ("datasets.sine.noise", -0.1, "datasets.sine.noise = -0.1: must be a number in [0.0, inf]"),
        ("stocks.tickers", ["../../etc/passwd"],
         "stocks.tickers = '../../etc/passwd': must use only the characters"),
        ("stocks.start", "2021-01-01", "stocks.start = '2021-01-01': must be before stocks.end"),
        ("stocks.source", "bloomberg", "stocks.source = 'bloomberg': must be one of snapshot, yfinance"),
        ("stocks.train_fraction", 1.0, "stocks.train_fraction = 1.0: must be a number in [0.0, 1.0)"),
        ("claims.c6_tail", 1.5, "claims.c6_tail = 1.5: must be a number in [0.0, 1.0)"),
    ],
)
def test_bad_values_name_key_value_and_allowed(raw_params, key, value, message):
    with pytest.raises(ParamError) as err:
        parse_params(_set(raw_params, key, value))
    assert str(err.value).startswith(f"params.yaml: {message}")
    assert err.value.key == key


def test_unknown_key_is_rejected(raw_params):
    raw_params["train"]["ex1"]["epoch"] = 10  # typo of `epochs`
    with pytest.raises(ParamError, match=r"train\.ex1\.epoch = 10: is not a known key"):
        parse_params(raw_params)


def test_missing_key_is_rejected(raw_params):
    del raw_params["base"]["batch_size"]
    with pytest.raises(ParamError, match=r"base\.batch_size = None: is missing"):
        parse_params(raw_params)


def test_seed_and_val_seed_must_differ(raw_params):
    raw_params["datasets"]["ex1"]["val_seed"] = raw_params["datasets"]["ex1"]["seed"]
    with pytest.raises(ParamError, match="must differ from seed"):
        parse_params(raw_params)


def test_stage_reports_bad_param_in_one_line_and_writes_nothing(tmp_path, raw_params):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(_set(raw_params, "datasets.ex1.n_train", 0)))
    out = tmp_path / "ex1"
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_overfit.generate", "ex1", str(out), "--params", str(params)],
        capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: params.yaml: datasets.ex1.n_train = 0: "
                                   "must be an integer >= 1")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_load_params_reads_a_file(tmp_path, raw_params):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw_params))
    assert load_params(path).mlflow.experiment == "lstm-overfit"
