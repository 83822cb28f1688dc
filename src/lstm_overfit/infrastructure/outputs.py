"""Writing stage outputs so that a failed stage leaves nothing half-written behind.

An output is written under a temporary name beside it (`.<name>.partial-…`, ignored by git) and
renamed into place when complete. A process killed with SIGKILL leaves its temporary behind;
the next writer of the same output removes it (DVC runs one writer of an output at a time).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask_mode(base: int) -> int:
    """mkstemp/mkdtemp create private (0600/0700) entries; outputs get the usual mode."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _partial_prefix(path: Path) -> str:
    return f".{path.name}.partial-"


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporaries of earlier writers of `path` that were killed mid-write."""
    found = sorted(path.parent.glob(f"{_partial_prefix(path)}*"))
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    return found


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    # The temporary keeps the output's suffix: some writers (Keras, h5py) choose by it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_partial_prefix(path), suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, _umask_mode(0o666))
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_partial_prefix(path)))
    tmp.chmod(_umask_mode(0o777))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_json(path: Path, obj: object, sort_keys: bool = True) -> None:
    """Stable JSON (fixed key order and float repr): reruns write the same bytes."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=sort_keys, allow_nan=False)
        f.write("\n")


def read_json(path: Path) -> object:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path: Path, rows: list[dict[str, object]], columns: tuple[str, ...] = ()) -> None:
    """Rows of equal keys as CSV with a header: `columns`, else the first row's keys."""
    import csv

    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns or rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
