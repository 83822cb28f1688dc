"""The package's parts import only the parts below them (pyproject.toml, `[tool.importlinter]`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("engine", "datasets", "science", "reporting", "infrastructure", "stages")


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """import-linter's `lint-imports` on the package found under `src`, with the project's
    contract (pyproject.toml)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache",
                           "--config", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, env=env, capture_output=True, text=True)


def test_every_part_says_what_lives_there_and_what_it_may_import():
    for part in PARTS:
        doc = (ROOT / "src" / "lstm_overfit" / part / "__init__.py").read_text().strip()
        assert doc.startswith('"""') and doc.count("\n") == 0 and "Imports" in doc, part


def test_imports_only_go_down():
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Imports only go down KEPT" in result.stdout


def test_an_import_from_a_higher_part_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "src" / "lstm_overfit", tmp_path / "lstm_overfit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    engine = tmp_path / "lstm_overfit" / "engine" / "fast.py"
    # Inside a function, as the lazy imports here are: they run too, so they count.
    engine.write_text(engine.read_text() + "\n\ndef _judge():\n"
                      "    from lstm_overfit.science import judges  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "lstm_overfit.engine.fast -> lstm_overfit.science.judges" in result.stdout
