"""The code files DVC's stages depend on: a change to a module changes exactly the files of the
stages that run it."""

from __future__ import annotations

import shutil

from lstm_overfit.infrastructure.code import PACKAGE, closure, fingerprint, stage_modules
from lstm_overfit.stages import code


def package_copy(tmp_path):
    copy = tmp_path / "lstm_overfit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return copy


def test_a_changed_module_changes_the_files_of_the_stages_that_run_it_and_no_other(tmp_path):
    pkg = package_copy(tmp_path)
    before = {s: fingerprint(s, pkg) for s in stage_modules(pkg)}
    fast = pkg / "engine" / "fast.py"
    fast.write_text(fast.read_text() + "\n# a change\n")
    after = {s: fingerprint(s, pkg) for s in stage_modules(pkg)}
    changed = {s for s in before if before[s] != after[s]}
    assert changed == {s for s in stage_modules(pkg) if "engine.fast" in closure(
        "__main__", f"stages.{s}", package=pkg)}
    assert {"train", "curve", "sweep", "diagnose"} <= changed
    assert "generate" not in changed and "claims" not in changed
    assert after["train"]["lstm_overfit/engine/fast.py"] != before["train"][
        "lstm_overfit/engine/fast.py"]


def test_a_new_import_adds_the_module_to_the_stages_that_run_the_importer(tmp_path):
    pkg = package_copy(tmp_path)
    gen = pkg / "stages" / "generate.py"
    gen.write_text(gen.read_text().replace(
        "from lstm_overfit.params import", "from lstm_overfit.engine import fast  # noqa\n"
                                           "from lstm_overfit.params import"))
    assert "lstm_overfit/engine/gemm.c" in fingerprint("generate", pkg)  # fast's C product


def test_the_code_stage_writes_one_file_per_stage_module(tmp_path):
    code.main(["--out", str(tmp_path / "code")])
    written = sorted(p.stem for p in (tmp_path / "code").iterdir())
    assert written == [s for s in stage_modules() if s != "code"]
    assert '"lstm_overfit/stages/train.py"' in (tmp_path / "code" / "train.json").read_text()
