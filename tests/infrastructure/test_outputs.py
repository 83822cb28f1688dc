from __future__ import annotations

import json

import pytest

from lstm_overfit.infrastructure.outputs import atomic_dir, atomic_file, write_json


def test_atomic_file_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_write_json_is_stable(tmp_path):
    write_json(tmp_path / "a.json", {"b": 0.1, "a": [1, 2]})
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 0.1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1, 2], "b": 0.1}
    with pytest.raises(ValueError):
        write_json(tmp_path / "c.json", {"x": float("nan")})
    assert not (tmp_path / "c.json").exists()
