"""A second Python process that imports slow libraries while the stage trains, then runs calls.

MLflow (~3 s to import and open its store) records the runs while they train, and Keras
(TensorFlow, ~4 s) is needed only once training is over, to save the models and log them in
MLflow's Keras flavour. Imported in a thread they would hold the GIL that the stage's own
start-up and training loop need; in this process they import on the other core while the stage
loads its data and trains. Calls are module-level functions, or methods of an object the side
process keeps (`Ref`), and their arguments, pickled over a pipe and answered in order; an
exception in the side process is raised again in the stage, at its next `poll` or `drain`. The
side process dies with the stage (SIGKILL included: the kernel's parent-death signal) and ends
when the stage closes its pipe.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lstm_overfit.errors import StageError

PR_SET_PDEATHSIG = 1  # prctl(2)
# "owner:pid:to_fd:from_fd" of a side process `prefork` started for the process `owner`
FORKED = "LSTM_OVERFIT_SIDE"
FRAME = struct.Struct("<Q")  # each message: its length, then its pickle


@dataclass(frozen=True)
class Ref:
    """Method `method` of the object kept under `key` (`submit(..., keep=key)`): state that
    lives where the calls run, such as an open MLflow store."""

    key: str
    method: str


Target = Callable[..., object] | Ref


class Calls:
    """What both ways of running the calls share: `call` is `submit`, then `drain`."""

    def submit(self, fn: Target, *args: Any, keep: str | None = None) -> None:
        """Queue `fn(*args)`; with `keep`, its result stays where it ran, for `Ref(keep, ...)`."""
        raise NotImplementedError

    def drain(self) -> list[object]:
        """Every queued call's result, in order; the first call that failed raises its error."""
        raise NotImplementedError

    def poll(self) -> None:
        """Raise the error of a call that has already failed, without waiting for the others."""
        raise NotImplementedError

    def kill(self) -> None:
        """Stop at once: the queued calls are dropped, the one running is not waited for."""
        raise NotImplementedError

    def call(self, fn: Target, *args: Any) -> object:
        self.submit(fn, *args)
        return self.drain()[-1]


