"""Shared fixtures: the pinned runtime, tiny params and records built in memory."""

from __future__ import annotations

from lstm_overfit.runtime import pin_runtime

# Before numpy loads anywhere in the test session: OpenBLAS reads these when it loads.
pin_runtime()

import copy  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What a copy of the project needs to run the pipeline (params.yaml is written separately).
PROJECT_FILES = ("src", "data/snapshot", ".dvc/config", ".dvcignore", ".gitignore", "dvc.yaml",
                 "pyproject.toml")


@pytest.fixture(scope="session")
def repo_params() -> dict:
    """The project's own params.yaml, as loaded YAML."""
    with open(ROOT / "params.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture
def raw_params(repo_params: dict) -> dict:
    """A copy each test may change."""
    return copy.deepcopy(repo_params)


def tiny_params(raw: dict) -> dict:
    """Shrink params so the whole pipeline runs in a couple of minutes on 2 cores."""
    raw = copy.deepcopy(raw)
    raw["base"].update(seeds=[0, 1], article_epochs=2)
    for d in raw["datasets"].values():
        d["n_train"] = min(d["n_train"], 40)
        d["n_val"] = min(d["n_val"], 40)
    for t in raw["train"].values():
        t.update(units=4, epochs=4)
    raw["train"]["sentiment"]["embed_dim"] = 4
    raw["memorization"]["every_until"] = 2
    raw["sentiment"].update(vocab_size=50, seq_len=6)
    raw["sweep"].update(sizes=[8, 16], max_steps=6, n_val=16, units=4)
    raw["curves"].update(dropout=[0.0, 0.3, 0.5], l2=[0.0, 0.001, 0.01])
    return raw


def copy_project(dst: Path, params: dict) -> None:
    """Copy the pipeline's files into `dst`, with `params` as its params.yaml."""
    for rel in PROJECT_FILES:
        src, target = ROOT / rel, dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(
            src, target, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
