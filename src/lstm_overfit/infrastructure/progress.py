"""Live progress of a training stage: one updating line on a terminal, a few plain lines in a log.

On a terminal the line is redrawn in place at most a few times a second. In a log (CI, `dvc
queue`) a plain line is written at the start, every `log_every` seconds and at the end: no
control characters, no thousands of lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def clock(seconds: float) -> str:
    """12:34 or 1:02:03."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_line(label: str, runs: int, done: int, epochs: int, total: int, elapsed: float,
                  fracs: dict[str, float]) -> str:
    """`train ex2_small [6 runs, 2 done] epoch 1200/18000 7% 0:40 left 8:20 train_frac
    baseline 0.41 dropout 0.97`: epochs are summed over runs; the budget counts each run's cap,
    so a run that memorizes early makes the estimate fall."""
    share = epochs / total if total else 1.0
    left = elapsed / share - elapsed if share > 0 else 0.0
    text = (f"{label} [{runs} runs, {done} done] epoch {epochs}/{total} {share:4.0%} "
            f"{clock(elapsed)} left <={clock(left)}")
    if fracs:
        text += " train_frac " + " ".join(f"{k} {v:.3f}" for k, v in fracs.items())
    return text


class Progress:
    """Reports a stage's training as it goes; `update` is cheap enough to call every event."""

    def __init__(self, label: str, runs: int, total_epochs: int, stream: TextIO | None = None,
                 log_every: float = 30.0, redraw_every: float = 0.2,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.label, self.runs, self.total = label, runs, total_epochs
        self.log_every, self.redraw_every = log_every, redraw_every
        self.now = now
        self.start = now()
        self.last = float("-inf")
        self.width = 0
        self.epochs: dict[int, int] = {}
        self.done: set[int] = set()
        self._write(self._line({}), final=not self.tty)

    def _line(self, fracs: dict[str, float]) -> str:
        # A run that stopped early has done its part: count its whole budget.
        return progress_line(self.label, self.runs, len(self.done), sum(self.epochs.values()),
                             self.total, self.now() - self.start, fracs)

    def _write(self, text: str, final: bool) -> None:
        if self.tty:
            # Pad over the previous, longer line instead of using an erase sequence.
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = 0 if final else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, run: int, epoch: int, budget: int, finished: bool,
               fracs: dict[str, float]) -> None:
        """Run `run` has trained `epoch` of its `budget` epochs (and stopped, if finished)."""
        self.epochs[run] = budget if finished else epoch
        if finished:
            self.done.add(run)
        t = self.now()
        complete = len(self.done) == self.runs
        due = self.redraw_every if self.tty else self.log_every
        if complete or t - self.last >= due:
            self.last = t
            self._write(self._line(fracs), final=complete or not self.tty)
