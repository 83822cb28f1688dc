"""The real pipeline, end to end, as a user drives it: `dvc repro`, `dvc exp run -S`, the run
cache, the queue, `dvc exp show` at a 160-column terminal, `dvc plots diff`, and the MLflow
store at the repository root (tests/infrastructure/test_team.py reads runs through a real `mlflow server`'s
REST API). Tiny params; no mocks of DVC or MLflow. Takes a few minutes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from conftest import (
    OUTSIDE_SETTINGS,
    ROOT,
    clean_env,
    git_project,
    sh,
    stages_run,
    tiny_params,
    wait_for_queue,
)
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
    for d in ("ex1", "ex2", "ex3", "ex3_seq20", "ex1_small", "sine", "sine_small", "stocks",
              "sentiment"):
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
    # The article's dropout rate: only the dropout runs and the series' diagnoses (which train
    # a dropout variant beside their controls) retrain, never the baselines, the L2 runs, the
    # curves (their own grids) or the sweep. (Every param's reach is checked
    # against dvc.yaml in test_dvc_deps.py; these two go through the real DVC.)
    "e2e-strength": (["-S", "model.dropout_rate=0.3"],
                     {"train_dropout@sentiment", "train_dropout@ex2", "diagnose@sunspots",
                      "diagnose@aapl", "claims", "figures", "report"}),
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


# Largest relative difference between the engines' losses and measured errors over the tiny
# pipeline's 4-epoch runs: both are Keras' float32 math, summed in another order.
KERAS_AGREE = 1e-4


def test_the_keras_engine_trains_stages_that_agree_with_the_fast_engine(project):
    """`dvc exp run -S engine=keras` on two regression stages: plain keras.Model.fit from the
    same weights and batch order, with the same records, metrics and MLflow runs."""
    stages = {"train_baseline@ex1", "train_baseline@sine"}
    fast = {s: results(project, s) for s in stages}
    out = sh("dvc", "exp", "run", "-n", "e2e-keras", "-S", "engine=keras", *sorted(stages),
             cwd=project)
    assert stages_run(out.stdout) == stages, out.stdout
    for stage in stages:
        for a, b in zip(fast[stage], results(project, stage), strict=True):
            assert a["loss"] != b["loss"]  # Keras' metric sums in float32: it did retrain
            for key in ("loss", "train_error", "val_error"):
                pairs = list(zip(a[key], b[key], strict=True))
                assert all(abs(x - y) <= KERAS_AGREE * abs(x) for x, y in pairs), (stage, key, pairs)
    c, exp = client(project)
    runs = c.search_runs([exp], "tags.DVC_EXP_NAME = 'e2e-keras'", max_results=100)
    assert {r.info.status for r in runs} == {"FINISHED"}
    seeds = [r for r in runs if "/seed" in r.info.run_name]
    assert len(seeds) == 4 and {r.data.params["engine"] for r in seeds} == {"keras"}
    assert all("train_mse" in r.data.metrics for r in seeds)  # the live curves
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def results(root: Path, stage: str) -> list[dict]:
    """The runs of a train stage's results file."""
    dataset = stage.split("@")[1]
    recs = json.loads((root / f"results/{dataset}/baseline.json").read_text())["records"]
    return [run for rec in recs for run in rec["runs"]]


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
        elif "per series" in promise:
            for name in ("sunspots", "aapl"):  # the default series (visitors is the README's own)
                answer = json.loads((project / f"metrics/series/{name}.json").read_text())[name]
                assert name in header and answer in table["workspace"], screen
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


def my_series_csv(rows: int = 160) -> str:
    """A user's file: ISO dates, a noisy sine as the target, one feature column."""
    import math
    import random

    rnd = random.Random(3)
    lines = ["date,visitors,temperature"]
    for i in range(rows):
        day = f"2024-{1 + i // 28:02d}-{1 + i % 28:02d}"
        lines.append(f"{day},{100 + 20 * math.sin(i * 2 * math.pi / 14) + rnd.gauss(0, 4):.3f},"
                     f"{10 + 5 * math.cos(i * 2 * math.pi / 60):.2f}")
    return "\n".join(lines) + "\n"


