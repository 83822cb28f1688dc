"""Judges: measured numbers in, a verdict out, with the margin to the thresholds that decided it.

Each judge decides one seed; `decide` combines the seeds: their common verdict, else `mixed`.
A verdict whose deciding numbers sit within `claims.fragile` (relative) of a threshold is
flagged fragile: a small change could flip it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from lstm_overfit.records import DatasetRecord, RunRecord
from lstm_overfit.science.measure import Point, Process, at, classifier_process, points

SUPPORTED, REFUTED, PARTIAL, INCONCLUSIVE, MIXED = (
    "supported", "refuted", "partial", "undecided", "mixed")
OUTCOMES = (SUPPORTED, REFUTED, PARTIAL, INCONCLUSIVE)
Numbers = dict[str, float | None]


@dataclass(frozen=True)
class Check:
    """One comparison that decided a verdict: a measured `value` against `threshold`, named
    by the `claims.` param that sets it (or the run it is compared with)."""

    name: str
    value: float
    threshold: float

    def margin(self) -> float:
        """Relative distance to the threshold: how far the value would have to move."""
        return abs(self.value - self.threshold) / abs(self.threshold)


@dataclass(frozen=True)
class Seed:
    """One seed's verdict, the numbers behind it and the comparisons that decided it."""

    verdict: str
    numbers: Numbers
    checks: tuple[Check, ...] = ()
    says: str = ""  # what happened, in words, where a verdict needs more than its name


@dataclass(frozen=True)
class Decision:
    """A verdict across seeds: the seeds' common verdict or `mixed`, seed means of the
    numbers, and the smallest margin of any seed."""

    verdict: str
    seeds: dict[str, int]
    numbers: Numbers
    margin: float | None
    fragile: bool
    says: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        """Flat, for `dvc exp show` columns like `C2.long.verdict`, `C2.long.margin`."""
        seeds = ", ".join(f"{n} {o}" for o, n in self.seeds.items() if n)
        return {"verdict": self.verdict, "margin": None if self.margin is None else round(self.margin, 4),
                "fragile": self.fragile, "seeds": seeds, "says": self.says, **self.numbers}


def decide(per_seed: list[Seed], fragile: float) -> Decision:
    verdicts = [s.verdict for s in per_seed]
    counts = Counter(verdicts)
    verdict = verdicts[0] if len(counts) == 1 else MIXED
    numbers: Numbers = {}
    for key in per_seed[0].numbers:
        values = [s.numbers[key] for s in per_seed if s.numbers.get(key) is not None]
        numbers[key] = round(statistics.fmean(values), 6) if values else None
    margins = [c.margin() for s in per_seed for c in s.checks]
    margin = min(margins) if margins else None
    says = {s.says for s in per_seed}
    thresholds = {c.name: c.threshold for s in per_seed for c in s.checks}
    return Decision(verdict, {o: counts.get(o, 0) for o in OUTCOMES}, numbers, margin,
                    margin is not None and margin < fragile,
                    says.pop() if len(says) == 1 else "", thresholds)


def combine(decisions: list[Decision]) -> str:
    """A claim's verdict from its parts: their common verdict; `partial` where some parts
    hold and others do not; otherwise `mixed`."""
    verdicts = {d.verdict for d in decisions}
    if len(verdicts) == 1:
        return verdicts.pop()
    if SUPPORTED in verdicts and verdicts & {REFUTED, PARTIAL}:
        return PARTIAL
    return MIXED


# --- reading runs ---------------------------------------------------------------------------

def by_seed(rec: DatasetRecord, variant: str = "baseline", **select: float) -> dict[int, RunRecord]:
    runs = rec.select(variant=variant, **select)
    if not runs:
        what = ", ".join(f"{k} {v}" for k, v in select.items())
        raise LookupError(f"results of {rec.dataset} have no {variant} runs {what}".strip())
    return {r.seed: r for r in runs}


