"""The source files each stage runs, for DVC: a stage module's import closure and its hashes.

A stage depends on the code it runs. Listed file by file in dvc.yaml, that was ~30 source files
a stage and ~1000 file entries in dvc.lock, which DVC parses and rewrites after every stage it
runs: 1.7 s a stage (against 0.4 s for the rest of the lock file). So the `code` stage, which
depends on every source file, writes one small file per stage module (`code/<module>.json`):
the hashes of exactly the files that module's process imports. Each stage depends on its own
file, which changes when, and only when, one of those files does.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
NAME = PACKAGE.name
# Compiled modules, by the C source they are built from (setup.py).
EXTENSIONS = {"engine._gemm": "engine/gemm.c"}


def module_file(module: str, package: Path = PACKAGE) -> Path:
    """The file a module of the package runs ("" is the package itself)."""
    if module in EXTENSIONS:
        return package / EXTENSIONS[module]
    if not module:
        return package / "__init__.py"
    path = package / f"{module.replace('.', '/')}.py"
    return path if path.exists() else package / module.replace(".", "/") / "__init__.py"


def _is_module(module: str, package: Path) -> bool:
    return module in EXTENSIONS or module_file(module, package).exists()


def _with_packages(module: str) -> set[str]:
    """A module and the packages above it: importing `a.b.c` runs `a/__init__.py` and
    `a/b/__init__.py` first (the package's own `__init__.py` included, as "")."""
    parts = module.split(".")
    return {module, ""} | {".".join(parts[:i]) for i in range(1, len(parts))}


def imported_modules(path: Path, package: Path = PACKAGE) -> set[str]:
    """The package's modules a file imports, at the top or inside functions; imports under
    `if TYPE_CHECKING:` are for type hints and never run."""
    if path.suffix == ".c":
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == NAME:
            base = (node.module or "").partition(".")[2]
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                found |= _with_packages(sub if _is_module(sub, package) else base)
        elif isinstance(node, ast.Import):
            found |= {m for a in node.names if a.name.startswith(f"{NAME}.")
                      for m in _with_packages(a.name.split(".", 1)[1])}
    return found


def closure(*modules: str, package: Path = PACKAGE,
            parsed: dict[Path, set[str]] | None = None) -> set[str]:
    """The modules that importing `modules` runs, transitively (their packages included).
    `parsed` keeps each file's imports across calls, so that a file is parsed once."""
    parsed = {} if parsed is None else parsed
    seen: set[str] = set()
    todo = sorted(set().union(*(_with_packages(m) for m in modules)))
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            path = module_file(m, package)
            if path not in parsed:
                parsed[path] = imported_modules(path, package)
            todo += sorted(parsed[path])
    return seen


def stage_modules(package: Path = PACKAGE) -> list[str]:
    """The stage modules (`python -m lstm_overfit <module>`), without reading them."""
    return sorted(p.stem for p in (package / "stages").glob("*.py") if p.stem != "__init__")


def stage_files(stage: str, package: Path = PACKAGE,
                parsed: dict[Path, set[str]] | None = None) -> list[str]:
    """What `python -m lstm_overfit <stage>` runs: the entry point's and the stage module's
    closure, as paths under the package's folder (`lstm_overfit/engine/fast.py`)."""
    files = {module_file(m, package) for m in closure("__main__", f"stages.{stage}",
                                                      package=package, parsed=parsed)}
    return sorted(str(f.relative_to(package.parent)) for f in files)


def fingerprints(stages: list[str], package: Path = PACKAGE) -> dict[str, dict[str, str]]:
    """The SHA-256 of every file each stage runs, by path: what its `code/<stage>.json` holds.
    Each file is parsed and hashed once, however many stages run it."""
    parsed: dict[Path, set[str]] = {}
    digests: dict[str, str] = {}
    out = {}
    for stage in stages:
        names = stage_files(stage, package, parsed)
        for name in names:
            if name not in digests:
                digests[name] = hashlib.sha256((package.parent / name).read_bytes()).hexdigest()
        out[stage] = {name: digests[name] for name in names}
    return out


def fingerprint(stage: str, package: Path = PACKAGE) -> dict[str, str]:
    """One stage's `fingerprints`."""
    return fingerprints([stage], package)[stage]
