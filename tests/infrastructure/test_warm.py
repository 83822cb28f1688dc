"""The warm server: a stage handed to it runs as a fresh process would, and ends as it would.

A real server and real clients, in subprocesses: the server's runner is a small test program
(`RUNNER`), so that each case shows one behaviour; the stages' own server is exercised by every
test that runs `python -m lstm_overfit` (test_cli, test_e2e, ...)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lstm_overfit.infrastructure import warm

SERVER = textwrap.dedent("""
    import os, signal, sys, tempfile, time
    from pathlib import Path
    from lstm_overfit.infrastructure import warm

    def runner(argv):
        what = argv[0]
        if what == "show":
            print("cwd", os.getcwd())
            print("env", os.environ.get("WARM_TEST"))
            print("argv", sys.argv[1:])
            print("pids", os.getpid(), os.getppid())
            print("sigint", signal.getsignal(signal.SIGINT))
            print("umask", oct(os.umask(0)))
            print("cpus", sorted(os.sched_getaffinity(0)))
            print("tmp", tempfile.gettempdir())
            return int(argv[1])
        if what == "raise":
            raise ValueError("broken stage")
        if what == "exit":
            sys.exit("a message")
        if what == "sleep":
            print("pid", os.getpid(), flush=True)
            time.sleep(60)
        return 0

    warm.serve(Path(sys.argv[2]), [], lambda: None, runner, idle_s=float(sys.argv[1]))
    """)

CLIENT = textwrap.dedent("""
    import sys
    from lstm_overfit.infrastructure import warm
    key, server, idle = sys.argv[1:4]
    code = warm.run(sys.argv[4:], key, [sys.executable, server, idle])
    sys.exit(99 if code is None else code)
    """)


@pytest.fixture
def run_dir():
    """A socket folder of the test's own, short enough for a socket's path (pytest's tmp_path
    under xdist is not)."""
    path = Path(tempfile.mkdtemp(prefix="warm", dir="/tmp"))
    yield path
    for sock in path.rglob("*.sock"):  # stop the test's server now, not when idle
        subprocess.run(["pkill", "-f", str(sock)], check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def warmed(tmp_path, run_dir):
    """A client command line for a test server of its own (own socket folder, own key)."""
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "client.py").write_text(CLIENT)
    (tmp_path / "t").mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir), "WARM_TEST": "from the stage",
           "TMPDIR": str(tmp_path / "t")}
    env.pop(warm.SWITCH, None)

    def command(*argv: str, idle: float = 30.0) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, str(tmp_path / "client.py"), "k", str(tmp_path / "server.py"),
                str(idle), *argv], env

    return command


def run(cmd_env, cwd: Path, **kw) -> subprocess.CompletedProcess:
    cmd, env = cmd_env
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, **kw)


def fields(out: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_a_stage_runs_in_a_child_with_its_own_arguments_directory_environment_and_streams(
        warmed, tmp_path):
    here = tmp_path / "somewhere"
    here.mkdir()
    # SIGINT as a shell's foreground job has it, even when pytest itself runs as a background
    # job (which ignores it, and so would its children: see the test with an ignored SIGINT).
    first = run(warmed("show", "3", "--flag"), here,
                preexec_fn=lambda: (os.umask(0o077), os.sched_setaffinity(0, {0}),
                                    signal.signal(signal.SIGINT, signal.SIG_DFL)))
    assert first.returncode == 3, first.stderr
    got = fields(first.stdout)
    assert got["cwd"] == str(here)
    assert got["env"] == "from the stage"
    assert got["argv"] == "['show', '3', '--flag']"
    assert got["sigint"] == str(signal.default_int_handler)
    assert got["umask"] == oct(0o077)
    assert got["cpus"] == "[0]"  # `taskset -c 0` reaches the stage
    assert got["tmp"] == str(tmp_path / "t")  # TMPDIR, read again in the child
    second = fields(run(warmed("show", "0"), tmp_path).stdout)
    # one server, a new child for each stage
    assert second["pids"].split()[1] == got["pids"].split()[1]
    assert second["pids"].split()[0] != got["pids"].split()[0]


def test_errors_end_the_stage_as_they_would_end_a_fresh_process(warmed, tmp_path):
    raised = run(warmed("raise", "x"), tmp_path)
    assert raised.returncode == 1
    assert "ValueError: broken stage" in raised.stderr
    # the traceback starts at the stage's code, as a fresh process's does after runpy's frames
    assert "in runner" in raised.stderr and "warm.py" not in raised.stderr, raised.stderr
    exited = run(warmed("exit", "x"), tmp_path)
    assert (exited.returncode, exited.stderr.strip()) == (1, "a message")


def test_a_stage_that_ended_before_its_request_was_fully_handed_over_is_not_run_again(
        monkeypatch):
    """A quick stage can be run and reported, and its socket closed, while the stage's process
    is still in its send call: what follows must read the end, not fail and retry (seen ~1 in
    100 runs of a stage that exits at once, each run twice)."""
    stage, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def serve_at_once():
        frame, fds, _, _ = socket.recv_fds(server, 1 << 20, 3)
        size = warm.FRAME.unpack(frame[:warm.FRAME.size])[0]
        assert warm._receive(server, size - len(frame) + warm.FRAME.size) is not None
        for fd in fds:
            os.close(fd)
        server.sendall(warm.STARTED.pack(b"s", 4242) + warm.STATUS.pack(0, 3))
        server.close()

    send_fds = socket.send_fds

    def send_then_lose_the_race(sock, buffers, fds):
        sent = send_fds(sock, buffers, fds)
        done = threading.Thread(target=serve_at_once)
        done.start()
        done.join()  # the server ran the stage and closed before this process went on
        return sent

    monkeypatch.setattr(socket, "send_fds", send_then_lose_the_race)
    assert warm._hand_over(stage, ["quick"]) == 3


def test_a_signal_to_the_stage_reaches_its_child_and_ends_the_stage_the_same_way(warmed, tmp_path):
    cmd, env = warmed("sleep", "x")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline().split()[1])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM
    assert not _alive(child)


def test_ctrl_z_stops_the_stages_child_and_fg_resumes_it(warmed, tmp_path):
    cmd, env = warmed("sleep", "x")
    # As a terminal's job has it: SIGTSTP at its default (CI's process tree may ignore it, and
    # an ignored Ctrl-Z is passed on as ignored), in a process group of its own whose parent
    # is outside it (the kernel drops SIGTSTP in an orphaned group, as CI's may be).
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            process_group=0,
                            preexec_fn=lambda: signal.signal(signal.SIGTSTP, signal.SIG_DFL))
    child = int(proc.stdout.readline().split()[1])
    proc.send_signal(signal.SIGTSTP)
    assert _state_becomes(child, "T")
    # A shell offers `fg` only once it has seen the job itself stop: a SIGCONT sent in the
    # instant between the child's stop and the stage's own is a no-op, as for any job.
    assert _state_becomes(proc.pid, "T")
    proc.send_signal(signal.SIGCONT)
    assert _state_becomes(child, "S")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == -signal.SIGTERM


def _state_becomes(pid: int, state: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == state:
                return True
        time.sleep(0.02)
    return False


def test_a_socket_folder_others_may_enter_is_not_used(run_dir, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    (run_dir / f"lstm-overfit-{os.getuid()}").mkdir(mode=0o755)
    os.chmod(run_dir / f"lstm-overfit-{os.getuid()}", 0o755)
    with pytest.raises(PermissionError):
        warm.socket_dir()
    assert warm.run(["x"], "k", [sys.executable, "-c", "raise SystemExit(1)"]) is None


def test_an_ignored_sigint_stays_ignored_in_the_child(warmed, tmp_path):
    out = run(warmed("show", "0"), tmp_path,
              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert fields(out.stdout)["sigint"] == str(signal.SIG_IGN)


def test_a_stage_killed_with_sigkill_takes_its_child_with_it(warmed, tmp_path):
    cmd, env = warmed("sleep", "x")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline().split()[1])
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_the_server_stops_by_itself_when_idle(warmed, tmp_path):
    cmd_env = warmed("show", "0", idle=0.5)
    server = int(fields(run(cmd_env, tmp_path).stdout)["pids"].split()[1])
    deadline = time.monotonic() + 15
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server)
    assert not list((Path(cmd_env[1]["XDG_RUNTIME_DIR"])).rglob("*.sock"))
    assert run(cmd_env, tmp_path).returncode == 0  # the next stage starts a new one


def test_without_a_server_the_caller_runs_the_stage_itself(run_dir, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    started = time.monotonic()
    assert warm.run(["x"], "k", [sys.executable, "-c", "raise SystemExit(1)"]) is None
    assert time.monotonic() - started < 5
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir / ("x" * 100)))  # no socket fits there
    assert warm.run(["x"], "k", [sys.executable, "-c", "raise SystemExit(1)"]) is None


def test_the_key_changes_with_the_code_and_the_load_time_environment_only(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    env = {"OPENBLAS_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": "sqlite:///a.db"}
    key = warm.build_key(tmp_path, env)
    assert warm.build_key(tmp_path, {**env, "MLFLOW_TRACKING_URI": "sqlite:///b.db"}) == key
    assert warm.build_key(tmp_path, {**env, "OPENBLAS_NUM_THREADS": "2"}) != key
    (tmp_path / "a.py").write_text("x = 2\n")
    assert warm.build_key(tmp_path, env) != key


def test_a_stage_under_other_limits_gets_a_server_of_its_own(tmp_path):
    """`ulimit -n 64 && dvc repro`: a child keeps its server's limits, so such a stage must not
    run in a server started under other limits."""
    key = warm.build_key(tmp_path, {})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    try:
        assert warm.build_key(tmp_path, {}) != key
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert warm.build_key(tmp_path, {}) == key


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has not been reaped by its parent yet, but no longer runs
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    # reaped between the kill and the read: opening gives ENOENT, reading an open file ESRCH
    except (FileNotFoundError, ProcessLookupError):
        return False