class Sidecar(Calls):
    """The side process: `submit` calls, `drain` waits for all of them (raising the first error)."""

    def __init__(self) -> None:
        forked = _Forked.adopt(os.environ.pop(FORKED, ""))
        self._proc: subprocess.Popen | _Forked = forked or subprocess.Popen(
            [sys.executable, "-c", "from lstm_overfit.infrastructure.sidecar import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._pending = 0
        self._ready: list[object] = []  # answers `poll` took in, for `drain`
        # A thread writes the calls, so that the stage goes on (training, drawing its figures)
        # while the side process is still importing: a model's weights are more than a pipe
        # holds. Another reads the answers, so that `poll` never waits.
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._inbox: queue.Queue[bytes | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        threading.Thread(target=self._read, daemon=True).start()

    def _write(self) -> None:
        assert self._proc.stdin is not None
        while (data := self._outbox.get()) is not None:
            try:
                _send(self._proc.stdin, data)
            except (BrokenPipeError, ValueError):
                return  # the side process is gone: drain reports it
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while (frame := _receive(self._proc.stdout)) is not None:
            self._inbox.put(frame)
        self._inbox.put(None)

    def submit(self, fn: Target, *args: Any, keep: str | None = None) -> None:
        """Queue `fn(*args)` in the side process; `fn` must be importable by name."""
        self._outbox.put(pickle.dumps((fn, args, keep), protocol=pickle.HIGHEST_PROTOCOL))
        self._pending += 1

    def _answer(self, frame: bytes | None) -> tuple[bool, object]:
        if frame is None:
            self._inbox.put(None)  # for the next reader: the side process stays gone
            raise self._gone()
        self._pending -= 1
        return pickle.loads(frame)

    def drain(self) -> list[object]:
        results, error, self._ready = self._ready, None, []
        while self._pending:
            ok, value = self._answer(self._inbox.get())
            if ok:
                results.append(value)
            elif error is None:
                error = value
        if error is not None:
            raise error
        return results

    def poll(self) -> None:
        while self._pending:
            try:
                frame = self._inbox.get_nowait()
            except queue.Empty:
                return
            ok, value = self._answer(frame)
            if not ok:
                raise value
            self._ready.append(value)

    def _gone(self) -> StageError:
        code = self._proc.wait()
        return StageError(f"the side process (MLflow, Keras) ended with exit code {code}")

    def kill(self) -> None:
        self.close(kill=True)

    def close(self, kill: bool = False) -> None:
        """End the side process: after its queued calls, or at once with `kill`."""
        if kill:
            # Not through the queues: a signal (Ctrl-C, SIGTERM) that interrupted the stage
            # inside a queue's lock leaves it held. The threads are daemons; they end with
            # the stage.
            self._proc.kill()
            self._proc.wait()
            return
        self._outbox.put(None)  # the writer closes the pipe after the queued calls
        self._writer.join()
        self._proc.wait()


class _Forked:
    """What Sidecar uses of a Popen, for a side process `prefork` forked."""

    def __init__(self, pid: int, to_fd: int, from_fd: int) -> None:
        self.pid = pid
        self.stdin = os.fdopen(to_fd, "wb")
        self.stdout = os.fdopen(from_fd, "rb")
        self.returncode: int | None = None

    @classmethod
    def adopt(cls, spec: str) -> _Forked | None:
        """The side process `spec` names, if it was forked for this process: a process the
        stage starts inherits the variable, not the side process or its pipes."""
        if not spec:
            return None
        owner, pid, to_fd, from_fd = (int(part) for part in spec.split(":"))
        return cls(pid, to_fd, from_fd) if owner == os.getpid() else None

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def prefork() -> None:
    """Fork the stage's side process now, from a warm server's child (infrastructure/warm.py)
    while it has a single thread: it starts with MLflow and Keras already imported, and the
    stage's first `Sidecar` adopts it. Unadopted, it ends with the stage."""
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(to_r, 0)
            os.dup2(from_w, 1)
            for fd in (to_r, to_w, from_r, from_w):
                os.close(fd)
            serve()
        finally:
            os._exit(1)
    os.close(to_r)
    os.close(from_w)
    os.set_inheritable(to_w, False)
    os.set_inheritable(from_r, False)
    os.environ[FORKED] = f"{os.getpid()}:{pid}:{to_w}:{from_r}"


@contextlib.contextmanager
def sidecar() -> Iterator[Sidecar]:
    """A side process for the stage's life; on an error or Ctrl-C it is killed, not waited for."""
    side = Sidecar()
    try:
        yield side
    except BaseException:
        side.close(kill=True)
        raise
    side.close()


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the stage died before the signal was armed
        sys.exit(0)


def warm_up(fn: Callable[[], object]) -> None:
    """Run `fn` for its effect (an import); what it returns stays in the side process."""
    fn()


def _send(pipe, data: bytes) -> None:
    pipe.write(FRAME.pack(len(data)) + data)
    pipe.flush()


def _receive(pipe) -> bytes | None:
    """One message, or None at the end of the pipe."""
    head = pipe.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    return pipe.read(FRAME.unpack(head)[0])


def serve() -> None:
    """The side process's loop: calls from stdin, (ok, result or exception) to stdout."""
    _die_with_parent()
    # Ctrl-C and a SIGTERM sent to the whole process group are the stage's to handle: it ends
    # its runs, then kills this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library printing to stdout must not corrupt the replies
    kept: dict[str, object] = {}
    while (frame := _receive(sys.stdin.buffer)) is not None:
        try:
            fn, args, keep = pickle.loads(frame)
            reply = (True, _run(kept, fn, args, keep))
        except BaseException as exc:  # sent to the stage, which raises it
            reply = (False, exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            what = f"{type(reply[1]).__name__}: {reply[1]}"
            data = pickle.dumps((False, RuntimeError(f"the side process cannot send back {what}")))
        _send(replies, data)
    # Nothing is left to flush: skip the interpreter's teardown, a second or more with
    # TensorFlow loaded, which the stage would wait for.
    replies.close()
    os._exit(0)


def _run(kept: dict[str, object], fn: Target, args: tuple[Any, ...], keep: str | None) -> object:
    """One call; a kept result answers None (it stays here)."""
    if isinstance(fn, Ref):
        fn = getattr(kept[fn.key], fn.method)
    value = fn(*args)
    if keep is None:
        return value
    kept[keep] = value
    return None


class Inline(Calls):
    """The same calls run in this process: for a stage that imports Keras anyway (the Keras
    engine), where a second copy would only take a core from training."""

    def __init__(self) -> None:
        self._results: list[object] = []
        self._error: BaseException | None = None
        self._kept: dict[str, object] = {}

    def submit(self, fn: Target, *args: Any, keep: str | None = None) -> None:
        if self._error is None:
            try:
                self._results.append(_run(self._kept, fn, args, keep))
            except Exception as exc:  # raised by poll or drain, as the side process's would be
                self._error = exc

    def drain(self) -> list[object]:
        results, error, self._results, self._error = self._results, self._error, [], None
        if error is not None:
            raise error
        return results

    def poll(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def kill(self) -> None:
        """Nothing runs elsewhere: a call that failed is forgotten."""
        self._results, self._error = [], None
