"""The side process: calls answered in order, its errors raised in the stage, and it dies with
the stage, SIGKILL included. The calls are the standard library's: the side process imports a
call's function by name, and a test module is not importable there."""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from lstm_overfit.errors import StageError
from lstm_overfit.infrastructure.sidecar import Inline, Ref, Sidecar, sidecar, warm_up


def test_calls_run_in_another_process_and_answer_in_order():
    with sidecar() as side:
        side.submit(warm_up, os.getpid)
        side.submit(print, "a library's line on stdout must not corrupt the replies")
        side.submit(operator.add, 2, 3)
        side.submit(os.getpid)
        warmed, printed, five, pid = side.drain()
    assert (warmed, printed, five) == (None, None, 5)
    assert pid != os.getpid()


def test_a_result_that_cannot_be_pickled_is_an_error_naming_it():
    with sidecar() as side, pytest.raises(RuntimeError, match="cannot send back module"):
        side.call(__import__, "json")


def test_an_error_in_the_side_process_is_raised_in_the_stage_after_the_other_calls():
    with sidecar() as side:
        side.submit(operator.truediv, 1, 0)
        side.submit(operator.add, 1, 1)
        with pytest.raises(ZeroDivisionError):
            side.drain()
        assert side.call(operator.add, 2, 2) == 4


def test_a_call_the_side_process_cannot_import_is_an_error_not_a_hang():
    with sidecar() as side:
        side.submit(test_calls_run_in_another_process_and_answer_in_order)
        with pytest.raises(ModuleNotFoundError):
            side.drain()
        assert side.call(operator.add, 1, 2) == 3


def test_a_side_process_that_dies_fails_the_stage_with_one_line():
    side = Sidecar()
    with pytest.raises(StageError, match="exit code 3"):
        side.call(os._exit, 3)
    side.close()


def test_an_error_in_the_stage_kills_the_side_process_instead_of_waiting():
    with pytest.raises(KeyboardInterrupt), sidecar() as side:
        side.submit(time.sleep, 60)
        started = time.monotonic()
        raise KeyboardInterrupt
    assert time.monotonic() - started < 10
    assert side._proc.returncode == -signal.SIGKILL


def test_the_side_process_dies_with_a_stage_killed_by_sigkill():
    stage = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, time
        from lstm_overfit.infrastructure.sidecar import Sidecar
        side = Sidecar()
        print(side.call(os.getpid), flush=True)
        side.submit(time.sleep, 60)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    child = int(stage.stdout.readline())
    os.kill(stage.pid, signal.SIGKILL)
    stage.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the side process outlived its stage")


def test_inline_runs_the_same_calls_here_and_raises_at_drain():
    side = Inline()
    side.submit(operator.truediv, 1, 0)
    side.submit(operator.add, 1, 1)  # skipped: the first failure ends the batch
    with pytest.raises(ZeroDivisionError):
        side.drain()
    assert side.call(os.getpid) == os.getpid()


def test_a_kept_object_answers_its_methods_where_it_lives():
    with sidecar() as side:
        side.submit(dict, keep="d")
        side.submit(Ref("d", "__setitem__"), "pid", 1)
        side.submit(Ref("d", "get"), "pid")
        side.submit(Ref("d", "__len__"))
        assert side.drain() == [None, None, 1, 1]
        side.submit(Ref("nothing", "get"))
        with pytest.raises(KeyError, match="nothing"):
            side.drain()


def test_poll_raises_a_failed_call_without_waiting_for_the_calls_behind_it():
    with sidecar() as side:
        side.submit(operator.add, 1, 1)
        side.submit(operator.truediv, 1, 0)
        side.submit(time.sleep, 60)
        deadline = time.monotonic() + 20
        with pytest.raises(ZeroDivisionError):  # noqa: PT012 - polled until the answer is in
            while time.monotonic() < deadline:
                side.poll()
                time.sleep(0.01)
        assert time.monotonic() < deadline
        side.close(kill=True)  # the sleeping call is not waited for


def test_poll_keeps_the_answers_it_took_for_drain():
    with sidecar() as side:
        side.submit(operator.add, 1, 1)
        side.submit(operator.add, 2, 2)
        deadline = time.monotonic() + 20
        while side._pending and time.monotonic() < deadline:
            side.poll()
            time.sleep(0.01)
        assert side._pending == 0
        side.submit(operator.add, 3, 3)
        assert side.drain() == [2, 4, 6]


def test_inline_keeps_objects_and_polls_the_same_way():
    side = Inline()
    side.submit(list, keep="l")
    side.submit(Ref("l", "append"), 5)
    side.submit(operator.truediv, 1, 0)
    with pytest.raises(ZeroDivisionError):
        side.poll()
    side.poll()  # raised once
    assert side.call(Ref("l", "pop")) == 5


def test_kill_drops_the_queue_and_inline_forgets_a_failed_call():
    with sidecar() as side:
        side.submit(time.sleep, 60)
        started = time.monotonic()
        side.kill()
    assert time.monotonic() - started < 10
    assert side._proc.returncode == -signal.SIGKILL
    inline = Inline()
    inline.submit(operator.truediv, 1, 0)
    inline.kill()
    assert inline.call(operator.add, 1, 1) == 2


def test_kill_does_not_need_the_queues_a_signal_may_have_left_locked():
    """Ctrl-C or SIGTERM raised inside `Queue.put` leaves the queue's lock held: killing the
    side process must not wait for it."""
    side = Sidecar()
    side.submit(time.sleep, 60)
    side._outbox.mutex.acquire()
    side._inbox.mutex.acquire()
    started = time.monotonic()
    side.kill()
    assert time.monotonic() - started < 10
    assert side._proc.returncode == -signal.SIGKILL


def test_a_side_process_forked_in_advance_is_adopted_and_killed_like_a_started_one():
    stage = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, time
        from lstm_overfit.infrastructure.sidecar import FORKED, Sidecar, prefork
        prefork()
        forked = int(os.environ[FORKED].split(":")[1])
        side = Sidecar()
        print(FORKED in os.environ, forked == side.call(os.getpid), side.call(os.getppid) == os.getpid())
        side.submit(time.sleep, 60)
        side.kill()
        print(side._proc.wait())
        later = Sidecar()  # the next one is started, not adopted
        print(later.call(os.getpid) != forked)
        later.close()
    """)], capture_output=True, text=True, timeout=60)
    assert stage.stdout.split() == ["False", "True", "True", str(-signal.SIGKILL), "True"], stage.stderr


def test_a_process_the_stage_starts_never_adopts_the_stages_side_process():
    """It inherits the variable that names the side process, not its pipes: it starts its own."""
    stage = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, subprocess, sys
        from lstm_overfit.infrastructure.sidecar import FORKED, prefork
        prefork()
        forked = os.environ[FORKED].split(":")[1]
        child = subprocess.run([sys.executable, "-c",
            "import os; from lstm_overfit.infrastructure.sidecar import Sidecar; "
            "side = Sidecar(); print(side.call(os.getppid) == os.getpid()); side.close()"],
            capture_output=True, text=True, timeout=60)
        print(child.stdout.strip(), child.returncode, forked in os.environ[FORKED])
    """)], capture_output=True, text=True, timeout=90)
    assert stage.stdout.split() == ["True", "0", "True"], stage.stderr
