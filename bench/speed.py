"""Speed benchmark: the machine's ceiling, the engine against it and against the article's way,
what each lever is worth, and the pipeline stage by stage. Everything is measured in this one
run, side by side, on this machine; run it on a quiet machine.

    python bench/speed.py               # ceiling, shapes, engine vs the article's way, levers (~4 min)
    python bench/speed.py --pipeline    # and a forced repro of a copy of the project (~15 min)
    python bench/speed.py --stage-vs REV  # one stage at REV and at HEAD, alternately (a lever)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pinned_env(**extra: str) -> dict[str, str]:
    """The environment the stages run in (runtime.py), plus `extra`."""
    from lstm_overfit.infrastructure.runtime import PINNED_ENV

    return {**os.environ, **PINNED_ENV, **extra}


def timed(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, out.stdout


# --- the ceiling and the shapes the model runs --------------------------------------------

CEILING = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from threadpoolctl import threadpool_limits
    threads = int(sys.argv[1])
    shapes = json.loads(sys.argv[2])
    work = float(sys.argv[3])  # FLOP per timed batch of products
    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(threads):
        for m, k, n in shapes:
            a = rng.random((m, k), dtype=np.float32)
            b = rng.random((k, n), dtype=np.float32)
            c = np.empty((m, n), np.float32)
            reps = max(3, int(work / (2 * m * k * n)))
            np.matmul(a, b, out=c)
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(reps):
                    np.matmul(a, b, out=c)
                best = min(best, (time.perf_counter() - t) / reps)
            out[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    print(json.dumps(out))
""")
SQUARE = [2048, 2048, 2048]
# The ceiling's batches last ~1 s each (best of 3): a batch of ~0.1 s could fall in a moment when
# the host gave the second core to someone else, and a low ceiling flatters every percentage.
SQUARE_WORK, GATE_WORK = 2e11, 2e10
GATES = [[32, 128, 512], [32, 256, 1024], [32, 64, 256], [128, 608, 512], [256, 608, 1024]]

