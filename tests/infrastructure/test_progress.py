"""Progress on a terminal (one redrawn line) and in a log (a few plain lines), with a time left
that comes from the measured rate and the runs' own curves, never from their caps alone."""

from __future__ import annotations

import io

from lstm_overfit.infrastructure.progress import Plan, Progress, RunState, clock, estimate, progress_line


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def last_line(out: io.StringIO) -> str:
    return out.getvalue().replace("\r", "\n").strip().splitlines()[-1].rstrip()


def test_clock_and_line():
    assert clock(75) == "1:15" and clock(3723) == "1:02:03"
    runs = [RunState(Plan(300), epoch=300, done=True), RunState(Plan(300), epoch=100)]
    line = progress_line("train ex1/baseline", runs, 30.0, 400 / 30, {"baseline": 0.41})
    # 400 epochs in 30 s; 200 epochs left of a run without a stop rule: exactly 15 s.
    assert line.startswith("train ex1/baseline [2 runs, 1 done] epoch 400 0:30 left ~0:15")
    assert line.endswith("train_frac baseline 0.410")


def test_nothing_measured_yet_no_estimate():
    """The old line opened a stage with `left <=108:16:40`, a bound the caps alone made."""
    now, out = Clock(), io.StringIO()
    Progress("sweep", [Plan(118191, 50, 0.01)], stream=out, now=now)
    assert last_line(out).endswith("left ?")


def test_a_run_that_may_stop_early_is_not_assumed_to_reach_its_cap():
    now, out = Clock(), io.StringIO()
    p = Progress("t", [Plan(100_000, 10, 0.01)], stream=out, log_every=0, now=now)
    for epoch, error in ((1, 1.0), (2, 1.0), (3, 1.0)):  # flat: no way to tell when it stops
        now.t = epoch
        p.update(0, epoch, False, {}, error)
    assert last_line(out).endswith("left >=0:07")  # only the epochs before min_epochs are certain
    for epoch in range(4, 13):  # now falling tenfold every 10 epochs: stops near epoch 20
        now.t = epoch
        p.update(0, epoch, False, {}, 10 ** (-(epoch - 3) / 10))
    line = last_line(out)
    assert "left ~0:11" in line and "27:" not in line  # 1 s an epoch, ~11 epochs, not 99988


def test_two_trends_that_disagree_give_a_range():
    run = RunState(Plan(1000, 0, 1e-3), epoch=10)
    # Falling slowly for a long time, then fast: the recent and the longer fit part ways.
    run.errors = [(e, 1.0 - 0.01 * e) for e in range(1, 8)] + [(8, 0.1), (9, 0.03), (10, 0.01)]
    least, (low, high) = run.epochs_left()
    assert least == 0 and low < high < 990
    text = estimate([run], rate=1.0)
    assert "-" in text and not text.startswith(("~", ">=", "?"))


def test_only_what_is_certain_counts_while_some_run_has_no_projection():
    """A projection is an estimate (memorization often speeds up late): beside a run that
    projects nothing yet it is not added to an `at least`."""
    falling = RunState(Plan(1000, 10, 1e-3), epoch=20, errors=[(18, 0.1), (19, 0.05), (20, 0.025)])
    flat = RunState(Plan(1000, 10, 1e-3), epoch=5, errors=[(3, 1.0), (4, 1.0), (5, 1.0)])
    assert falling.epochs_left()[1] is not None and flat.epochs_left() == (5.0, None)
    assert estimate([falling, flat], rate=1.0) == ">=0:05"
    flat.epoch = 10  # past the epochs before which it cannot stop: nothing certain is left
    assert estimate([falling, flat], rate=1.0) == "?"


def test_the_rate_weighs_each_run_by_its_cost():
    cheap, dear = RunState(Plan(100, cost=1.0), epoch=50), RunState(Plan(100, cost=9.0), epoch=50)
    # 10 work units a second; left 50*1 + 50*9 = 500 units: 50 s.
    assert estimate([cheap, dear], rate=10.0) == "~0:50"


def test_start_up_is_not_counted_as_training_time():
    now, out = Clock(), io.StringIO()
    p = Progress("t", [Plan(10)], stream=out, log_every=0, now=now)
    now.t = 10.0  # imports, initial weights, compiling: then the first epoch ends
    p.update(0, 1, False, {})
    assert last_line(out).endswith("left ?")
    now.t = 11.0
    p.update(0, 2, False, {})
    assert last_line(out).endswith("epoch 2 0:11 left ~0:08")  # 1 epoch a second, not 2 in 11 s


def test_log_output_is_plain_and_sparse():
    now = Clock()
    out = io.StringIO()
    p = Progress("sweep", [Plan(100), Plan(100)], stream=out, log_every=30, now=now)
    for epoch in range(1, 101):
        now.t = epoch * 0.5
        p.update(0, epoch, epoch == 100, {})
        p.update(1, epoch, epoch == 100, {"baseline": 1.0})
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert len(text.splitlines()) <= 5
    assert text.splitlines()[-1].startswith("sweep [2 runs, 2 done] epoch 200 0:50 left ~0:00")


def test_terminal_output_redraws_one_line():
    now = Clock()
    out = Tty()
    p = Progress("train", [Plan(10)], stream=out, redraw_every=0.2, now=now)
    for epoch in range(1, 11):
        now.t = epoch
        p.update(0, epoch, epoch == 10, {})
    text = out.getvalue()
    assert text.count("\r") >= 10 and text.count("\n") == 1


def test_a_run_that_stopped_early_has_no_work_left():
    now, out = Clock(), io.StringIO()
    p = Progress("t", [Plan(10, 0, 0.1), Plan(10)], stream=out, log_every=0, now=now)
    now.t = 1.0
    p.update(0, 1, False, {}, 0.5)
    p.update(1, 1, False, {})
    now.t = 3.0
    p.update(0, 3, True, {}, 0.05)
    p.update(1, 3, False, {})
    # 5 epochs in the 2 s since the first one; only the second run's 7 epochs are left.
    assert last_line(out).endswith("[2 runs, 1 done] epoch 6 0:03 left ~0:03")
