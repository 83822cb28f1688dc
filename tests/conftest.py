"""Shared fixtures: tiny params and hand-made records, built in memory."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


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