def cond(name: str, value: float, op: str, threshold: float) -> tuple[bool, Check]:
    """`value op threshold` (op one of <=, <, >=, >) and the Check that records it."""
    holds = {"<=": value <= threshold, "<": value < threshold,
             ">=": value >= threshold, ">": value > threshold}[op]
    return holds, Check(name, value, threshold)


def all_of(*conds: tuple[bool, Check]) -> tuple[bool, tuple[Check, ...]]:
    """A conjunction and the checks that decide it: if it holds, any one flipping would undo
    it (all count); if not, every failing one must flip (the farthest of them counts)."""
    failing = [c for ok, c in conds if not ok]
    if not failing:
        return True, tuple(c for _, c in conds)
    return False, (max(failing, key=Check.margin),)


def overfits(p: Point, t) -> tuple[bool, tuple[Check, ...]]:
    """Memorized the training targets and no better than the mean on new data."""
    return all_of(cond("overfit_train_frac", p.train_frac, "<=", t.overfit_train_frac),
                  cond("overfit_val_ratio", p.val_ratio, ">=", t.overfit_val_ratio))


def near_mean(train_frac: float, t) -> tuple[bool, tuple[Check, ...]]:
    """C1's "learned the mean": c1_min_train_frac <= train_frac <= c1_max_train_frac."""
    return all_of(cond("c1_min_train_frac", train_frac, ">=", t.c1_min_train_frac),
                  cond("c1_max_train_frac", train_frac, "<=", t.c1_max_train_frac))


def memorized(proc: Process, t) -> bool:
    return proc.outcome == "memorized" and proc.final.val_ratio >= t.overfit_val_ratio


def process_numbers(rec: DatasetRecord, proc: Process, prefix: str = "") -> Numbers:
    spe = rec.steps_per_epoch
    return {f"{prefix}memorized_epoch": proc.memorized_epoch,
            f"{prefix}memorized_step": proc.steps(proc.memorized_epoch, spe),
            f"{prefix}half_epoch": proc.half_epoch,
            f"{prefix}epochs": proc.epochs_trained,
            f"{prefix}train_frac": proc.final.train_frac,
            f"{prefix}val_ratio": proc.final.val_ratio,
            f"{prefix}best_val_epoch": proc.best_val_epoch}


# --- the claims' judges --------------------------------------------------------------------

def judge_c1_article(p: Point, t) -> Seed:
    over, checks = overfits(p, t)
    numbers: Numbers = {"train_frac": p.train_frac, "val_ratio": p.val_ratio}
    if over:
        return Seed(REFUTED, numbers, checks)
    near, near_checks = near_mean(p.train_frac, t)
    return Seed(SUPPORTED if near else INCONCLUSIVE, numbers, checks + near_checks)


def judge_c1_long(rec: DatasetRecord, proc: Process, t) -> Seed:
    numbers = process_numbers(rec, proc)
    held, val = all_of(cond("overfit_val_ratio", proc.final.val_ratio, ">=", t.overfit_val_ratio))
    if proc.outcome == "memorized" and held:
        return Seed(REFUTED, numbers, val, "memorized the random targets")
    if proc.outcome == "plateau":
        near, checks = near_mean(proc.final.train_frac, t)
        return Seed(SUPPORTED if near else INCONCLUSIVE, numbers, checks, "levelled off")
    return Seed(INCONCLUSIVE, numbers, val, "still falling at the end of the budget")


def judge_c3_article(short: Point, long: Point, t) -> Seed:
    s_over, s_checks = overfits(short, t)
    l_over, l_checks = overfits(long, t)
    numbers: Numbers = {"seq5_train_frac": short.train_frac, "seq5_val_ratio": short.val_ratio,
                        "seq20_train_frac": long.train_frac, "seq20_val_ratio": long.val_ratio}
    if s_over:
        return Seed(REFUTED, numbers, s_checks)
    return Seed(SUPPORTED if l_over else INCONCLUSIVE, numbers, s_checks + l_checks)


