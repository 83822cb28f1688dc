"""Live progress of a training stage: one updating line on a terminal, a few plain lines in a log.

On a terminal the line is redrawn in place at most a few times a second. In a log (CI, `dvc
queue`) a plain line is written at the start, every `log_every` seconds and at the end: no
control characters, no thousands of lines.

The time left is the work left at the rate measured since the first epoch ended (start-up, the
initial weights and compiling are not training), never a bound that the caps alone make:
a run that stops once it has memorized is not assumed to train to its cap. Its own measured
training error, extrapolated (log-linear) to its stop threshold, says when it will stop; two
fits (its recent and its longer trend) give a range. A run whose error is not falling yet has
no estimate: the line then says only what is certain (`left >=`: the epochs before any run may
stop, and the runs that train to their caps), or `left ?`. Memorization often speeds up late, so
a projection is an estimate, never counted as certain.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

# The measurements each fit reads: the recent trend and the longer one (newest last).
RECENT, LONGER = 3, 8
# Two estimates closer than this (relative) are shown as one.
SAME = 0.15


def clock(seconds: float) -> str:
    """12:34 or 1:02:03."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclass(frozen=True)
class Plan:
    """What is known of a run before it trains: its cap, the epoch before which it cannot stop,
    the training error at or below which it stops (None: it trains to its cap) and the cost of
    one epoch in any unit shared by the stage's runs (FLOPs)."""

    cap: int
    min_epochs: int = 0
    stop_below: float | None = None
    cost: float = 1.0


@dataclass
class RunState:
    plan: Plan
    epoch: int = 0
    done: bool = False
    errors: list[tuple[int, float]] = field(default_factory=list)  # measured (epoch, error)

    def epochs_left(self) -> tuple[float, tuple[float, float] | None]:
        """The epochs this run will train at least, and the range its curve projects (None
        while it projects none)."""
        p = self.plan
        if self.done:
            return 0.0, (0.0, 0.0)
        to_cap = float(p.cap - self.epoch)
        if p.stop_below is None:
            return to_cap, (to_cap, to_cap)
        least = float(max(p.min_epochs - self.epoch, 0))
        ends = [self._projected_stop(n) for n in (RECENT, LONGER)]
        if any(e is None for e in ends):
            return least, None
        low, high = sorted(min(max(e - self.epoch, least), to_cap) for e in ends)
        return least, (low, high)

    def _projected_stop(self, n: int) -> float | None:
        """The epoch at which the log-linear fit of the last `n` measurements (at least RECENT)
        reaches the stop threshold; None while there are fewer or the error is not falling."""
        pts = [(e, math.log(v)) for e, v in self.errors[-n:] if v > 0]
        if len(pts) < RECENT:
            return None
        mx = math.fsum(e for e, _ in pts) / len(pts)
        my = math.fsum(y for _, y in pts) / len(pts)
        sxx = math.fsum((e - mx) ** 2 for e, _ in pts)
        slope = math.fsum((e - mx) * (y - my) for e, y in pts) / sxx if sxx else 0.0
        if slope >= 0:
            return None
        target = math.log(self.plan.stop_below)  # type: ignore[arg-type]
        return pts[-1][0] + (target - pts[-1][1]) / slope


def work_done(runs: list[RunState]) -> float:
    return math.fsum(r.epoch * r.plan.cost for r in runs)


def estimate(runs: list[RunState], rate: float | None) -> str:
    """`~3:10`, `2:40-6:05`, `>=0:45` or `?`: the time left at `rate` (work per second)."""
    if not rate or rate <= 0:
        return "?"
    certain, lo, hi, known = 0.0, 0.0, 0.0, True
    for r in runs:
        least, projected = r.epochs_left()
        certain += least * r.plan.cost
        if projected is None:
            known = False
        else:
            lo, hi = lo + projected[0] * r.plan.cost, hi + projected[1] * r.plan.cost
    if not known:
        # Under half a second of certain work says nothing: `>=0:00` would read as "done".
        return f">={clock(certain / rate)}" if certain / rate >= 0.5 else "?"
    if hi - lo <= SAME * hi:
        return f"~{clock((lo + hi) / 2 / rate)}"
    return f"{clock(lo / rate)}-{clock(hi / rate)}"


def progress_line(label: str, runs: list[RunState], elapsed: float, rate: float | None,
                  fracs: dict[str, float]) -> str:
    """`train ex2_small [6 runs, 2 done] epoch 1200 0:40 left 2:10-5:30 train_frac baseline
    0.41 dropout 0.97`: epochs summed over runs, and the time left (see `estimate`)."""
    done = sum(r.done for r in runs)
    epochs = sum(r.epoch for r in runs)
    text = (f"{label} [{len(runs)} runs, {done} done] epoch {epochs} {clock(elapsed)} "
            f"left {estimate(runs, rate)}")
    if fracs:
        text += " train_frac " + " ".join(f"{k} {v:.3f}" for k, v in fracs.items())
    return text


class Progress:
    """Reports a stage's training as it goes; `update` is cheap enough to call every event."""

    def __init__(self, label: str, plans: list[Plan], stream: TextIO | None = None,
                 log_every: float = 30.0, redraw_every: float = 0.2,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.label = label
        self.runs = [RunState(p) for p in plans]
        self.log_every, self.redraw_every = log_every, redraw_every
        self.now = now
        self.start = now()
        self.last = float("-inf")
        self.width = 0
        self.first: tuple[float, float] | None = None  # (time, work) when the first update came
        self._write(self._line({}), final=not self.tty)

    def rate(self) -> float | None:
        """Work per second since the first update, once there is a later one."""
        if self.first is None:
            return None
        seconds, work = self.now() - self.first[0], work_done(self.runs) - self.first[1]
        return work / seconds if seconds > 0 and work > 0 else None

    def _line(self, fracs: dict[str, float]) -> str:
        return progress_line(self.label, self.runs, self.now() - self.start, self.rate(), fracs)

    def _write(self, text: str, final: bool) -> None:
        if self.tty:
            # Pad over the previous, longer line instead of using an erase sequence.
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = 0 if final else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, run: int, epoch: int, finished: bool, fracs: dict[str, float],
               error: float | None = None) -> None:
        """Run `run` has trained `epoch` epochs (and stopped, if finished); `error` is its
        training error measured at that epoch, if it was measured."""
        state = self.runs[run]
        state.epoch, state.done = epoch, state.done or finished
        if error is not None:
            state.errors.append((epoch, error))
        t = self.now()
        if self.first is None:
            self.first = (t, work_done(self.runs))
        complete = all(r.done for r in self.runs)
        due = self.redraw_every if self.tty else self.log_every
        if complete or t - self.last >= due:
            self.last = t
            self._write(self._line(fracs), final=complete or not self.tty)
