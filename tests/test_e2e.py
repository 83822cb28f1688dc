"""The real pipeline, end to end, as a user drives it: `dvc repro`, `dvc exp run -S`, the run
cache, the queue, `dvc exp show` at a 160-column terminal, `dvc plots diff`, and the MLflow
store at the repository root (tests/infrastructure/test_team.py reads runs through a real `mlflow server`'s
REST API). Tiny params; no mocks of DVC or MLflow. Takes a few minutes."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import ROOT, clean_env, git_project, sh, stages_run, tiny_params, wait_for_queue
from lstm_overfit.science.catalogue import CLAIMS

pytestmark = pytest.mark.e2e
WIDTH = "160"


@pytest.fixture(scope="module")
def project(tmp_path_factory, repo_params) -> Path:
    """A git repo holding a copy of the project with tiny params, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("project")
    git_project(root, tiny_params(repo_params), "e2e")
    first = sh("dvc", "repro", cwd=root)
    assert {"train_baseline@ex1", "curve@dropout-sine_small", "sweep", "figures",
            "report"} <= stages_run(first.stdout)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "after repro", cwd=root)
    return root


def client(root: Path) -> tuple[MlflowClient, str]:
    c = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return c, c.get_experiment_by_name("lstm-overfit").experiment_id


def test_repro_writes_a_verdict_per_claim_and_the_report(project):
    verdicts = json.loads((project / "metrics/verdicts.json").read_text())
    assert list(verdicts) == [c.id for c in CLAIMS] == [f"C{i}" for i in range(1, 9)]
    assert set(verdicts.values()) <= {"supported", "refuted", "partial", "undecided", "mixed"}
    report = (project / "reports/claims.md").read_text()
    for c in CLAIMS:
        assert f"## {c.id}: {verdicts[c.id]}" in report
        for name in c.figures:
            assert (project / "reports/figures" / f"{name}.png").stat().st_size > 5000
    meta = json.loads((project / "data/stocks/meta.json").read_text())
    assert meta["source"] == "snapshot" and meta["tickers"] == ["AAPL"]
    sentiment = json.loads((project / "data/prepared/sentiment/meta.json").read_text())
    assert sentiment["kept"] == sentiment["train"] + sentiment["validation"]


def test_second_repro_is_a_no_op_with_clean_status(project):
    again = sh("dvc", "repro", cwd=project)
    assert stages_run(again.stdout) == set()
    assert "up to date" in sh("dvc", "status", cwd=project).stdout
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""


def test_training_and_figure_stages_enter_the_run_cache(project):
    entries = list((project / ".dvc/cache/runs").rglob("*"))
    cached = "\n".join(p.read_text() for p in entries if p.is_file())
    for stage in ("lstm_overfit train ex1 baseline", "lstm_overfit sweep", "lstm_overfit curve",
                  "lstm_overfit pull_stocks", "lstm_overfit train sentiment dropout",
                  "lstm_overfit claims", "lstm_overfit figures"):
        assert stage in cached, stage


def test_mlflow_store_holds_every_run_with_curves_datasets_and_source(project):
    c, exp = client(project)
    runs = c.search_runs([exp], max_results=1000)
    names = {r.info.run_name for r in runs}
    for d in ("ex1", "ex3", "ex3_seq20", "ex1_small", "sine", "sine_small", "stocks", "sentiment"):
        assert {f"{d}/baseline", f"{d}/baseline/seed0", f"{d}/baseline/seed1"} <= names
    assert {"sentiment/dropout0.5/seed1", "ex1_small/dropout0.3", "sine_small/l2_0.01",
            "sweep_n8/baseline", "claims"} <= names
    assert {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if r.info.run_name == "ex1/baseline/seed1")
    assert child.data.tags["DVC_STAGE"] == "train_baseline@ex1"
    assert child.data.tags["mlflow.source.git.commit"]
    assert child.inputs.dataset_inputs
    # tracking left no run id or timestamp in any DVC output
    assert child.info.run_id not in (project / "results/ex1/baseline.json").read_text()


QUEUED = {
    # The article's dropout rate: only the dropout runs retrain, never the baselines, the L2
    # runs, the curves (their own grids) or the sweep. (Every param's reach is checked
    # against dvc.yaml in test_dvc_deps.py; these two go through the real DVC.)
    "e2e-strength": (["-S", "model.dropout_rate=0.3"],
                     {"train_dropout@sentiment", "claims", "figures", "report"}),
    # One dataset's budget: only its stage.
    "e2e-ex1": (["-S", "train.ex1.epochs=5"], {"train_baseline@ex1", "claims", "figures", "report"}),
}