def judge_c3_long(short_rec: DatasetRecord, short: Process, long_rec: DatasetRecord,
                  long: Process, t) -> Seed:
    numbers = {**process_numbers(short_rec, short, "seq5_"),
               **process_numbers(long_rec, long, "seq20_")}
    if memorized(short, t):
        return Seed(REFUTED, numbers, (Check("overfit_val_ratio", short.final.val_ratio,
                                             t.overfit_val_ratio),),
                    "length 5 memorized too")
    if short.outcome == "plateau" and memorized(long, t):
        return Seed(SUPPORTED, numbers, (), "length 5 plateaued, length 20 memorized")
    return Seed(INCONCLUSIVE, numbers, (), "")


def sine_numbers(rec: DatasetRecord, run: RunRecord, epoch: int) -> tuple[Point, Numbers]:
    """Train and validation MSE against the noise variance, and how far validation MSE has
    risen above its best measured epoch up to `epoch`."""
    p = at(rec, run, epoch)
    best = min(q.val_mse for q in points(rec, run) if q.epoch <= p.epoch)
    noise = rec.noise_floor
    return p, {"train_noise": p.train_mse / noise, "val_noise": p.val_mse / noise,
               "val_rise": p.val_mse / best - 1.0}


def judge_c4(numbers: Numbers, t, memorized_noise: bool = False) -> Seed:
    tn, vn, rise = numbers["train_noise"], numbers["val_noise"], numbers["val_rise"]
    pattern, p_checks = all_of(cond("c4_train_floor", tn, ">=", t.c4_train_floor),
                               cond("c4_val_ceiling", vn, "<=", t.c4_val_ceiling))
    if pattern:
        return Seed(SUPPORTED, numbers, p_checks, "learned the pattern, not the noise")
    fitted = (memorized_noise, Check("c4_refute_train", tn, t.c4_refute_train))
    if not memorized_noise:
        fitted = cond("c4_refute_train", tn, "<", t.c4_refute_train)
    noise, n_checks = all_of(fitted, cond("val_rise", rise, ">", t.val_rise))
    if noise:
        return Seed(REFUTED, numbers, p_checks + n_checks, "fitted the noise, validation got worse")
    return Seed(INCONCLUSIVE, numbers, p_checks + n_checks)


def judge_c6(rec: DatasetRecord, proc: Process, t) -> Seed:
    numbers = {**process_numbers(rec, proc), "fall": proc.fall}
    vr = proc.final.val_ratio
    if proc.outcome == "plateau":
        ok, checks = all_of(cond("overfit_val_ratio", vr, "<=", t.overfit_val_ratio))
        return Seed(SUPPORTED if ok else INCONCLUSIVE, numbers, checks, "levelled off")
    worse, checks = all_of(cond("c6_refute_val_ratio", vr, ">", t.c6_refute_val_ratio))
    says = "memorized the training returns" if proc.memorized_epoch else "training error still falling"
    return Seed(REFUTED if worse else INCONCLUSIVE, numbers, checks, says)


PREVENTS = "prevents memorizing noise while still learning the pattern"
STOPS_FITTING = "prevents fitting altogether"
DOES_NOT = "does not prevent memorizing"


