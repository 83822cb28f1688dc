"""The series stages as DVC runs them: a bad file is one line, exit 2, and no output."""

from __future__ import annotations

import yaml

from conftest import ROOT
from lstm_overfit.cli import run_stage


def params_with(tmp_path, csv_path) -> str:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["series"] = {"mine": {"path": str(csv_path), "time": "t", "target": "y", "features": [],
                              "transform": "none", "lookback": 3, "horizon": 1,
                              "val_fraction": 0.25, "units": 4, "epochs": 2}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_a_bad_file_fails_the_stage_with_one_line_and_writes_nothing(tmp_path, capsys):
    csv = tmp_path / "mine.csv"
    csv.write_text("t,y\n" + "".join(f"{2000 + i},{i % 5}\n" for i in range(12))
                   + "2011,3\n" + "".join(f"{2013 + i},{i % 3}\n" for i in range(10)))
    out = tmp_path / "prepared"
    code = run_stage(["prepare_series", "mine", "--csv", str(csv), "--out", str(out),
                      "--params", params_with(tmp_path, csv)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {csv}: line 14, column 't': time '2011' repeats line 13\n"
    assert not out.exists() and list(tmp_path.glob(".prepared*")) == []


def test_a_good_file_is_prepared(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("t,y\n" + "".join(f"{2000 + i},{i % 5}\n" for i in range(24)))
    out = tmp_path / "prepared"
    assert run_stage(["prepare_series", "mine", "--csv", str(csv), "--out", str(out),
                      "--params", params_with(tmp_path, csv)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "info.json", "series.json", "target_train.npy", "x_train.npy", "x_val.npy",
        "y_train.npy", "y_val.npy"]


def test_an_unknown_series_is_named(tmp_path, capsys):
    code = run_stage(["prepare_series", "nope", "--csv", "x.csv", "--out", str(tmp_path / "o"),
                      "--params", str(ROOT / "params.yaml")])
    assert code == 2 and "series.nope is missing" in capsys.readouterr().err