MY_SERIES = {"path": "data/mine.csv", "time": "date", "target": "visitors",
             "features": ["temperature"], "transform": "none", "lookback": 7, "horizon": 1,
             "val_fraction": 0.25, "units": 4, "epochs": 12}


def test_own_series_recipe_of_the_readme(project):
    """The README's recipe: a CSV in git, named in params.yaml, `dvc repro`: only its two
    stages and the report run; its diagnosis is in `dvc exp show`, the report and on every
    MLflow run of the series. Then a bad file: one line, non-zero, nothing written."""
    import yaml

    (project / "data/mine.csv").write_text(my_series_csv())
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["series"]["mine"] = MY_SERIES
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "add", "data/mine.csv", "params.yaml", cwd=project)
    try:
        out = sh("dvc", "repro", cwd=project)
        assert stages_run(out.stdout) == {"prepare_series@mine", "diagnose@mine", "report"}
        answer = json.loads((project / "metrics/series/mine.json").read_text())
        diagnosis = json.loads((project / "diagnoses/mine/diagnosis.json").read_text())
        assert answer == {"mine": diagnosis["answer"]} and diagnosis["summary"]
        assert diagnosis["info"]["first"] == "2024-01-01" and diagnosis["info"]["val_rows"] == 40
        assert f"### mine: {diagnosis['answer']}" in (project / "reports/claims.md").read_text()
        assert (project / "reports/series/mine.png").stat().st_size > 5000
        shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=project).stdout)
        workspace = next(e for e in shown if e["rev"] == "workspace")["data"]["metrics"]
        assert workspace["metrics/series/mine.json"]["data"] == {"mine": diagnosis["answer"]}
        c, exp = client(project)
        runs = c.search_runs([exp], "tags.dataset = 'mine'", max_results=100)
        assert {r.info.run_name for r in runs} >= {"mine/baseline", "mine/shuffled/seed1",
                                                   "mine/dropout0.5", "mine/l2_0.001/seed0"}
        assert {r.data.tags["diagnosis.answer"] for r in runs} == {diagnosis["answer"]}
        assert {r.info.status for r in runs} == {"FINISHED"}

        # A bad file: the stage fails with one line naming the line; its output is not written.
        text = my_series_csv().splitlines()
        text[30] = text[30].split(",")[0] + ",,12"
        (project / "data/mine.csv").write_text("\n".join(text) + "\n")
        bad = sh("dvc", "repro", "prepare_series@mine", cwd=project, check=False)
        assert bad.returncode != 0
        errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error:")]
        assert errors == ["error: data/mine.csv: line 31, column 'visitors': a missing value"], \
            bad.stderr
        assert not (project / "data/prepared/series/mine").exists()
    finally:
        sh("git", "reset", "-q", "--hard", "HEAD", cwd=project)
        sh("git", "clean", "-fdq", cwd=project)
        sh("dvc", "checkout", "--force", cwd=project)
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""


# Crash consistency: SIGKILL (what the OOM killer, a closed lid or a CI timeout does) at points
# of a stage's life, then `dvc repro`. Each point is (stage, when): a share of the stage's
# uninterrupted wall time, or an event seen from outside. LSTM_OVERFIT_KILL_POINTS=N adds N
# seeded random points (any stage, any share) to the ones `make test` runs.
KILL_POINTS = [("generate@ex1", 0.5), ("train_baseline@ex1", "training"),
               ("train_baseline@ex1", "writing models"), ("diagnose@sunspots", "training"),
               ("claims", 0.6), ("figures", 0.6), ("report", 0.8)]