def judge_regularizer(noise: Process, noise_base: Process, pattern: Process,
                      pattern_base: Process, pattern_rec: DatasetRecord, t) -> Seed:
    """C2, C5 on one seed. On random targets, which the baseline memorizes: does the
    regularized run stop memorizing? On the noisy sine: does it stay off the noise (not
    memorized, training MSE >= c4_refute_train x noise variance) and still learn the pattern
    (best validation MSE within val_rise of the baseline's best)?"""
    noise_var = pattern_rec.noise_floor
    numbers = {"random_memorized_epoch": noise.memorized_epoch,
               "random_train_frac": noise.final.train_frac,
               "baseline_memorized_epoch": noise_base.memorized_epoch,
               "sine_train_noise": pattern.final.train_mse / noise_var,
               "sine_best_val_noise": pattern.best_val_mse / noise_var,
               "baseline_sine_best_val_noise": pattern_base.best_val_mse / noise_var}
    if not memorized(noise_base, t):
        return Seed(INCONCLUSIVE, numbers, (), "the baseline did not memorize: nothing to prevent")
    if noise.outcome == "memorized":
        return Seed(REFUTED, numbers, (), DOES_NOT)
    if noise.outcome == "falling":
        return Seed(INCONCLUSIVE, numbers, (), "still falling at the end of the budget")
    off_noise, off_checks = all_of(
        (pattern.outcome != "memorized", Check("c4_refute_train", numbers["sine_train_noise"],
                                               t.c4_refute_train)),
        cond("c4_refute_train", numbers["sine_train_noise"], ">=", t.c4_refute_train))
    if not off_noise:
        return Seed(REFUTED, numbers, off_checks, DOES_NOT + " (the sine's noise)")
    learned, checks = all_of(cond("val_rise", pattern.best_val_mse / pattern_base.best_val_mse - 1,
                                  "<=", t.val_rise))
    if learned:
        return Seed(SUPPORTED, numbers, off_checks + checks, PREVENTS)
    return Seed(PARTIAL, numbers, off_checks + checks, STOPS_FITTING)


def prevented_at(reg: Point, base: Point, t) -> tuple[str | None, tuple[Check, ...], str]:
    """At a fixed epoch, on random targets: undecided if the baseline has not overfit yet
    (nothing to prevent), refuted if the regularized run overfits too, else None (prevented)
    with the checks that decided it."""
    base_over, base_checks = overfits(base, t)
    if not base_over:
        return INCONCLUSIVE, base_checks, "the baseline did not overfit yet: nothing to prevent"
    over, checks = overfits(reg, t)
    return (REFUTED if over else None), base_checks + checks, DOES_NOT if over else ""


def judge_regularizer_at(noise: Point, noise_base: Point, pattern: Point, pattern_base: Point,
                         t) -> Seed:
    """The same question at a fixed epoch (the article's budget)."""
    numbers: Numbers = {"random_train_frac": noise.train_frac,
                        "baseline_train_frac": noise_base.train_frac,
                        "sine_val_mse": pattern.val_mse, "baseline_sine_val_mse": pattern_base.val_mse}
    verdict, checks, says = prevented_at(noise, noise_base, t)
    if verdict is not None:
        return Seed(verdict, numbers, checks, says)
    learned, l_checks = all_of(cond("val_rise", pattern.val_mse / pattern_base.val_mse - 1, "<=",
                                    t.val_rise))
    return Seed(SUPPORTED if learned else PARTIAL, numbers, checks + l_checks,
                PREVENTS if learned else STOPS_FITTING)


def judge_example_dropout(drop: Process, base: Process, cap: int, t) -> Seed:
    """C2 on the article's Example 2 (random targets), within the run's cap: does Dropout stop
    the memorizing that the baseline does, or only delay it? `delay` is the ratio of the
    epochs at which they memorized (a lower bound, cap / baseline's, if Dropout did not)."""
    b, d = base.memorized_epoch, drop.memorized_epoch
    numbers: Numbers = {"baseline_memorized_epoch": b, "dropout_memorized_epoch": d,
                        "delay": None if b is None else (d or cap) / b,
                        "baseline_train_frac": base.final.train_frac,
                        "dropout_train_frac": drop.final.train_frac,
                        "dropout_val_ratio": drop.final.val_ratio}
    if not memorized(base, t):
        return Seed(INCONCLUSIVE, numbers, (), "the baseline did not memorize: nothing to prevent")
    if drop.outcome == "memorized":
        return Seed(REFUTED, numbers, (), "delays memorizing; does not prevent it")
    if drop.outcome == "plateau":
        return Seed(SUPPORTED, numbers, (), "prevents memorizing within the cap")
    return Seed(INCONCLUSIVE, numbers, (), "delays memorizing past the cap; still falling there")


