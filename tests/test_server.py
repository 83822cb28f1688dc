"""The warm server's own process: what it prepares before forking stages must leave it safe to
fork (no thread of its own running), and its stages must behave as fresh processes do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path


def test_the_warm_up_leaves_no_thread_that_a_fork_would_lose():
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os
        from lstm_overfit.infrastructure.runtime import pin_runtime
        pin_runtime()
        from lstm_overfit.server import warm_steps
        for step in warm_steps():
            step()
        import sys
        from lstm_overfit.engine import kernels
        for task in sorted(os.listdir("/proc/self/task")):
            print(open(f"/proc/self/task/{task}/comm").read().strip())
        print("keras" in sys.modules, "mlflow" in sys.modules, bool(kernels.train_step.signatures),
              "statsmodels.stats.diagnostic" in sys.modules)
        # What a stage or its side process would otherwise import anew: Dask's configuration,
        # GitPython, MLflow's pyfunc and tracing.
        print(*(m in sys.modules for m in ("dask.config", "git", "mlflow.pyfunc",
                                           "mlflow.tracing.processor.base_mlflow")))
    """)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    *threads, loaded, lazy = out.stdout.splitlines()
    # The main thread, and pyarrow's jemalloc helper (pandas imports pyarrow), which jemalloc
    # itself stops and restarts around a fork.
    assert threads[0] == "python" and set(threads[1:]) <= {"jemalloc_bg_thd"}, threads
    assert loaded == "True True True True"
    assert lazy == "True True True True"


def test_a_stage_through_the_server_answers_as_one_run_in_its_own_process(tmp_path):
    sockets = Path(tempfile.mkdtemp(prefix="warm", dir="/tmp"))  # short: a socket's path
    env = {**os.environ, "XDG_RUNTIME_DIR": str(sockets)}
    warm = subprocess.run([sys.executable, "-m", "lstm_overfit", "generate", "--bad"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    cold = subprocess.run([sys.executable, "-m", "lstm_overfit", "generate", "--bad"],
                          capture_output=True, text=True, env={**env, "LSTM_OVERFIT_WARM": "0"},
                          cwd=tmp_path, timeout=300)
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert warm.returncode == 2 and "generate: error:" in warm.stderr
    assert list(sockets.rglob("*.sock"))  # it did go through a server
    subprocess.run(["pkill", "-f", str(sockets)], check=False)
    shutil.rmtree(sockets, ignore_errors=True)
