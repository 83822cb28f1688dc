"""The warm server's own process: what it imports before its first stage, and how it runs one.

Started by a stage's `python -m lstm_overfit` when no server for this build is listening
(infrastructure/warm.py). Not imported by the stages themselves: what a stage runs is
`cli.run_stage`, in a child forked from this process, once Dask's configuration is read again
from the stage's environment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lstm_overfit.infrastructure import warm
from lstm_overfit.infrastructure.runtime import pin_runtime


def serve(path: str) -> None:
    """The warm server for this build, listening at `path`."""
    pin_runtime()
    from lstm_overfit.cli import run_stage
    from lstm_overfit.engine.cluster import read_configuration
    from lstm_overfit.infrastructure.sidecar import prefork

    def prepare() -> None:
        # In the fork, its environment already the stage's: what the server read from its own
        # environment as it imported (Dask's configuration) is read again, as a fresh process
        # would read it; then the side process is forked.
        read_configuration()
        prefork()

    warm.serve(Path(path), warm_steps(), prepare, run_stage)


def warm_steps() -> list[Callable[[], object]]:
    """What the server does before its first stage: import every stage module (numpy, numba,
    pandas, matplotlib) and Dask's configuration, load the engine's compiled kernels, draw a
    first figure, run one Ljung-Box test (statsmodels, for the diagnoses), import what the
    side process uses (MLflow with its SQL store, Keras) and let MLflow read the installed
    packages.

    Keras is imported only: TensorFlow starts its threads at its first operation, and a
    process with threads cannot be forked safely. Not Keras on a machine with a GPU: the Keras
    engine must find it (runtime.show_gpus) before TensorFlow loads."""
    import importlib

    from lstm_overfit.engine import cluster, fast
    from lstm_overfit.infrastructure.code import stage_modules
    from lstm_overfit.infrastructure.runtime import import_keras
    from lstm_overfit.infrastructure.tracking import (
        import_sql_store,
        warm_mlflow_keras,
        warm_requirements,
    )
    from lstm_overfit.reporting import figures
    from lstm_overfit.science import diagnosis

    steps: list[Callable[[], object]] = [
        lambda: [importlib.import_module(f"lstm_overfit.stages.{name}") for name in stage_modules()],
        cluster.warm_up, fast.warm_up, figures.warm_up, diagnosis.warm_up]
    if not list(Path("/dev").glob("nvidia[0-9]*")):
        steps += [import_keras, warm_mlflow_keras, import_sql_store, warm_requirements]
    return steps
