"""The real pipeline, end to end: `dvc repro`, `dvc exp run -S`, the queue, and the MLflow
store they fill. Tiny params; no mocks of DVC or MLflow. Takes a few minutes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import copy_project, tiny_params

pytestmark = pytest.mark.e2e


def sh(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory, repo_params) -> Path:
    """A git repo holding a copy of the project with tiny params, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("project")
    copy_project(root, tiny_params(repo_params))
    sh("git", "init", "-q", cwd=root)
    sh("git", "config", "user.email", "e2e@example.invalid", cwd=root)
    sh("git", "config", "user.name", "e2e", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "tiny project", cwd=root)
    first = sh("dvc", "repro", cwd=root)
    assert "train@ex1" in stages_run(first.stdout)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "after repro", cwd=root)
    return root


def claims(root: Path) -> dict:
    return json.loads((root / "metrics/claims.json").read_text())


def test_repro_writes_every_claim_budget_and_report(project):
    c = claims(project)
    assert set(c) == {"C1", "C2", "C3", "C4", "C4_small", "C5", "C6", "C7"}
    for claim, budgets in c.items():
        want = {"equal_steps", "equal_epochs"} if claim == "C7" else {"article", "long"}
        assert set(budgets) == want
        for v in budgets.values():
            assert v["verdict"] in {"supported", "refuted", "inconclusive", "mixed"}
            assert sum(v["seeds"].values()) == 2
    report = (project / "reports/claims.md").read_text()
    assert "## C7" in report and "figures/sweep.png" in report
    assert (project / "reports/figures/curves_stocks.png").stat().st_size > 1000
    metrics = json.loads((project / "metrics/ex2.json").read_text())
    assert set(metrics) == {"baseline", "dropout", "l2"}
    assert set(metrics["dropout"]) == {"at2", "final"}
    meta = json.loads((project / "data/stocks/meta.json").read_text())
    assert meta["source"] == "snapshot" and meta["tickers"] == ["AAPL"]


def test_second_repro_is_a_no_op_with_clean_status(project):
    start = time.monotonic()
    again = sh("dvc", "repro", cwd=project)
    assert stages_run(again.stdout) == set()
    assert time.monotonic() - start < 60
    assert "up to date" in sh("dvc", "status", cwd=project).stdout
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""


def test_mlflow_store_holds_every_dataset_variant_and_seed(project):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lstm-overfit")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    names = {r.info.run_name for r in runs}
    for d in ("ex1", "ex2", "ex3", "ex3_seq20", "sine", "sine_small", "stocks"):
        for v in ("baseline", "dropout", "l2"):
            assert {f"{d}/{v}", f"{d}/{v}/seed0", f"{d}/{v}/seed1"} <= names
    assert {"sweep_n8/baseline", "sweep_n16/baseline/seed1", "claims"} <= names
    assert {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if r.info.run_name == "ex1/l2/seed1")
    assert child.data.params["l2"] == "0.001" and child.data.params["seed"] == "1"
    assert child.data.tags["DVC_STAGE"] == "train@ex1"
    assert len(child.data.tags["data_sha256"]) == 64
    assert len(client.get_metric_history(child.info.run_id, "train_loss")) == 4
    paths = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert "learning_curve_l2_seed1.png" in paths
    # tracking left no run id or timestamp in any DVC output
    assert child.info.run_id not in (project / "results/ex1.json").read_text()


def test_exp_run_reruns_only_what_the_changed_params_affect(project):
    out = sh("dvc", "exp", "run", "-n", "e2e-probe", "-S", "train.ex1.epochs=5",
             "-S", "stocks.tickers=[MSFT]", cwd=project)
    assert stages_run(out.stdout) == {"train@ex1", "pull_stocks", "prepare_stocks",
                                      "train@stocks", "claims", "report"}
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=project).stdout)
    text = json.dumps(shown)
    assert "e2e-probe" in text
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lstm-overfit")
    tagged = client.search_runs([exp.experiment_id], "tags.DVC_EXP_NAME = 'e2e-probe'",
                                max_results=100)
    assert {r.info.run_name for r in tagged} >= {"ex1/baseline", "stocks/l2/seed0", "claims"}
    ex1 = next(r for r in tagged if r.info.run_name == "ex1/baseline/seed0")
    assert ex1.data.params["epochs"] == "5"
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def test_bad_param_through_dvc_fails_with_one_line(project):
    out = sh("dvc", "exp", "run", "-S", "train.ex2.epochs=0", cwd=project, check=False)
    assert out.returncode != 0
    assert "error: params.yaml: train.ex2.epochs = 0: must be an integer >= 1" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr + out.stdout
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def test_queued_experiments_in_parallel_lose_no_run(project):
    for name, epochs in (("q-three", 3), ("q-five", 5)):
        sh("dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.ex3.epochs={epochs}", cwd=project)
    sh("dvc", "queue", "start", "-j", "2", cwd=project)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = sh("dvc", "queue", "status", cwd=project).stdout
        if not re.search(r"\b(Running|Queued)\b", status):
            break
        time.sleep(5)
    else:
        pytest.fail(f"queue did not finish:\n{status}")
    assert status.count("Success") == 2, status
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("lstm-overfit")
    for name, epochs in (("q-three", 3), ("q-five", 5)):
        runs = client.search_runs([exp.experiment_id], f"tags.DVC_EXP_NAME = '{name}'", max_results=100)
        # ex3: 3 variants x (parent + 2 seeds), plus the claims report
        assert len(runs) == 10, [r.info.run_name for r in runs]
        assert {r.info.status for r in runs} == {"FINISHED"}
        seed0 = next(r for r in runs if r.info.run_name == "ex3/baseline/seed0")
        assert seed0.data.params["epochs"] == str(epochs)
    assert not list((project / ".dvc/tmp/exps").glob("**/mlflow.db"))
