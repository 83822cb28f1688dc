"""Every stage lists exactly the source files it runs and only the params it reads, so
`dvc exp run -S` reruns only what a change affects (and everything it affects)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lstm_overfit"


# Compiled modules and the C source they are built from (setup.py).
EXTENSIONS = {"engine._gemm": "engine/gemm.c"}


def module_file(module: str) -> Path:
    if module in EXTENSIONS:
        return PACKAGE / EXTENSIONS[module]
    if not module:
        return PACKAGE / "__init__.py"
    path = PACKAGE / f"{module.replace('.', '/')}.py"
    return path if path.exists() else PACKAGE / module.replace(".", "/") / "__init__.py"


def is_module(module: str) -> bool:
    return module in EXTENSIONS or module_file(module).exists()


def with_packages(module: str) -> set[str]:
    """A module and the packages above it: importing `a.b.c` runs `a/__init__.py` and
    `a/b/__init__.py` first (the package's own top `__init__.py` included, as "")."""
    parts = module.split(".")
    return {module, ""} | {".".join(parts[:i]) for i in range(1, len(parts))}


def imported_modules(path: Path) -> set[str]:
    """The package's modules a file imports, at the top or inside functions; imports under
    `if TYPE_CHECKING:` are types only and do not run."""
    if path.suffix == ".c":
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lstm_overfit":
            base = node.module.partition(".")[2]
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                found |= with_packages(sub if is_module(sub) else base)
        elif isinstance(node, ast.Import):
            found |= {m for a in node.names if a.name.startswith("lstm_overfit.")
                      for m in with_packages(a.name.split(".", 1)[1])}
    return found


def closure(*modules: str) -> set[str]:
    seen, todo = set(), list(modules)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += sorted(imported_modules(module_file(m)))
    return seen


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


def test_every_stage_lists_exactly_the_modules_it_runs():
    for name, stage in stages().items():
        module = re.search(r"python -m lstm_overfit (\w+)", stage["cmd"]).group(1)
        want = {str(module_file(m).relative_to(ROOT)) for m in closure("__main__", f"stages.{module}")}
        listed = {d for d in stage["deps"] if d.startswith("src/")}
        assert listed == want, f"{name}: missing {sorted(want - listed)}, extra {sorted(listed - want)}"


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
    training = {n for n, s in st.items() if "src/lstm_overfit/engine/fast.py" in s["deps"]}
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
