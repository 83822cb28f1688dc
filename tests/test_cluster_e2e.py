"""The pipeline on a Dask cluster, through the real `dvc repro`: a real scheduler and two real
workers on loopback (`dask scheduler`, `dask worker`), tiny params. A stage of each training
kind trains in process in one copy and on the cluster in a fresh clone of it: every output is
the same, byte for byte, and the stage process alone writes MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import git_project, sh, stages_run, tiny_params

pytestmark = pytest.mark.e2e
# One stage of each kind that trains (train, curve, sweep, diagnose) and what they need.
STAGES = ["train_baseline@ex1", "train_dropout@sentiment", "curve@l2-ex1_small", "sweep",
          "diagnose@sunspots"]


def test_a_cluster_trains_with_the_in_process_bits(tmp_path, repo_params, dask_cluster):
    home = tmp_path / "home"
    git_project(home, tiny_params(repo_params), "in process")
    sh("dvc", "repro", *STAGES, cwd=home)
    sh("git", "add", "-A", cwd=home)
    sh("git", "commit", "-qm", "trained in process", cwd=home)

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(home), str(clone), cwd=tmp_path)
    out = sh("dvc", "repro", *STAGES, cwd=clone,
             env={"DASK_SCHEDULER_ADDRESS": dask_cluster.address})
    assert set(STAGES) <= stages_run(out.stdout)
    assert out.stdout.count(f"training on the Dask cluster at {dask_cluster.address}") == len(STAGES)
    # dvc.lock holds every output's hash, the metrics and plots are in git: nothing differs.
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""

    client = MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lstm-overfit").experiment_id
    runs = client.search_runs([exp], max_results=1000)
    assert runs and {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if r.info.run_name == "ex1/baseline/seed0")
    curve = client.get_metric_history(child.info.run_id, "train_frac")
    assert len(curve) >= 3  # the per-epoch curve, relayed from the worker
    parent = next(r for r in runs if r.info.run_name == "sunspots/shuffled")
    assert "train_frac_mean" in parent.data.metrics and parent.data.tags["diagnosis.answer"]
    assert not list(Path(clone).rglob("*.partial-*"))