def judge_example_dropout_at(drop: Point, base: Point, t) -> Seed:
    """The same at a fixed epoch (the article's budget): the baseline overfits, Dropout not."""
    numbers: Numbers = {"baseline_train_frac": base.train_frac,
                        "dropout_train_frac": drop.train_frac,
                        "baseline_val_ratio": base.val_ratio, "dropout_val_ratio": drop.val_ratio}
    verdict, checks, says = prevented_at(drop, base, t)
    return Seed(verdict or SUPPORTED, numbers, checks, says or "the baseline overfits, Dropout not")


def judge_c7(memorized_at: Mapping[int, bool]) -> Seed:
    """Sizes -> memorized within the budget: supported if the smallest is and the largest is
    not; refuted if every size is, or the largest is and the smallest is not."""
    sizes = sorted(memorized_at)
    small, large = memorized_at[sizes[0]], memorized_at[sizes[-1]]
    numbers = {f"n{n}_memorized": float(memorized_at[n]) for n in sizes}
    if small and not large:
        return Seed(SUPPORTED, numbers, (), "the small sets memorized, the large not")
    if large:
        return Seed(REFUTED, numbers, (), "every size memorized" if small
                    else "the large set memorized, the small not")
    return Seed(INCONCLUSIVE, numbers, (), "no size memorized within the budget")


def judge_c8_overfits(base: RunRecord, t) -> Seed:
    proc = classifier_process(base, t.val_rise)
    numbers = {"overfit_epoch": proc.overfit_epoch, "best_val_epoch": proc.best.epoch,
               "max_val_rise": proc.max_rise, "best_val_loss": proc.best.val_loss,
               "final_val_loss": proc.final.val_loss, "final_train_loss": proc.final.train_loss}
    check = (Check("val_rise", proc.max_rise, t.val_rise),)
    if proc.overfit_epoch is not None and proc.train_fell:
        return Seed(SUPPORTED, numbers, check, "validation loss rose while training loss fell")
    return Seed(REFUTED, numbers, check, "validation loss did not rise clearly above its best")


def judge_c8_stable(drop: RunRecord, t) -> Seed:
    proc = classifier_process(drop, t.val_rise)
    numbers = {"max_val_rise": proc.max_rise, "best_val_epoch": proc.best.epoch}
    check = (Check("c8_stable_rise", proc.max_rise, t.c8_stable_rise),)
    if proc.max_rise <= t.c8_stable_rise:
        return Seed(SUPPORTED, numbers, check, "validation loss stayed near its best")
    return Seed(REFUTED, numbers, check, "validation loss rose above its best")


def judge_c8_better(base: RunRecord, drop: RunRecord, t) -> Seed:
    b, d = classifier_process(base, t.val_rise), classifier_process(drop, t.val_rise)
    numbers = {"baseline_final_val_loss": b.final.val_loss, "dropout_final_val_loss": d.final.val_loss,
               "baseline_final_val_acc": b.final.val_acc, "dropout_final_val_acc": d.final.val_acc,
               "baseline_best_val_loss": b.best.val_loss, "dropout_best_val_loss": d.best.val_loss,
               "baseline_best_val_acc": b.best.val_acc, "dropout_best_val_acc": d.best.val_acc}
    checks = (Check("baseline_final_val_loss", d.final.val_loss, b.final.val_loss),
              Check("baseline_final_val_acc", d.final.val_acc, b.final.val_acc))
    loss_better = d.final.val_loss < b.final.val_loss
    acc_better = d.final.val_acc >= b.final.val_acc
    if loss_better and acc_better:
        return Seed(SUPPORTED, numbers, checks, "lower validation loss and higher accuracy")
    if not loss_better and not acc_better:
        return Seed(REFUTED, numbers, checks, "higher validation loss and lower accuracy")
    return Seed(PARTIAL, numbers, checks, "better on one of loss and accuracy")
