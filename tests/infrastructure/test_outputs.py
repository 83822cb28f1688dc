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


KILLED_WRITER = """
import sys, time
from pathlib import Path
from lstm_overfit.infrastructure.outputs import atomic_dir, atomic_file
with atomic_file(Path(sys.argv[1]) / "out.json") as tmp, atomic_dir(Path(sys.argv[1]) / "d") as d:
    tmp.write_text("half")
    (d / "a").write_text("half")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_writer_killed_with_sigkill_leaves_no_output_and_the_next_one_cleans_up(tmp_path):
    import fnmatch
    import signal
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and not (tmp_path / "out.json").exists() and not (tmp_path / "d").exists()
    ignored = [line for line in (Path(__file__).parents[2] / ".gitignore").read_text().splitlines()
               if "partial" in line and not line.startswith("#")]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in ignored) for name in left)
    write_json(tmp_path / "out.json", {"a": 1})
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.json"]
    assert (tmp_path / "d" / "a").read_text() == "whole"