KILLABLE = ["generate@sine", "pull_stocks", "prepare_stocks", "prepare_sentiment",
            "train_baseline@ex1", "train_dropout@sentiment", "train_l2@sine_small",
            "curve@l2-ex1_small", "sweep", "prepare_series@aapl", "diagnose@aapl", "claims",
            "figures", "report"]


def _more_kill_points() -> list[tuple[str, float]]:
    import random

    rng = random.Random(24)
    count = int(os.environ.get("LSTM_OVERFIT_KILL_POINTS", "0"))
    return [(rng.choice(KILLABLE), round(rng.uniform(0.05, 0.98), 2)) for _ in range(count)]


def running_runs(root: Path) -> list:
    c, _ = client(root)
    ids = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(ids, "attributes.status = 'RUNNING'", max_results=1000)


def wait_until(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the stage ended before the kill point"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.02)


UNINTERRUPTED: dict[str, float] = {}  # a stage's wall time, forced, without a kill


def forget(root: Path, stage: str, lock: str | None = None) -> None:
    """Remove a stage's outputs from DVC's cache (as `lock`, by default dvc.lock, names them)
    and the run cache: a stage whose outputs are gone is then recomputed, not checked out or
    restored, which is what a crash test has to see."""
    import yaml

    entry = yaml.safe_load(lock or (root / "dvc.lock").read_text())["stages"][stage]
    for out in entry.get("outs", []):
        md5 = out.get("md5")
        if md5:
            (root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink(missing_ok=True)
    shutil.rmtree(root / ".dvc/cache/runs", ignore_errors=True)


def forced(stage: str, root: Path) -> float:
    """`dvc repro -f -s <stage>` to the end; its outputs must come back as committed."""
    start = time.monotonic()
    sh("dvc", "repro", "-f", "-s", stage, cwd=root)
    UNINTERRUPTED[stage] = time.monotonic() - start
    assert sh("git", "status", "--porcelain", cwd=root).stdout == ""
    return UNINTERRUPTED[stage]


def stage_processes(dvc: int) -> list[int]:
    """The processes of `dvc`'s process group other than DVC itself: the stage it runs."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == dvc and int(stat.parent.name) != dvc:  # fields[2]: the group
                found.append(int(stat.parent.name))
    return found


def kill_stage(dvc: subprocess.Popen) -> None:
    """SIGKILL the stage `dvc` runs, as the OOM killer would, as soon as there is one; DVC
    itself lives on and sees its stage die. (DVC killed itself while it rewrites its lock file
    leaves `.dvc/tmp/rwlock` empty: a known DVC limitation, see README.)"""
    while dvc.poll() is None:
        for pid in stage_processes(dvc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.01)


@pytest.mark.parametrize(("stage", "when"), KILL_POINTS + _more_kill_points())
def test_sigkill_anywhere_then_repro_leaves_nothing_behind(project, stage, when):
    """SIGKILL the stage of `dvc repro -f -s <stage>`, then `dvc repro`: every output byte for
    byte as committed, clean `git status` and `dvc status`, no temporary left, no MLflow run
    left RUNNING."""
    # A share of the wall time needs the stage's uninterrupted time; an event does not.
    wall = (UNINTERRUPTED.get(stage) or forced(stage, project)) if isinstance(when, float) else 0
    before = {r.info.run_id for r in running_runs(project)}
    forget(project, stage)
    proc = subprocess.Popen(["dvc", "repro", "-f", "-s", stage], cwd=project, env=clean_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        if when == "training":
            wait_until(lambda: {r.info.run_id for r in running_runs(project)} - before, proc)
        elif when == "writing models":
            wait_until(lambda: any((project / "models/ex1").glob(".baseline.partial-*")), proc)
        else:
            time.sleep(wall * when)
        kill_stage(proc)
    finally:
        proc.wait(timeout=60)
    again = sh("dvc", "repro", cwd=project)
    assert sh("git", "status", "--porcelain", cwd=project).stdout == "", again.stdout
    assert "up to date" in sh("dvc", "status", cwd=project).stdout
    assert not [p for p in project.rglob("*.partial-*") if ".dvc" not in p.parts]
    assert running_runs(project) == []


def test_sigkill_inside_a_queued_experiment_then_its_rerun(project):
    """The stage of a queued experiment killed mid-training (its owner pid read off its MLflow
    run): the task fails, nothing reaches the workspace, and the experiment run again ends
    the dead runs KILLED and writes what the uninterrupted e2e-ex1 wrote."""
    from lstm_overfit.infrastructure.tracking import ENDED_TAG

    c, exp = client(project)
    ref = next(line for line in sh("git", "for-each-ref", "--format=%(refname)", "refs/exps",
                                   cwd=project).stdout.split() if line.endswith("/e2e-ex1"))
    forget(project, "train_baseline@ex1", sh("git", "show", f"{ref}:dvc.lock", cwd=project).stdout)
    sh("dvc", "exp", "run", "--queue", "-n", "e2e-killed", "-S", "train.ex1.epochs=5", cwd=project)
    sh("dvc", "queue", "start", "-j", "1", cwd=project)
    deadline = time.monotonic() + 300
    while not (runs := c.search_runs([exp], "tags.DVC_EXP_NAME = 'e2e-killed' and "
                                            "attributes.status = 'RUNNING'")):
        assert time.monotonic() < deadline, "the queued stage never started training"
        time.sleep(0.05)
    os.kill(int(runs[0].data.tags["lstm_overfit.pid"]), signal.SIGKILL)
    assert "Failed" in wait_for_queue(project)
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""
    out = sh("dvc", "exp", "run", "-n", "e2e-rerun", "-S", "train.ex1.epochs=5", cwd=project)
    assert "train_baseline@ex1" in stages_run(out.stdout)  # recomputed, not restored
    assert not (project / "mlflow.db-journal").exists()  # the killed writer's, gone with the next write
    for run in c.search_runs([exp], "tags.DVC_EXP_NAME = 'e2e-killed'"):
        assert run.info.status == "KILLED" and "is gone" in run.data.tags[ENDED_TAG]
    assert running_runs(project) == []
    for path in ("metrics/ex1/baseline.json", "plots/curves/ex1/baseline.csv"):
        assert (project / path).read_text() == sh("git", "show", f"{ref}:{path}", cwd=project).stdout
    sh("git", "checkout", "--", ".", cwd=project)
    sh("dvc", "checkout", "--force", cwd=project)


def test_the_report_lands_once_its_run_has_ended(project, monkeypatch):
    """Git keeps the report, not DVC's cache: had it landed before its run ended, a kill in
    between would leave a report the next `dvc repro` finds up to date beside a run RUNNING
    that no stage of that repro ends. (The report-0.8 kill point hit that once in eight
    `make test`s.)"""
    import yaml

    from lstm_overfit.infrastructure.tracking import HTTP_DEFAULTS
    from lstm_overfit.stages import report

    c, exp = client(project)
    mine = f"tags.`lstm_overfit.pid` = '{os.getpid()}' and attributes.run_name = 'claims'"
    seen = []
    real = report.atomic_file

    def landing(path: Path):
        seen.append(sorted(r.info.status for r in c.search_runs([exp], mine)))
        return real(path)

    monkeypatch.setattr(report, "atomic_file", landing)
    monkeypatch.chdir(project)
    for key in [k for k in os.environ if k.startswith(OUTSIDE_SETTINGS)]:  # as clean_env
        monkeypatch.delenv(key)
    monkeypatch.setenv("DVC_ROOT", str(project))
    for key, value in HTTP_DEFAULTS.items():  # the tracker's defaults, gone again afterwards
        monkeypatch.setenv(key, value)
    argv = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["report"]["cmd"].split()
    report.main(argv[argv.index("report") + 1:])
    assert seen == [["FINISHED"]]
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""
