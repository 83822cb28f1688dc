"""Speed benchmark: where the pipeline's time goes, and our training against the article's way.

    python bench/speed.py                       # breakdown + side-by-side comparison (~3 min)
    python bench/speed.py --pipeline            # also time every stage of a forced full repro
    python bench/speed.py --pipeline --tiny     # ... with tiny params (~3 min)

Everything is measured in this one run, side by side, on this machine; nothing is assumed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run_timed(args: list[str], cwd: Path, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def startup_costs() -> tuple[float, float]:
    """(bare interpreter start, start + the imports every training stage makes)."""
    bare = min(run_timed([sys.executable, "-c", "pass"], ROOT) for _ in range(3))
    imports = min(run_timed([sys.executable, "-c", "import tensorflow, keras, mlflow"], ROOT)
                  for _ in range(2))
    return bare, imports


def stage_order(root: Path) -> list[str]:
    """Stage names in an order that respects dependencies, from `dvc dag --dot`."""
    dot = subprocess.run(["dvc", "dag", "--dot"], cwd=root, capture_output=True, text=True,
                         check=True).stdout
    nodes = re.findall(r'^"([^"]+)";$', dot, flags=re.M)
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, flags=re.M))
    ordered: list[str] = []
    while nodes:
        ready = [n for n in nodes if not any((m, n) in edges for m in nodes)]
        ordered += ready
        nodes = [n for n in nodes if n not in ready]
    return ordered


def bench_pipeline(tiny: bool, imports: float) -> None:
    """A forced repro of a copy of the project, one stage at a time, timing each."""
    from conftest import copy_project, tiny_params

    tmp = Path(tempfile.mkdtemp(prefix="lstm-overfit-bench-"))
    try:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        copy_project(tmp, tiny_params(raw) if tiny else raw)
        subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        print(f"\n== pipeline ({'tiny' if tiny else 'default'} params), stage by stage")
        print(f"{'stage':<22}{'wall s':>9}{'<=start+imports':>17}{'rest (tracing, training, I/O)':>32}")
        total = 0.0
        for stage in stage_order(tmp):
            wall = run_timed(["dvc", "repro", "-s", "-f", stage], tmp, env)
            total += wall
            fixed = min(imports, wall)
            print(f"{stage:<22}{wall:>9.1f}{fixed / wall:>14.0%}{(wall - fixed) / wall:>31.0%}")
        print(f"{'total':<22}{total:>9.1f}   ({total / 60:.1f} min; target <= 15 min for default params)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


ARTICLE_WAY = textwrap.dedent("""
    import sys, time
    import numpy as np
    import keras
    seed, epochs, n, steps, features, units = map(int, sys.argv[1:7])
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(2)
    x = rng.random((n, steps, features), dtype=np.float32)
    y = rng.random((n, 1), dtype=np.float32)
    model = keras.Sequential([keras.Input((steps, features)), keras.layers.LSTM(units),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
""")


def bench_breakdown_and_compare(epochs: int, models: int, bare: float, imports: float) -> None:
    """Ex2's shape (1000 x 20 x 1, LSTM(128)), `models` runs for `epochs` epochs: our engine
    in one process against one plain Keras model per process, the article's code."""
    import numpy as np

    from lstm_overfit.data import Dataset
    from lstm_overfit.training import ModelSpec, RunSpec, train_runs

    n, steps, features, units = 1000, 20, 1, 128
    rng = np.random.default_rng(2)
    data = Dataset(rng.random((n, steps, features), dtype=np.float32),
                   rng.random((n, 1), dtype=np.float32),
                   rng.random((n, steps, features), dtype=np.float32),
                   rng.random((n, 1), dtype=np.float32))
    variants = ("baseline", "dropout", "l2")
    runs = [RunSpec(variants[i % 3], i // 3) for i in range(models)]
    spec = ModelSpec(units, 0.5, 1e-3)

    import keras

    class EpochTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    timer = EpochTimes()
    start = time.perf_counter()
    train_runs(data, spec, runs, epochs, (epochs,), 32, callbacks=[timer])
    ours = time.perf_counter() - start
    first = timer.t[1] - start
    steady = (timer.t[-1] - timer.t[1]) / max(1, epochs - 1)
    print(f"\n== one training stage's work: {models} runs of LSTM({units}) on {n}x{steps}x{features}, "
          f"{epochs} epochs")
    print(f"process start           {bare:7.2f} s")
    print(f"imports (tf, keras, mlflow) {imports - bare:5.2f} s")
    print(f"build + first epoch     {first:7.1f} s   (graph tracing of {models} branches)")
    print(f"remaining epochs        {ours - first:7.1f} s   ({steady:.3f} s/epoch for all runs, "
          f"{steady / models:.3f} s per model-epoch; includes measuring at log-spaced epochs)")
    ours_total = imports + ours

    script = Path(tempfile.mkdtemp()) / "article.py"
    script.write_text(ARTICLE_WAY)
    article = 0.0
    for i in range(models):
        article += run_timed([sys.executable, str(script), str(i), str(epochs), str(n), str(steps),
                              str(features), str(units)], ROOT)
    print(f"\n== the same work the article's way: {models} processes, one plain Keras model each")
    print(f"article's way           {article:7.1f} s")
    print(f"ours (start+imports+training) {ours_total:5.1f} s")
    print(f"throughput ratio        {article / ours_total:7.2f}x  (target >= 1.5x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the side-by-side comparison")
    ap.add_argument("--models", type=int, default=9, help="runs in the comparison (3 variants x 3 seeds)")
    ap.add_argument("--pipeline", action="store_true", help="also time a forced repro, stage by stage")
    ap.add_argument("--tiny", action="store_true", help="with --pipeline: tiny params")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # dvc and the stages' `python` come from the environment this script runs in
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    bare, imports = startup_costs()
    bench_breakdown_and_compare(args.epochs, args.models, bare, imports)
    if args.pipeline:
        bench_pipeline(args.tiny, imports)


if __name__ == "__main__":
    main()
