"""The stages' entry point: one line and exit code 2 on bad input, nothing half-written."""

from __future__ import annotations

import subprocess
import sys

import yaml

from lstm_overfit.infrastructure.code import stage_modules


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lstm_overfit", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_every_stage_module_is_a_stage():
    assert {"generate", "train", "curve", "sweep", "claims", "figures", "report", "pull_stocks",
            "prepare_stocks", "prepare_sentiment", "prepare_series", "diagnose",
            "code"} == set(stage_modules())


def test_unknown_stage_prints_usage(tmp_path):
    out = run("fit", cwd=tmp_path)
    assert out.returncode == 2 and "stages: claims, code, curve" in out.stderr


def test_bad_param_is_one_line_and_writes_nothing(tmp_path, raw_params):
    raw_params["datasets"]["ex1"]["n_train"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params))
    out = run("generate", "ex1", "data/ex1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == ("error: params.yaml: datasets.ex1.n_train = 0: "
                                  "Input should be greater than or equal to 1")
    assert not (tmp_path / "data").exists()


def test_bad_sentiment_file_is_one_line_and_writes_nothing(tmp_path, repo_params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(repo_params))
    data = tmp_path / "sentences"
    data.mkdir()
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        (data / name).write_text("Great phone.\t1\n")
    (data / "imdb_labelled.txt").write_text("Great film.\t1\nawful\n")
    out = run("prepare_sentiment", "--data", str(data), "--out", "out", cwd=tmp_path)
    assert out.returncode == 2 and "\n" not in out.stderr.strip()
    assert "imdb_labelled.txt:2: no TAB-separated label" in out.stderr
    assert not (tmp_path / "out").exists()
