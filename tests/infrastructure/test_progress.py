"""Progress on a terminal (one redrawn line) and in a log (a few plain lines)."""

from __future__ import annotations

import io

from lstm_overfit.infrastructure.progress import Progress, clock, progress_line


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clock_and_line():
    assert clock(75) == "1:15" and clock(3723) == "1:02:03"
    line = progress_line("train ex1/baseline", 3, 1, 300, 900, 30.0, {"baseline": 0.41})
    assert line.startswith("train ex1/baseline [3 runs, 1 done] epoch 300/900  33% 0:30 left <=1:00")
    assert line.endswith("train_frac baseline 0.410")


def test_log_output_is_plain_and_sparse():
    now = [0.0]
    out = io.StringIO()
    p = Progress("sweep", 2, 200, stream=out, log_every=30, now=lambda: now[0])
    for epoch in range(1, 101):
        now[0] = epoch * 0.5
        p.update(0, epoch, 100, epoch == 100, {})
        p.update(1, epoch, 100, epoch == 100, {"baseline": 1.0})
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert len(text.splitlines()) <= 5
    assert text.splitlines()[-1].startswith("sweep [2 runs, 2 done] epoch 200/200 100%")


def test_terminal_output_redraws_one_line():
    now = [0.0]
    out = Tty()
    p = Progress("train", 1, 10, stream=out, redraw_every=0.2, now=lambda: now[0])
    for epoch in range(1, 11):
        now[0] = epoch
        p.update(0, epoch, 10, epoch == 10, {})
    text = out.getvalue()
    assert text.count("\r") >= 10 and text.count("\n") == 1


def test_a_run_that_stops_early_counts_its_whole_budget():
    out = io.StringIO()
    p = Progress("t", 2, 20, stream=out, log_every=0)
    p.update(0, 3, 10, True, {})
    assert "2 runs, 1 done] epoch 10/20" in out.getvalue().splitlines()[-1]
