"""Every stage depends on exactly the source files it runs (through its module's code file,
`code/<module>.json`) and only the params it reads, so `dvc exp run -S` and a code change rerun
only what they affect (and everything they affect)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import clean_env
from lstm_overfit.datasets.arrays import Dataset, save_dataset
from lstm_overfit.infrastructure.code import (
    closure,
    fingerprints,
    stage_files,
    stage_modules,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lstm_overfit"


def module_of(stage: dict) -> str:
    return re.search(r"python -m lstm_overfit (\w+)", stage["cmd"]).group(1)


def stages() -> dict[str, dict]:
    """dvc.yaml's stages with foreach and matrix expanded for the default params."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    def lookup(ref: str):
        node = params
        for key in ref.strip("${}").split("."):
            node = node[key]
        return node

    out = {}
    for name, stage in spec["stages"].items():
        if "foreach" in stage:
            items = lookup(stage["foreach"])
            pairs = items.items() if isinstance(items, dict) else [(i, i) for i in items]
            for key, item in pairs:
                text = yaml.safe_dump(stage["do"]).replace("${key}", str(key))
                for field, value in (item.items() if isinstance(item, dict) else ()):
                    text = text.replace(f"${{item.{field}}}", str(value))
                out[f"{name}@{key}"] = yaml.safe_load(text.replace("${item}", str(item)))
        elif "matrix" in stage:
            axes = {k: lookup(v) if isinstance(v, str) else v for k, v in stage["matrix"].items()}
            body = {k: v for k, v in stage.items() if k != "matrix"}
            for kind in axes["kind"]:
                for dataset in axes["dataset"]:
                    text = yaml.safe_dump(body).replace("${item.kind}", kind)
                    out[f"{name}@{kind}-{dataset}"] = yaml.safe_load(
                        text.replace("${item.dataset}", dataset))
        else:
            out[name] = stage
    return out


def test_every_stage_depends_on_the_code_file_of_its_module_and_on_no_source_file():
    for name, stage in stages().items():
        if name != "code":
            code = {d for d in stage["deps"] if d.startswith(("src/", "code/"))}
            assert code == {f"code/{module_of(stage)}.json"}, name


def test_the_code_stage_reads_every_source_file_and_writes_every_modules_file():
    code = stages()["code"]
    sources = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*")
               if p.suffix in (".py", ".c") and "__pycache__" not in p.parts}
    assert set(code["deps"]) == sources
    assert code["outs"] == [f"code/{m}.json" for m in stage_modules() if m != "code"]
    assert {module_of(s) for n, s in stages().items() if n != "code"} == set(stage_modules()) - {
        "code"}


@pytest.mark.parametrize("stage", ["generate", "train"])
def test_a_stage_imports_only_the_files_its_code_file_lists(tmp_path, stage):
    """The listed closure is read from the import statements; a stage's process shows what
    it really imports (in its own process: the warm server imports every stage's modules)."""
    script = textwrap.dedent(f"""
        import sys
        from lstm_overfit.__main__ import main

        argv = {{"generate": ["generate", "ex1", {str(tmp_path / "out")!r}],
                 "train": ["train", "ex1", "baseline", "--data", {str(tmp_path / "data")!r},
                           "--results", "r.json", "--metrics", "m.json", "--plots", "p.csv",
                           "--models", "models"]}}[{stage!r}]
        code = main(argv + ["--params", {str(tmp_path / "params.yaml")!r}])
        files = sorted(getattr(m, "__file__", None) or "" for name, m in list(sys.modules.items())
                       if name.split(".")[0] == "lstm_overfit" and name != "lstm_overfit.__main__")
        print(code, *files)
    """)
    x = np.random.default_rng(0).random((6, 3, 1), dtype=np.float32)
    save_dataset(Dataset(x, x[:, 0], x, x[:, 0]), tmp_path / "data")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base"].update(seeds=[0], article_epochs=1)
    params["train"]["ex1"].update(units=2, epochs=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = clean_env(LSTM_OVERFIT_WARM="0", DVC_ROOT=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    code, *files = out.stdout.split()
    assert code == "0", out.stderr
    ran = {str(Path(f).relative_to(PACKAGE.parent)) for f in files}
    ran = {"lstm_overfit/engine/gemm.c" if "_gemm" in f else f for f in ran}
    # Exactly: the entry point ran as the script (not imported), all else was imported.
    listed = set(stage_files(stage))
    assert listed - ran == {"lstm_overfit/__main__.py"}
    assert ran <= listed, sorted(ran - listed)


def test_regularizers_reach_only_their_own_stages():
    st = stages()
    readers = {p: {n for n, s in st.items() if p in s.get("params", [])}
               for p in ("model.dropout_rate", "model.l2")}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    diagnoses = {f"diagnose@{name}" for name in params["series"]}
    assert readers["model.dropout_rate"] == {f"train_dropout@{d}"
                                             for d in params["variants"]["dropout"]}
    assert "train_dropout@ex2" in readers["model.dropout_rate"]  # the article's Example 2
    assert readers["model.l2"] == {"train_l2@sentiment"}
    for name in diagnoses:  # the diagnosis reads the whole section: its variants use both
        assert "model" in stages()[name]["params"]
    for name in st:
        if name.startswith(("train_baseline", "curve", "sweep")):
            assert not any(str(p).startswith("model") for p in st[name].get("params", [])), name


def test_the_engine_reaches_every_training_stage_and_only_those():
    st = stages()
    files = fingerprints(sorted({module_of(s) for n, s in st.items() if n != "code"}))
    training = {n for n, s in st.items()
                if n != "code" and "lstm_overfit/engine/fast.py" in files[module_of(s)]}
    assert {n for n, s in st.items() if "engine" in s.get("params", [])} == training
    assert {"train_baseline@ex1", "curve@dropout-ex1_small", "sweep", "diagnose@sunspots"} <= training


def test_a_dataset_change_reaches_only_its_own_stages():
    st = stages()
    assert {n for n, s in st.items() if "train.ex1" in s.get("params", [])} == {"train_baseline@ex1"}
    generated = {n for n, s in st.items() if "datasets.ex1" in s.get("params", [])}
    assert generated == {"generate@ex1"}


def test_a_series_change_reaches_only_its_own_stages():
    st = stages()
    readers = {n for n, s in st.items()
               if any(str(p).startswith(("series.sunspots", "series")) for p in s.get("params", []))}
    assert readers == {"prepare_series@sunspots", "diagnose@sunspots", "prepare_series@aapl",
                       "diagnose@aapl", "report"}
    assert not any(str(p).startswith("series.aapl") for p in st["diagnose@sunspots"]["params"])
    assert "data/snapshot/sunspots/sunspots.csv" in st["prepare_series@sunspots"]["deps"]


def test_the_closure_follows_imports_inside_functions():
    assert "engine.keras_fit" in closure("engine.cluster")  # the Keras engine, imported by trainer()
    assert "engine.fast" not in closure("stages.claims")  # reading results needs no engine
    assert "engine._gemm" in closure("engine.fast")  # the compiled product, listed as its C source
    assert {"", "engine"} <= closure("engine.fast")  # the packages' __init__.py files run too
