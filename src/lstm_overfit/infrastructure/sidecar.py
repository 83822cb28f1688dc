"""A second Python process that imports slow libraries while the stage trains, then runs calls.

Keras (TensorFlow) takes ~4 s to import and is needed only once training is over, to save the
models and log them in MLflow's Keras flavour. Imported in a thread it would hold the GIL that
the stage's own start-up needs; in this process it imports on the other core while the stage
opens MLflow, loads its data and trains. Calls are module-level functions and their arguments,
pickled over a pipe and answered in order; an exception in the side process is raised again
in the stage. The side process dies with the stage (SIGKILL included: the kernel's parent-death
signal) and ends when the stage closes its pipe.
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
from typing import Any

from lstm_overfit.errors import StageError

PR_SET_PDEATHSIG = 1  # prctl(2)
FRAME = struct.Struct("<Q")  # each message: its length, then its pickle


class Calls:
    """What both ways of running the calls share: `call` is `submit`, then `drain`."""

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        raise NotImplementedError

    def drain(self) -> list[object]:
        raise NotImplementedError

    def call(self, fn: Callable[..., object], *args: Any) -> object:
        self.submit(fn, *args)
        return self.drain()[-1]


class Sidecar(Calls):
    """The side process: `submit` calls, `drain` waits for all of them (raising the first error)."""

    def __init__(self, warm: tuple[Callable[[], object], ...] = ()) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from lstm_overfit.infrastructure.sidecar import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._pending = 0
        # A thread writes the calls, so that the stage goes on (drawing its figures) while the
        # side process is still importing: a model's weights are more than a pipe holds.
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        for fn in warm:
            self.submit(warm_up, fn)

    def _write(self) -> None:
        assert self._proc.stdin is not None
        while (data := self._outbox.get()) is not None:
            try:
                _send(self._proc.stdin, data)
            except (BrokenPipeError, ValueError):
                return  # the side process is gone: drain reports it
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue `fn(*args)` in the side process; `fn` must be importable by name."""
        self._outbox.put(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
        self._pending += 1

    def drain(self) -> list[object]:
        """Every queued call's result, in order; the first call that failed raises its error."""
        assert self._proc.stdout is not None
        results, error = [], None
        while self._pending:
            frame = _receive(self._proc.stdout)
            if frame is None:
                raise self._gone()
            ok, value = pickle.loads(frame)
            self._pending -= 1
            if ok:
                results.append(value)
            elif error is None:
                error = value
        if error is not None:
            raise error
        return results

    def _gone(self) -> StageError:
        code = self._proc.wait()
        return StageError(f"the side process (Keras, MLflow models) ended with exit code {code}")

    def close(self, kill: bool = False) -> None:
        """End the side process: after its queued calls, or at once with `kill`."""
        if kill:
            self._proc.kill()
        self._outbox.put(None)  # the writer closes the pipe after the queued calls
        self._writer.join()
        self._proc.wait()


@contextlib.contextmanager
def sidecar(warm: tuple[Callable[[], object], ...] = ()) -> Iterator[Sidecar]:
    """A side process for the stage's life; on an error or Ctrl-C it is killed, not waited for."""
    side = Sidecar(warm)
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stage's to handle
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library printing to stdout must not corrupt the replies
    while (frame := _receive(sys.stdin.buffer)) is not None:
        try:
            fn, args = pickle.loads(frame)
            reply = (True, fn(*args))
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


class Inline(Calls):
    """The same calls run in this process: for a stage that imports Keras anyway (the Keras
    engine), where a second copy would only take a core from training."""

    def __init__(self) -> None:
        self._results: list[object] = []
        self._error: BaseException | None = None

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        if self._error is None:
            try:
                self._results.append(fn(*args))
            except Exception as exc:  # raised by drain, as the side process's would be
                self._error = exc

    def drain(self) -> list[object]:
        results, error, self._results, self._error = self._results, self._error, [], None
        if error is not None:
            raise error
        return results
