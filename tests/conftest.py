"""Shared fixtures: tiny params and hand-made records, built in memory."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

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
    """Shrink params so the whole pipeline runs in about two minutes on 2 cores."""
    raw = copy.deepcopy(raw)
    raw["base"]["seeds"] = [0, 1]
    for d in raw["datasets"].values():
        d["n_train"] = min(d["n_train"], 40)
        d["n_val"] = min(d["n_val"], 40)
    for t in raw["train"].values():
        t.update(units=4, epochs=4, checkpoints=[2])
    raw["claims"]["article_epoch"] = 2
    raw["sweep"].update(sizes=[8, 16], steps=4, epochs=3, n_val=16, units=4)
    return raw


def copy_project(dst: Path, params: dict) -> None:
    """Copy the pipeline's files into `dst`, with `params` as its params.yaml."""
    for rel in PROJECT_FILES:
        src, target = ROOT / rel, dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
