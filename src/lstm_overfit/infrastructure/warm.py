"""The warm server: stages start in a process that has already imported what they need.

A stage's own work often takes seconds, and starting Python with numpy, the engine's compiled
kernels, pandas, matplotlib, MLflow and Keras takes seconds more, once per stage. The first
stage of a run starts a server that imports them once (`serve`); every stage then hands its
command line to the server (`run`), which forks a child for it. The child is a fresh copy of
the server and runs the stage as a fresh process would: with the stage's arguments,
directory, environment, umask and standard streams (the descriptors themselves, passed over
the Unix socket), and its exit code or signal becomes the stage's. The server runs nothing
itself, so one stage cannot leave state behind for the next.

- A server serves one build: its socket is named by a hash of the package's files, the
  interpreter, the installed packages, the environment variables that libraries read
  when they load and the resource limits (`ulimit`), which a child inherits from the server.
  Changed code gets a new server; the old one stops when idle.
- Ctrl-C, SIGTERM and SIGHUP sent to the stage are passed on to its child; a stage killed
  with SIGKILL closes its socket, and the child kills itself and its own children at once.
- The server stops by itself after `IDLE_S` seconds without a stage.
- `LSTM_OVERFIT_WARM=0` runs every stage in its own process, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import gc
import hashlib
import json
import os
import resource
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

SWITCH = "LSTM_OVERFIT_WARM"  # "0": no server
IDLE_S = 120.0
START_S = 60.0  # the longest a server may take to import everything before its first stage
# Variables that libraries read once, when they load: a server whose imports saw other values
# would run the stage differently from a fresh process.
LOAD_TIME_ENV = ("PYTHON", "OPENBLAS_", "OMP_", "MKL_", "NUMBA_", "NPY_", "TF_", "KERAS_",
                 "ONEDNN_", "CUDA_", "MPL", "HOME", "LANG", "LC_", "XDG_", "TZ", "LD_",
                 "LSTM_OVERFIT_GEMM", "MLFLOW_CONFIGURE_LOGGING", "MLFLOW_LOGGING_LEVEL")
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_MEMLOCK", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_STACK")
SOCKET_PATH_MAX = 107  # bytes: a Unix socket's path must fit sockaddr_un.sun_path
FRAME = struct.Struct("<Q")
STATUS = struct.Struct("<ii")  # (0, exit code) or (1, signal number)
STARTED = struct.Struct("<ci")  # (b"s", the child's pid): the server forked the stage's child
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Runner = Callable[[list[str]], int]


def interpreter_options() -> list[str]:
    """The options this interpreter was started with (`-X importtime`, `-W error`, ...), which
    the server must be started with too."""
    argv = sys.orig_argv
    return argv[1:argv.index("-m")] if "-m" in argv else []


def build_key(package: Path, env: dict[str, str]) -> str:
    """What a server's imports depend on: the package's files, the interpreter and its options,
    the installed packages (their folders' modification times) and the load-time environment;
    and what its children inherit from it: the resource limits."""
    h = hashlib.sha256()
    h.update(f"{sys.executable}\0{sys.version}\0{interpreter_options()}\0".encode())
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".so", ".c") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    for entry in sys.path[1:]:  # not the first: the current directory, or the script's
        with contextlib.suppress(OSError):
            h.update(f"{entry}\0{os.stat(entry).st_mtime_ns}\0".encode())
    for name in sorted(env):
        if name.startswith(LOAD_TIME_ENV):
            h.update(f"{name}={env[name]}\0".encode())
    # A forked child keeps its server's limits (`ulimit`), not the stage's own.
    for name in RLIMITS:
        h.update(f"{name}={resource.getrlimit(getattr(resource, name))}\0".encode())
    return h.hexdigest()[:20]


def socket_dir() -> Path:
    """The user's own folder for the servers' sockets (mode 0700). One that someone else made,
    or that others may enter, is refused (OSError): its sockets could be anyone's."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"lstm-overfit-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{path} is not a folder of this user's alone")
    return path


# ---------------------------------------------------------------------------------------------
# The stage's side


def run(argv: list[str], key: str, command: list[str]) -> int | None:
    """Run `argv` in the warm server for `key`, started with `command` if none is listening.
    Returns the stage's exit code (a stage ended by a signal ends this process by the same
    signal), or None when no server could be reached: the caller then runs the stage itself."""
    try:
        path = socket_dir() / f"{key}.sock"
    except OSError:
        return None
    if len(os.fsencode(path)) + len(".tmp-4194304") > SOCKET_PATH_MAX:
        return None
    for _ in range(3):  # a server that was stopping closes the stage's connection unanswered
        sock = _connect(path) or _start(path, command)
        if sock is None:
            return None
        status = _hand_over(sock, argv)
        if status != RETRY:
            return status
    return None


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


@contextlib.contextmanager
def _lock(path: Path):
    """One process at a time starts or stops the server for `path`."""
    with open(path.with_suffix(".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _start(path: Path, command: list[str]) -> socket.socket | None:
    with _lock(path):
        sock = _connect(path)  # another stage may have started it meanwhile
        if sock is not None:
            return sock
        path.unlink(missing_ok=True)  # left by a server that was killed
        with open(path.with_suffix(".log"), "ab") as log:  # the server's own errors
            server = subprocess.Popen([*command, str(path)], stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, start_new_session=True, cwd="/")
        deadline = time.monotonic() + 10.0
        while not path.exists():  # the server listens before it imports anything
            if server.poll() is not None or time.monotonic() > deadline:
                return None
            time.sleep(0.005)
        return _connect(path)


RETRY = -1  # _hand_over: the server closed the connection before starting the stage


def _hand_over(sock: socket.socket, argv: list[str]) -> int | None:
    """Send the stage and wait for its end: its exit code; RETRY if the server closed before
    starting it; None (run it here) if the server did not start it within START_S."""
    # Signals ignored here (a background job's SIGINT) stay ignored in the child, as they
    # would in a fresh process; the others are passed on, also those that arrive before the
    # child exists.
    ignored = [s for s in (*FORWARDED, signal.SIGTSTP) if signal.getsignal(s) is signal.SIG_IGN]
    child: list[int] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if not child:
            pending.append(signum)
        elif signum == signal.SIGTSTP:  # Ctrl-Z: stop the stage's child too, and resume it
            _signal_group(child[0], signal.SIGSTOP)
            signal.signal(signal.SIGTSTP, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTSTP)
            signal.signal(signal.SIGTSTP, forward)
            _signal_group(child[0], signal.SIGCONT)
        else:
            _signal_group(child[0], signum, group=False)

    request = json.dumps({
        "argv": [sys.argv[0], *argv], "cwd": os.getcwd(), "env": dict(os.environ),
        "umask": _umask(), "ignored": ignored, "cpus": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0)}).encode()
    previous = {s: signal.signal(s, forward)
                for s in (*FORWARDED, signal.SIGTSTP) if s not in ignored}
    try:
        try:
            message = FRAME.pack(len(request)) + request
            sent = socket.send_fds(sock, [message], [0, 1, 2])
            if sent < len(message):  # an empty send to a server that already ran a quick
                sock.sendall(message[sent:])  # stage and closed fails: the stage would rerun
            sock.settimeout(START_S)
            started = _receive(sock, STARTED.size)
        except TimeoutError:
            return None  # the server will see this socket closed and not run the stage
        except OSError:
            return RETRY
        if started is None:
            return RETRY
        sock.settimeout(None)
        child.append(STARTED.unpack(started)[1])
        for signum in pending:
            forward(signum, None)
        status = _receive(sock, STATUS.size)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
    if status is None:
        print("error: the warm server ended before the stage did", file=sys.stderr)
        return 1
    kind, value = STATUS.unpack(status)
    if kind == 1:  # die as the child did, so that DVC sees the same end
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(value, signal.SIG_DFL)
        os.kill(os.getpid(), value)
        return 128 + value
    return value


def _receive(sock: socket.socket, size: int) -> bytes | None:
    """`size` bytes, or None if the socket closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _signal_group(pid: int, signum: int, group: bool = True) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, signum)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------
# The server's side


def serve(path: Path, warm: Iterable[Callable[[], object]], prepare: Callable[[], None],
          runner: Runner, idle_s: float = IDLE_S) -> None:
    """Listen at `path`, run every `warm` step (imports), then fork a child per stage: the
    child calls `prepare` (while it is the only thread), then `runner(argv)`. Ends after
    `idle_s` seconds without a stage, or when another server took over `path`."""
    # Listening before it appears under its name: a stage that finds the name can connect.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fresh = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    listener.bind(str(fresh))
    listener.listen(16)
    os.rename(fresh, path)
    inode = path.stat().st_ino
    for step in warm:
        step()
    # Out of the collector's reach: a child's collections would otherwise touch (and so copy)
    # every page of the server's objects.
    gc.freeze()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    idle_since = time.monotonic()
    while True:
        timeout = max(0.0, idle_since + idle_s - time.monotonic()) if not children else None
        ready, _, _ = select.select([listener, wake_r], [], [], timeout)
        if wake_r in ready:
            os.read(wake_r, 512)
        _reap(children)
        if not children and idle_since == 0.0:
            idle_since = time.monotonic()
        if listener in ready:
            conn, _ = listener.accept()
            pid = _fork_child(conn, listener, (wake_r, wake_w), children, prepare, runner)
            if pid:
                children[pid] = conn
                idle_since = 0.0
            elif not children:
                idle_since = idle_since or time.monotonic()
            continue
        replaced = not path.exists() or path.stat().st_ino != inode
        if replaced or (not children and time.monotonic() - idle_since >= idle_s):
            with _lock(path):
                if not replaced:
                    path.unlink(missing_ok=True)
                listener.close()  # a stage that connected meanwhile starts a new server
            while children:
                pid, status = os.waitpid(-1, 0)
                _report(children.pop(pid, None), status)
            return


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(children.pop(pid, None), status)


def _report(conn: socket.socket | None, status: int) -> None:
    """The child's end, once it is reaped: its exit code, or the signal that ended it."""
    if conn is None:
        return
    end = (1, os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (0, os.WEXITSTATUS(status))
    with contextlib.suppress(OSError):
        conn.sendall(STATUS.pack(*end))
    conn.close()


def _fork_child(conn: socket.socket, listener: socket.socket, wake: tuple[int, int],
                children: dict[int, socket.socket], prepare: Callable[[], None],
                runner: Runner) -> int:
    """Read a stage's request and fork its child; 0 if there is none to run."""
    fds: list[int] = []
    try:
        # Only this user's stages; and none may hold the server up for long.
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        if struct.unpack("3i", creds)[1] != os.getuid():
            raise PermissionError("another user's connection")
        conn.settimeout(5.0)
        frame, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        size = FRAME.unpack(frame[:FRAME.size])[0]
        data = frame[FRAME.size:]
        rest = _receive(conn, size - len(data))
        if rest is None:
            raise OSError("the stage closed its socket")
        request = json.loads(data + rest)
        conn.settimeout(None)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except (OSError, ValueError, struct.error):
        for fd in fds:
            os.close(fd)
        conn.close()
        return 0
    if pid:
        for fd in fds:
            os.close(fd)
        # Before the child can have ended: the server reports its end only once it reaps it.
        with contextlib.suppress(OSError):
            conn.sendall(STARTED.pack(b"s", pid))
        return pid
    try:  # the child: never returns into the server's loop
        listener.close()
        signal.set_wakeup_fd(-1)
        for fd in wake:
            os.close(fd)
        for other in children.values():
            other.close()
        _become_stage(request, fds)
        if _closed(conn):  # a stage that gave up waiting runs itself
            os._exit(0)
        prepare()
        os._exit(_run_as_main(runner, request["argv"][1:], conn))
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _become_stage(request: dict, fds: list[int]) -> None:
    """Take on the stage's process settings: what a fresh `python -m ...` would have had."""
    os.setpgid(0, 0)  # its own group, which `_watch` can kill whole
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in request["ignored"]:
        signal.signal(sig, signal.SIG_IGN)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    with contextlib.suppress(OSError):  # `taskset`: the engine sizes its threads by it
        os.sched_setaffinity(0, request["cpus"])
    with contextlib.suppress(OSError):  # raising the priority back may not be allowed
        os.setpriority(os.PRIO_PROCESS, 0, request["nice"])
    tempfile.tempdir = None  # read again from this environment's TMPDIR
    sys.argv = request["argv"]
    if not sys.flags.safe_path:
        sys.path[0] = request["cwd"]  # as `python -m` puts the current directory first
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]


def _watch(conn: socket.socket) -> None:
    """The stage's socket closing means its process was killed: so is the child, with its
    own children (the side process)."""
    while True:
        try:
            data = conn.recv(16)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            os.killpg(0, signal.SIGKILL)


def _run_as_main(runner: Runner, argv: list[str], conn: socket.socket) -> int:
    """`runner(argv)` as a script's top level: SystemExit gives the code, an uncaught error a
    traceback and 1, KeyboardInterrupt a traceback and death by SIGINT; exit handlers run."""
    try:
        threading.Thread(target=_watch, args=(conn,), daemon=True).start()
        code = runner(argv)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt as exc:
        traceback.print_exception(_from_the_stage(exc))
        _flush_and_exit_handlers()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException as exc:
        sys.excepthook(type(exc), _from_the_stage(exc), exc.__traceback__)
        code = 1
    _flush_and_exit_handlers()
    return code


def _from_the_stage(exc: BaseException) -> BaseException:
    """`exc` with its traceback starting at the stage's own code: the frames of this module,
    which ran it, are not part of the stage (a fresh process shows runpy's there)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return exc.with_traceback(tb)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush_and_exit_handlers() -> None:
    """What the interpreter does at exit and a stage may rely on: wait for its non-daemon
    threads, run its exit handlers. Not the rest of the teardown, a second or more with
    TensorFlow loaded."""
    with contextlib.suppress(AttributeError):
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):  # what C libraries printed, as exit(3) would
        ctypes.CDLL(None).fflush(None)