def test_queued_experiments_retrain_only_what_their_params_affect(project):
    """Two experiments through the queue, two workers at once: each reruns exactly the stages
    its params reach, and every run lands FINISHED in the store at the repository root."""
    for name, (args, _) in QUEUED.items():
        sh("dvc", "exp", "run", "--queue", "-n", name, *args, cwd=project)
    sh("dvc", "queue", "start", "-j", "2", cwd=project)
    status = wait_for_queue(project)
    assert status.count("Success") == len(QUEUED), status
    c, exp = client(project)
    for name, (_, stages) in QUEUED.items():
        logs = sh("dvc", "queue", "logs", name, cwd=project).stdout
        assert stages_run(logs) == stages, logs
        runs = c.search_runs([exp], f"tags.DVC_EXP_NAME = '{name}'", max_results=100)
        assert {r.info.status for r in runs} == {"FINISHED"} and "claims" in {
            r.info.run_name for r in runs}
    ex1 = c.search_runs([exp], "tags.DVC_EXP_NAME = 'e2e-ex1' and "
                               "attributes.run_name = 'ex1/baseline/seed0'")
    assert ex1[0].data.params["max_epochs"] == "5"
    assert not list((project / ".dvc/tmp/exps").glob("**/mlflow.db"))


def test_a_setting_tried_before_comes_back_from_the_run_cache(project):
    """Back to e2e-ex1's setting in the workspace: its training, verdicts and figures come back
    from the run cache; only the report's Markdown (versioned in git, an output DVC never
    run-caches) is written again."""
    out = sh("dvc", "exp", "run", "-n", "e2e-again", "-S", "train.ex1.epochs=5", cwd=project)
    assert stages_run(out.stdout) == {"report"}, out.stdout
    for stage in ("train_baseline@ex1", "claims", "figures"):
        assert f"Stage '{stage}' is cached" in out.stdout, out.stdout
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def test_bad_param_through_dvc_fails_with_one_line(project):
    out = sh("dvc", "exp", "run", "-S", "train.ex3.epochs=0", cwd=project, check=False)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "error: params.yaml: train.ex3.epochs = 0: Input should be greater than or equal to 1" in text
    assert "Traceback" not in text
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def readme_exp_show_commands() -> list[tuple[str, str]]:
    """(command, what it promises) for every `dvc exp show` line in the README's code blocks."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"^(dvc exp show[^#\n]*?)\s*#\s*(.+)$", text, flags=re.M)
    assert found, "the README shows no dvc exp show command"
    return [(cmd.strip(), promise.strip()) for cmd, promise in found]


def in_terminal(args: list[str], cwd: Path, columns: int = 160) -> str:
    """Run a command as a user's terminal would: stdout a terminal `columns` wide, DVC's pager
    set to `cat`. Returns what the terminal shows, colours stripped, each line cut at the
    terminal's width (what `less -S` shows before one scrolls right)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = clean_env(DVC_PAGER="cat", COLUMNS=str(columns), TERM="xterm")
    proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    return "\n".join(line[:columns] for line in text.replace("\r", "").splitlines())


def rows(screen: str) -> dict[str, str]:
    """Each table row by its experiment: the workspace, the baseline commit, each experiment."""
    out = {}
    for line in screen.splitlines():
        m = re.match(r"\s*(?:[├└]── \w+ \[([\w-]+)\]|(workspace|main))\s", line)
        if m:
            out[m.group(1) or m.group(2)] = line
    return out


def test_exp_show_commands_of_the_readme_show_what_they_promise(project):
    """Every `dvc exp show` line of the README, run as in a 160-column terminal: the default
    shows each claim's verdict, in full, for the workspace and every experiment; the numbers
    recipe shows one claim's budget verdict and its numbers."""
    import shlex

    verdicts = json.loads((project / "metrics/verdicts.json").read_text())
    claims = json.loads((project / "metrics/claims.json").read_text())
    commands = dict(readme_exp_show_commands())
    assert "dvc exp show" in commands
    for cmd, promise in commands.items():
        screen = in_terminal(shlex.split(cmd), project)
        header = screen.splitlines()[1]
        table = rows(screen)
        assert {"workspace", "main", *QUEUED, "e2e-again"} <= set(table), screen
        if cmd == "dvc exp show":
            assert "one column per claim" in promise
            assert re.findall(r"\bC\d\b(?!\.)", header) == list(verdicts), screen
            for claim, verdict in verdicts.items():
                assert verdict in table["workspace"], (claim, screen)
            for name in (*QUEUED, "e2e-again"):
                assert len(re.findall(r"\b(supported|refuted|partial|mixed|undecided)\b",
                                      table[name])) == len(verdicts), screen
        else:
            claim, part = re.search(r"\^(C\d)\\\.(\w+)", cmd).groups()
            assert claim in promise
            assert f"{claim}.{part}.verdict" in header.replace(" ", "") or "verdict" in header, screen
            assert claims[claim][part]["verdict"] in table["workspace"], screen
            number = next(k for k, v in claims[claim][part].items() if v is not None
                          and k not in ("verdict", "margin", "fragile", "seeds", "says"))
            assert number in header or number[:10] in screen, screen
            assert "…" not in table["workspace"], screen


def test_plots_diff_compares_learning_curves_across_experiments(project):
    out = sh("dvc", "plots", "diff", "HEAD", "e2e-ex1", "--json", cwd=project).stdout
    data = json.loads(out)
    text = json.dumps(data)
    assert "plots/curves/ex1/baseline.csv" in text and "e2e-ex1" in text
