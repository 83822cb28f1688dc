"""A user's CSV: what is accepted, how it is split and scaled, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.datasets.series import (
    load_prepared,
    prepare,
    read_table,
    save_prepared,
    shuffled_targets,
    windows,
)
from lstm_overfit.errors import StageError
from lstm_overfit.params import Series


def spec(**kw) -> Series:
    base = dict(path="s.csv", time="t", target="y", features=(), transform="none", lookback=3,
                horizon=1, val_fraction=0.25, units=4, epochs=2)
    return Series(**{**base, **kw})


def write(tmp_path, text: str):
    path = tmp_path / "s.csv"
    path.write_text(text)
    return path


def csv(values, times=None, header="t,y", extra=None) -> str:
    times = times or list(range(2000, 2000 + len(values)))
    rows = [header] + [f"{t},{v}" + (f",{extra[i]}" if extra else "")
                       for i, (t, v) in enumerate(zip(times, values, strict=True))]
    return "\n".join(rows) + "\n"


def test_windows_hold_lookback_rows_and_the_target_horizon_later():
    values = np.arange(10, dtype=np.float64)[:, None] * np.array([[1.0, 10.0]])
    x, y = windows(values, 3, 2)
    assert x.shape == (6, 3, 2) and y.shape == (6, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2] and x[0, :, 1].tolist() == [0, 10, 20]
    assert y[0, 0] == 4  # two rows after the window's last (2)
    assert y[-1, 0] == 9


def test_split_is_chronological_scaled_on_training_rows_and_windowed_per_part(tmp_path):
    values = [float(v) for v in range(1, 21)]  # 20 rows: 15 train, 5 validate
    s = spec(lookback=2)
    out = prepare(read_table(write(tmp_path, csv(values)), s), s, "s.csv")
    info, d = out.info, out.dataset
    assert (info["train_rows"], info["val_rows"]) == (15, 5)
    assert (info["train_last"], info["val_first"]) == ("2014", "2015")
    train = np.array(values[:15])
    assert info["mean"][0] == pytest.approx(train.mean()) and info["std"][0] == pytest.approx(train.std())
    assert len(d.x_train) == 15 - 2 and len(d.x_val) == 5 - 2  # no window crosses the split
    unscaled = d.y_val[:, 0] * info["std"][0] + info["mean"][0]
    assert unscaled.tolist() == pytest.approx([18, 19, 20])
    assert out.target_train.mean() == pytest.approx(0.0, abs=1e-12)


def test_log_return_and_features_and_iso_dates(tmp_path):
    prices = [100 * 1.01 ** i for i in range(16)]
    dates = [f"2020-01-{d:02d}" for d in range(1, 17)]
    text = csv(prices, dates, header="date,price,volume", extra=[float(i % 5) for i in range(16)])
    s = spec(time="date", target="price", features=("volume",), transform="log-return",
             lookback=2)
    out = prepare(read_table(write(tmp_path, text), s), s, "s.csv")
    assert out.info["rows"] == 15 and out.info["first"] == "2020-01-02"
    assert out.dataset.x_train.shape[2] == 2
    assert out.info["time_kind"] == "date"


def test_prepared_folder_round_trips(tmp_path):
    s = spec()
    out = prepare(read_table(write(tmp_path, csv([float(v % 7) for v in range(24)])), s), s, "s")
    save_prepared(out, tmp_path / "p")
    back = load_prepared(tmp_path / "p")
    assert np.array_equal(back.dataset.x_train, out.dataset.x_train)
    assert np.array_equal(back.target_train, out.target_train) and back.info == out.info


def test_shuffled_targets_keep_inputs_and_permute_training_targets(tmp_path):
    s = spec()
    d = prepare(read_table(write(tmp_path, csv([float(v % 7) for v in range(40)])), s), s,
                "s").dataset
    sh = shuffled_targets(d, 0)
    assert np.array_equal(sh.x_train, d.x_train) and np.array_equal(sh.y_val, d.y_val)
    assert sorted(sh.y_train[:, 0]) == sorted(d.y_train[:, 0])
    assert not np.array_equal(sh.y_train, d.y_train)
    assert np.array_equal(shuffled_targets(d, 0).y_train, sh.y_train)


GOOD = [float(v % 7) for v in range(24)]


@pytest.mark.parametrize(("text", "kw", "says"), [
    (csv(GOOD, header="t,z"), {}, "no column 'y'"),
    (csv(GOOD[:5] + ["abc"] + GOOD[6:]), {}, "line 7, column 'y': 'abc', not a finite number"),
    (csv(GOOD[:5] + [""] + GOOD[6:]), {}, "line 7, column 'y': a missing value"),
    (csv(GOOD[:3] + ["NaN"] + GOOD[4:]), {}, "line 5, column 'y': a missing value"),
    (csv(GOOD, [2000, 2001, 2001] + list(range(2003, 2024))), {},
     "line 4, column 't': time '2001' repeats line 3"),
    (csv(GOOD, [2001, 2000] + list(range(2002, 2024))), {}, "sort the file by time"),
    (csv(GOOD, ["2020-01-01", "yesterday"] + [f"2020-02-{d:02d}" for d in range(1, 23)]), {},
     "line 3, column 't': 'yesterday' is neither a number nor an ISO 8601 date"),
    (csv(GOOD[:9]), {}, "9 rows are too few"),
    (csv([3.0] * 24), {}, "target 'y' is constant in the training part"),
    (csv([1.0, -2.0] + GOOD[2:]), {"transform": "log-return"}, "log-return needs positive values"),
    ("t,y\n", {}, "no rows"),
])
def test_bad_files_fail_with_one_line_naming_the_place(tmp_path, text, kw, says):
    s = spec(**kw)
    with pytest.raises(StageError, match=None) as err:
        prepare(read_table(write(tmp_path, text), s), s, "s.csv")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(StageError, match="no such file"):
        read_table(tmp_path / "nope.csv", spec())