OUR_PRODUCT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from lstm_overfit.engine.kernels import gemm_kernel, gemm_path
    fn = gemm_kernel()
    rng = np.random.default_rng(0)
    out = {}
    for m, k, n in json.loads(sys.argv[1]):
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        c = np.empty((m, n), np.float32)
        reps = max(3, int(2e10 / (2 * m * k * n)))
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(reps):
                fn(0, m, n, k, a.ctypes.data, k, b.ctypes.data, n, c.ctypes.data, n)
            best = min(best, (time.perf_counter() - t) / reps)
        out[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    print(json.dumps({"path": gemm_path(), "rates": out}))
""")


def unpinned_env() -> dict[str, str]:
    """This CPU's own choice: OpenBLAS's kernels for it, every core."""
    from lstm_overfit.infrastructure.runtime import PINNED_ENV

    return {k: v for k, v in os.environ.items() if k not in PINNED_ENV}


def all_cores() -> str:
    return str(len(os.sched_getaffinity(0)))


def square_ceiling() -> float:
    """The machine's own ceiling now: GFLOP/s of a 2048-square fp32 product on every core,
    OpenBLAS's kernels for this CPU."""
    _, out = timed([sys.executable, "-c", CEILING, all_cores(), json.dumps([SQUARE]),
                    str(SQUARE_WORK)], ROOT, unpinned_env())
    return json.loads(out)["2048x2048x2048"]


def ceiling() -> dict[str, dict]:
    """GFLOP/s of fp32 matrix products: the machine's own ceiling (OpenBLAS's kernels for
    this CPU, a large square product on every core); the same under the Haswell pin that
    numpy runs with in the stages; and the model's gate shapes on one core (what each run
    uses), through OpenBLAS and through the engine's own product on each of its paths."""
    runs: dict[str, dict] = {"own, all cores": {"2048x2048x2048": square_ceiling()}}
    for label, env, threads, shapes, work in (
            ("own, one core", unpinned_env(), "1", [SQUARE], SQUARE_WORK),
            ("own, one core", unpinned_env(), "1", GATES, GATE_WORK),
            ("Haswell pin, all cores", pinned_env(), all_cores(), [SQUARE], SQUARE_WORK)):
        _, out = timed([sys.executable, "-c", CEILING, threads, json.dumps(shapes), str(work)],
                       ROOT, env)
        runs.setdefault(label, {}).update(json.loads(out))
    for path in ("", "avx2"):
        _, out = timed([sys.executable, "-c", OUR_PRODUCT, json.dumps(GATES)], ROOT,
                       pinned_env(LSTM_OVERFIT_GEMM=path))
        got = json.loads(out)
        runs[f"engine ({got['path']})"] = got["rates"]
    return runs


# --- the engine against the article's way --------------------------------------------------

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

OURS = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from lstm_overfit.infrastructure.runtime import pin_runtime
    pin_runtime()
    import numpy as np
    from lstm_overfit.datasets.arrays import Dataset
    from lstm_overfit.engine.fast import Job, Network, RunSpec, Schedule, initial_weights, train_all
    models, epochs, n, steps, features, units, workers, measure, lend, at_once = map(
        int, sys.argv[1:11])
    rng = np.random.default_rng(2)
    x = rng.random((n, steps, features), dtype=np.float32)
    y = rng.random((n, 1), dtype=np.float32)
    data = Dataset(x, y, x[: max(1, n // 4)], y[: max(1, n // 4)])
    evals = tuple(range(1, epochs + 1)) if measure else (epochs,)
    jobs = [Job("b", data, Network(units, features), RunSpec("baseline", s),
                Schedule(epochs, evals), 32) for s in range(models)]
    initial_weights(jobs[0].network, 0)  # numba's compiled draws load outside the training time
    t1 = time.perf_counter()
    train_all(jobs, workers=workers, lend=bool(lend), at_once=at_once or None)
    t2 = time.perf_counter()
    flops = sum(j.flops_per_epoch() * epochs + j.flops_per_measurement() * len(evals) for j in jobs)
    print(json.dumps({"setup": t1 - t0, "train": t2 - t1, "flops": flops}))
""")


KERAS_ENGINE = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from lstm_overfit.infrastructure.runtime import pin_runtime
    pin_runtime()
    import numpy as np
    from lstm_overfit.datasets.arrays import Dataset
    from lstm_overfit.engine.fast import Job, Network, RunSpec, Schedule
    from lstm_overfit.engine.keras_fit import train_all
    models, epochs, n, steps, features, units = map(int, sys.argv[1:7])
    rng = np.random.default_rng(2)
    x = rng.random((n, steps, features), dtype=np.float32)
    y = rng.random((n, 1), dtype=np.float32)
    data = Dataset(x, y, x[: max(1, n // 4)], y[: max(1, n // 4)])
    jobs = [Job("b", data, Network(units, features), RunSpec("baseline", s),
                Schedule(epochs, (epochs,)), 32) for s in range(models)]
    train_all(jobs)
    print(json.dumps({"wall_in": time.perf_counter() - t0}))
""")


def keras_engine(models: int, epochs: int, shape: tuple[int, int, int, int]) -> float:
    """engine: keras on the same work: one process, its runs one after the other."""
    args = [str(v) for v in (models, epochs, *shape)]
    return timed([sys.executable, "-c", KERAS_ENGINE, *args], ROOT, pinned_env())[0]


def ours(models: int, epochs: int, shape: tuple[int, int, int, int], workers: int = 0,
         measure: bool = False, env: dict | None = None, lend: bool = True,
         at_once: int = 0) -> dict:
    """The fast engine on `models` runs of random data (at_once 0: the engine's default)."""
    workers = workers or len(os.sched_getaffinity(0))
    args = [str(v) for v in (models, epochs, *shape, workers, int(measure), int(lend), at_once)]
    wall, out = timed([sys.executable, "-c", OURS, *args], ROOT, env or pinned_env())
    return {**json.loads(out), "wall": wall}


def article(models: int, epochs: int, shape: tuple[int, int, int, int]) -> float:
    """The article's code, one plain Keras model per process, one after the other."""
    script = Path(tempfile.mkdtemp()) / "article.py"
    script.write_text(ARTICLE_WAY)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    total = 0.0
    for seed in range(models):
        total += timed([sys.executable, str(script), str(seed), str(epochs),
                        *map(str, shape)], ROOT, env)[0]
    return total


def compare(name: str, shape: tuple[int, int, int, int], models: int, epochs: int) -> None:
    theirs = article(models, epochs, shape)
    us = ours(models, epochs, shape)
    kfit = keras_engine(models, epochs, shape)
    model_epochs = models * epochs
    print(f"\n== {name}: {models} models of LSTM({shape[3]}) on {shape[0]}x{shape[1]}x{shape[2]}, "
          f"{epochs} epochs each")
    print(f"article's way (a process per plain Keras model)  {theirs:7.1f} s  "
          f"{model_epochs / theirs:7.2f} model-epochs/s")
    print(f"engine: keras (fit, fresh order, measured)       {kfit:7.1f} s  "
          f"{model_epochs / kfit:7.2f} model-epochs/s   x{theirs / kfit:.1f}")
    print(f"ours, whole process (start, imports, training)   {us['wall']:7.1f} s  "
          f"{model_epochs / us['wall']:7.2f} model-epochs/s   x{theirs / us['wall']:.1f}")
    print(f"ours, training only                              {us['train']:7.1f} s  "
          f"{model_epochs / us['train']:7.2f} model-epochs/s   x{theirs / us['train']:.1f}   "
          f"{us['flops'] / us['train'] / 1e9:.0f} GFLOP/s")


def levers(shape: tuple[int, int, int, int]) -> None:
    """What each design choice is worth, measured on the same work."""
    models, epochs = 4, 6
    base = ours(models, epochs, shape)
    one = ours(models, epochs, shape, workers=1, at_once=1)
    measured = ours(models, epochs, shape, measure=True)
    avx2 = ours(models, epochs, shape, env=pinned_env(LSTM_OVERFIT_GEMM="avx2"))
    # Three seeds on two cores, as every training stage runs: all three at once, or two at a
    # time with the third alone at the end, helped by the idle core or not.
    odd = ours(3, epochs, shape)
    in_turn, in_turn_alone = ours(3, epochs, shape, at_once=2), ours(3, epochs, shape, at_once=2,
                                                                     lend=False)
    print(f"\n== levers, {models} runs x {epochs} epochs on {'x'.join(map(str, shape[:3]))}, "
          f"LSTM({shape[3]}) (training time)")
    print(f"runs side by side on {len(os.sched_getaffinity(0))} threads  {base['train']:6.2f} s   "
          f"one thread {one['train']:6.2f} s   -> x{one['train'] / base['train']:.2f}")
    print(f"measuring every epoch (train + validation set)   {measured['train']:6.2f} s   "
          f"-> +{measured['train'] / base['train'] - 1:.0%} (the pipeline measures ~10% of epochs)")
    print(f"the product's widest path on this CPU            {base['train']:6.2f} s   "
          f"held to AVX2 {avx2['train']:6.2f} s   -> x{avx2['train'] / base['train']:.2f} "
          "(same bits)")
    print(f"3 runs, two at a time: the idle core helps the last one's products "
          f"{in_turn['train']:6.2f} s   it does not {in_turn_alone['train']:6.2f} s   -> "
          f"x{in_turn_alone['train'] / in_turn['train']:.2f} (same bits)")
    print(f"3 runs all at once (the default)                 {odd['train']:6.2f} s   "
          f"two at a time, helped {in_turn['train']:6.2f} s   -> "
          f"x{in_turn['train'] / odd['train']:.2f} (same bits; equal lengths here, unlike a "
          "stage's)")


# --- the pipeline, stage by stage ----------------------------------------------------------

def stage_order(root: Path, env: dict) -> list[str]:
    """Stage names in an order that respects dependencies, from `dvc dag --dot`."""
    _, dot = timed(["dvc", "dag", "--dot"], root, env)
    nodes = re.findall(r'^"([^"]+)";$', dot, flags=re.M)
    edges = set(re.findall(r'^"([^"]+)" -> "([^"]+)";$', dot, flags=re.M))
    ordered: list[str] = []
    while nodes:
        ready = [n for n in nodes if not any((m, n) in edges for m in nodes)]
        ordered += ready
        nodes = [n for n in nodes if n not in ready]
    return ordered


TRAINING_STAGES = ("train", "curve", "sweep", "diagnose")
# The small-data stages (issue 26): their datasets, whatever the stage (the strength curves too).
SMALL_DATA = ("ex1_small", "sine_small", "ex1", "sentiment")


def stage_flops(root: Path, stage: str) -> float:
    """Training and measuring FLOPs of a training stage's runs, from its results file."""
    from lstm_overfit.engine.fast import Network, lstm_flops
    from lstm_overfit.records import read_results

    total = 0.0
    files = [*(root / "results").rglob("*.json"), *(root / "diagnoses").glob("*/runs.json")]
    for f in files:
        if _stage_of(f, root) != stage:
            continue
        for rec in read_results(f):
            net = Network(rec.units, rec.features, rec.task, rec.vocab)
            per_epoch = lstm_flops(rec.n_train, rec.seq_len, net, training=True)
            per_measure = lstm_flops(rec.n_train + rec.n_val, rec.seq_len, net, training=False)
            total += sum(per_epoch * len(r.loss) + per_measure * len(r.epochs) for r in rec.runs)
    return total


def stage_train_seconds(root: Path, stage: str) -> float | None:
    """How long the stage's latest run trained (its MLflow parents' `train_seconds`), from the
    copy's own store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, f"tags.DVC_STAGE = '{stage}' and metrics.train_seconds > 0",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].data.metrics["train_seconds"] if runs else None


def _stage_of(results_file: Path, root: Path) -> str:
    if results_file.is_relative_to(root / "diagnoses"):
        return f"diagnose@{results_file.parent.name}"
    rel = results_file.relative_to(root / "results")
    if rel.parts[0] == "curves":
        kind, dataset = rel.stem.split("-", 1)
        return f"curve@{kind}-{dataset}"
    if rel.name == "sweep.json":
        return "sweep"
    return f"train_{rel.stem}@{rel.parts[0]}"


def bench_pipeline(roof: float, dvc_cache: Path | None = None) -> None:
    """A forced repro of a copy of the project (committed files, default params), one stage at
    a time, timing each; the training stages' GFLOP/s against the machine's ceiling. With
    `dvc_cache` the copy stores its outputs there (and in its run cache): `dvc repro` in the
    project afterwards restores them instead of training again."""
    tmp = Path(tempfile.mkdtemp(prefix="lstm-overfit-bench-"))
    env = {k: v for k, v in pinned_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    try:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        for out in ("dvc.lock",):
            (tmp / out).unlink(missing_ok=True)
        subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
        if dvc_cache is not None:
            subprocess.run(["dvc", "cache", "dir", "--local", str(dvc_cache.resolve())], cwd=tmp,
                           check=True, env=env)
        print("\n== pipeline (default params), stage by stage, in a copy of HEAD")
        print("GFLOP/s and the fraction of the ceiling: over the whole stage (start, imports,"
              " logging), and over its training alone (its MLflow runs' train_seconds)")
        print("fixed s: the stage's wall minus its training (process start, imports, DVC, logging)")
        print(f"{'stage':<28}{'wall s':>8}{'GFLOP':>7}{'GFLOP/s':>9}{'of ceiling':>11}"
              f"{'train s':>9}{'GFLOP/s':>9}{'of ceiling':>11}{'fixed s':>9}")
        total = total_flops = 0.0
        trained: dict[str, float] = {}  # training GFLOP/s of each training stage
        for stage in stage_order(tmp, env):
            wall, _ = timed(["dvc", "repro", "-s", "-f", stage], tmp, env)
            total += wall
            flops = stage_flops(tmp, stage) if stage.startswith(TRAINING_STAGES) else 0
            total_flops += flops
            cells = ""
            if flops:
                rate = flops / wall / 1e9
                cells = f"{flops / 1e9:7.0f}{rate:9.1f}{rate / roof:11.0%}"
                train = stage_train_seconds(tmp, stage)
                if train:
                    fast = trained[stage] = flops / train / 1e9
                    cells += f"{train:9.1f}{fast:9.1f}{fast / roof:11.0%}{wall - train:9.1f}"
            print(f"{stage:<28}{wall:8.1f}{cells}")
        print(f"{'total':<28}{total:8.1f}   ({total / 60:.1f} min; target <= 15 min)")
        # Measured again now: the percentages are against the higher of the two, so that a
        # ceiling caught in a slow minute does not flatter them.
        after = square_ceiling()
        best = max(roof, after)
        print(f"ceiling: {roof:.0f} GFLOP/s before the pipeline, {after:.0f} after; "
              f"against the higher, {best:.0f}:")
        floor = total_flops / (best * 1e9)
        print(f"pipeline: {total_flops / 1e12:.1f} TFLOP of training and measuring; at the ceiling "
              f"{floor:.0f} s (its floor); in {total:.0f} s of stages: {floor / total:.1%} of the "
              "ceiling (target >= 60%)")
        small = [s for s in trained if s.split("@")[-1].split("-")[-1] in SMALL_DATA]
        print(textwrap.fill("small-data stages' training: " + ", ".join(
            f"{s} {trained[s] / best:.0%}" for s in small) + " (target >= 45%)", width=100,
            subsequent_indent="  ", break_on_hyphens=False))
        noop, _ = timed(["dvc", "repro"], tmp, env)
        print(f"no-op dvc repro afterwards: {noop:.1f} s (target < 3 s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_cluster(stage: str = "train_baseline@ex1") -> None:
    """One training stage in process and on a local Dask cluster of two one-thread workers
    (Dask's LocalCluster, started beforehand: a team's cluster is already running), side by
    side in copies of HEAD."""
    from distributed import LocalCluster

    print(f"\n== Dask: {stage} in process, and on a local cluster of 2 workers x 1 thread")
    env = {k: v for k, v in pinned_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        walls = {}
        for name, extra in (("in process", {}),
                            ("on the cluster", {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address})):
            tmp = Path(tempfile.mkdtemp(prefix="lstm-overfit-bench-"))
            try:
                archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True,
                                         capture_output=True).stdout
                subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
                subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
                # Its data, a warm numba cache, and workers that have trained before.
                timed(["dvc", "repro", stage], tmp, {**env, **extra})
                walls[name], _ = timed(["dvc", "repro", "-f", "-s", stage], tmp, {**env, **extra})
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"{name:<16}{walls[name]:8.1f} s")
    print(f"cluster / in process: x{walls['on the cluster'] / walls['in process']:.2f} "
          "(target <= x1.15); runs in flight: 2 on the cluster (one per worker thread), 2 in "
          "process (one per core, the idle core helping the last)")


def copy_at(rev: str, cache: Path) -> Path:
    """A copy of the project at `rev` whose stages run its own code (PYTHONPATH) and share the
    project's DVC cache, so its data stages come from the cache."""
    tmp = Path(tempfile.mkdtemp(prefix=f"lstm-overfit-{rev[:12]}-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
    subprocess.run(["dvc", "cache", "dir", "--local", str(cache.resolve())], cwd=tmp, check=True)
    # gemm.c is checked against its library when it loads: the project's build serves a copy
    # with the same gemm.c, another one is built in the copy.
    engine = ROOT / "src/lstm_overfit/engine"
    if (engine / "gemm.c").read_bytes() == (tmp / "src/lstm_overfit/engine/gemm.c").read_bytes():
        for built in engine.glob("_gemm*.so"):
            shutil.copy(built, tmp / "src/lstm_overfit/engine" / built.name)
    else:
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp,
                       check=True, capture_output=True)
    return tmp


def stage_vs(rev: str, stage: str, reps: int) -> None:
    """One stage, forced, at `rev` and at HEAD, alternately, `reps` times each: the wall, its
    training (MLflow's train_seconds) and the rest, as medians. What a commit's lever is worth."""
    import statistics

    env = {k: v for k, v in pinned_env().items() if not k.startswith(("MLFLOW_", "DVC_"))}
    copies = {name: copy_at(r, ROOT / ".dvc/cache") for name, r in ((rev, rev), ("HEAD", "HEAD"))}
    try:
        for root in copies.values():  # its inputs, a warm numba cache, a store that exists
            timed(["dvc", "repro", stage], root, {**env, "PYTHONPATH": str(root / "src")})
        walls: dict[str, list[tuple[float, float]]] = {name: [] for name in copies}
        for _ in range(reps):
            for name, root in copies.items():
                wall, _ = timed(["dvc", "repro", "-s", "-f", stage], root,
                                {**env, "PYTHONPATH": str(root / "src")})
                walls[name].append((wall, stage_train_seconds(root, stage) or 0.0))
        print(f"\n== {stage}, forced, {reps} times each, alternately (medians)")
        print(f"{'code':<14}{'wall s':>8}{'train s':>9}{'fixed s':>9}")
        for name, runs in walls.items():
            wall = statistics.median(w for w, _ in runs)
            train = statistics.median(t for _, t in runs)
            fixed = statistics.median(w - t for w, t in runs)
            print(f"{name[:12]:<14}{wall:8.1f}{train:9.1f}{fixed:9.1f}")
    finally:
        for root in copies.values():
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", action="store_true", help="also time a forced repro, stage by stage")
    ap.add_argument("--pipeline-only", action="store_true",
                    help="the ceiling and the pipeline only (not the engine against the article's way)")
    ap.add_argument("--dvc-cache", type=Path,
                    help="the pipeline copy's DVC cache (say .dvc/cache: a later `dvc repro` here "
                         "restores what the bench trained)")
    ap.add_argument("--stage-vs", metavar="REV",
                    help="only: one stage at REV and at HEAD, alternately (see --stage)")
    ap.add_argument("--stage", default="train_baseline@ex1_small")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.stage_vs:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        stage_vs(args.stage_vs, args.stage, args.reps)
        return
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    roofs = ceiling()
    roof = roofs["own, all cores"]["2048x2048x2048"]
    print("== the machine's own fp32 matrix-multiply ceiling (OpenBLAS's kernels for this CPU)")
    print(f"2048-square product on every core: {roof:.0f} GFLOP/s   (under the Haswell pin numpy "
          f"runs with in the stages: {roofs['Haswell pin, all cores']['2048x2048x2048']:.0f})")
    engines = [k for k in roofs if k.startswith("engine")]
    print(f"{'one core':>14}{'OpenBLAS':>10}" + "".join(f"{e:>18}" for e in engines))
    for shape, rate in roofs["own, one core"].items():
        cells = "".join(f"{roofs[e][shape]:18.0f}" if shape in roofs[e] else f"{'':>18}"
                        for e in engines)
        print(f"{shape:>14}{rate:10.0f}{cells}")
    if not args.pipeline_only:
        compare("ex2's shape", (1000, 20, 1, 128), models=4, epochs=10)
        compare("ex1's shape", (100, 10, 1, 128), models=4, epochs=60)
        levers((500, 20, 3, 256))
        bench_cluster()
    if args.pipeline or args.pipeline_only:
        bench_pipeline(roof, args.dvc_cache)


if __name__ == "__main__":
    main()
