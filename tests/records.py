"""Results records built in memory with the project's own record types (records.py), so that
fixtures cannot drift from what the training stages write."""

from __future__ import annotations

from lstm_overfit.records import DatasetRecord, RunRecord


def make_run(fracs: list[float], epochs: list[int] | None = None, vals: list[float] | None = None,
             variant: str = "baseline", seed: int = 0, dropout: float = 0.0, l2: float = 0.0,
             stopped: bool = False, scale: float = 0.1, accs: bool = False) -> RunRecord:
    """A run whose training error is `fracs` x `scale` (so train_frac = fracs when the
    record's train_var is `scale`) at `epochs`."""
    epochs = epochs or list(range(1, len(fracs) + 1))
    vals = vals if vals is not None else [1.0] * len(fracs)
    return RunRecord(
        variant=variant, seed=seed, dropout=dropout, l2=l2,
        loss=tuple(scale for _ in range(epochs[-1])), epochs=tuple(epochs),
        train_error=tuple(f * scale for f in fracs), val_error=tuple(v * scale for v in vals),
        train_acc=tuple(0.5 + 0.1 * i for i in range(len(fracs))) if accs else None,
        val_acc=tuple(0.5 for _ in fracs) if accs else None,
        stopped_early=stopped)


def make_record(name: str = "ex1", runs: list[RunRecord] | None = None, train_var: float = 0.1,
                baseline: float = 0.1, noise_var: float | None = None, n_train: int = 100,
                spe: int = 4, task: str = "regression", epochs: int = 1000) -> DatasetRecord:
    runs = runs or [make_run([1.0, 0.9, 0.5], epochs=[1, 2, 4])]
    return DatasetRecord(
        dataset=name, task=task, n_train=n_train, n_val=100, seq_len=10, features=1, units=8,
        vocab=0, weight_count=1000, batch_size=32, steps_per_epoch=spe, epochs=epochs,
        train_var=train_var, baseline_val_error=baseline, noise_var=noise_var,
        data_sha256="0" * 64, runs=tuple(runs))


def memorizing(seed: int, at: int, variant: str = "baseline", **kw) -> RunRecord:
    """A random-target run flat near the mean, then memorized at epoch `at`."""
    epochs = [1, 2, 4, 8, 16, 32, 50, at]
    return make_run([1.5, 1.05, 1.0, 1.0, 0.99, 0.98, 0.97, 0.05], epochs=sorted(set(epochs)),
                    vals=[1.6, 1.05, 1.0, 1.0, 1.02, 1.03, 1.05, 2.0], seed=seed,
                    variant=variant, stopped=True, **kw)


def levelling(seed: int, cap: int, variant: str = "baseline", **kw) -> RunRecord:
    """A random-target run that never memorizes and levels off near the mean."""
    epochs = [1, 2, 4, 8, 16, 32, 50, cap]
    return make_run([1.5, 1.05, 1.0, 1.0, 0.99, 0.98, 0.97, 0.96], epochs=epochs,
                    vals=[1.6, 1.05, 1.0, 1.0, 1.0, 1.0, 1.01, 1.01], seed=seed,
                    variant=variant, **kw)


def sine_run(seed: int, cap: int, fits_noise: bool, variant: str = "baseline", **kw) -> RunRecord:
    """Errors in units of the noise variance (record scale 0.01)."""
    epochs = [1, 2, 4, 8, 16, 32, 50, cap]
    train = [40.0, 5.0, 2.0, 1.3, 1.1, 1.05, 1.02, 0.05 if fits_noise else 1.0]
    val = [40.0, 5.0, 2.0, 1.3, 1.15, 1.1, 1.1, 2.5 if fits_noise else 1.1]
    return make_run(train, epochs=epochs, vals=val, seed=seed, variant=variant, scale=0.01,
                    stopped=fits_noise, **kw)


def classifier_run(seed: int, overfits: bool, variant: str = "baseline", **kw) -> RunRecord:
    epochs = list(range(1, 11))
    val = ([0.69, 0.55, 0.48, 0.5, 0.56, 0.62, 0.7, 0.78, 0.85, 0.9] if overfits
           else [0.69, 0.6, 0.52, 0.49, 0.48, 0.48, 0.47, 0.48, 0.48, 0.47])
    train = [0.69 * 0.7 ** i for i in range(10)]
    return RunRecord(variant=variant, seed=seed, dropout=kw.get("dropout", 0.0), l2=0.0,
                     loss=tuple(train), epochs=tuple(epochs), train_error=tuple(train),
                     val_error=tuple(val), train_acc=tuple(0.6 + 0.04 * i for i in range(10)),
                     val_acc=tuple(0.7 if overfits else 0.75 for _ in epochs), stopped_early=False)


def claim_results(p) -> dict[str, DatasetRecord]:
    """A record for every dataset the claims catalogue reads, with runs that behave as the
    default pipeline's do: random targets memorized, sine_small fits its noise, sine does not,
    dropout on the sentiment data is stable and better, and on Example 2 delays memorizing."""
    seeds = p.base.seeds
    out = {}
    for name in ("ex1", "ex3", "ex3_seq20"):
        out[name] = make_record(name, [memorizing(s, 300 + 10 * s) for s in seeds])
    small = [memorizing(s, 200 + s) for s in seeds]
    for kind, grid in (("dropout", p.curves.dropout), ("l2", p.curves.l2)):
        for strength in grid:
            if strength:
                small += [levelling(s, 900, kind, **{kind: strength}) for s in seeds]
    out["ex1_small"] = make_record("ex1_small", small, n_train=50, spe=2)
    # Example 2: Dropout delays memorizing x2.5 and does not prevent it
    out["ex2"] = make_record("ex2", [memorizing(s, 300) for s in seeds] + [
        memorizing(s, 750, "dropout", dropout=p.model.dropout_rate) for s in seeds],
        n_train=1000, spe=32, epochs=2000)
    sine_small = [sine_run(s, 600, True) for s in seeds]
    for kind, grid in (("dropout", p.curves.dropout), ("l2", p.curves.l2)):
        for strength in grid:
            if strength:
                sine_small += [sine_run(s, 900, False, kind, **{kind: strength}) for s in seeds]
    out["sine_small"] = make_record("sine_small", sine_small, noise_var=0.01, train_var=0.5,
                                    n_train=50, spe=2)
    out["sine"] = make_record("sine", [sine_run(s, 200, False) for s in seeds], noise_var=0.01,
                              train_var=0.5, n_train=1000, spe=32)
    out["stocks"] = make_record("stocks", [memorizing(s, 150) for s in seeds], n_train=1170,
                                spe=37)
    out["sentiment"] = make_record(
        "sentiment", [classifier_run(s, True) for s in seeds]
        + [classifier_run(s, False, "dropout", dropout=p.model.dropout_rate) for s in seeds],
        task="classification", n_train=2386, spe=75, baseline=0.69)
    for n in p.sweep.sizes:
        spe = -(-n // p.base.batch_size)
        out[f"sweep_n{n}"] = make_record(f"sweep_n{n}", [memorizing(s, 100 + n) for s in seeds],
                                         n_train=n, spe=spe, epochs=p.sweep.max_steps // spe)
    return out
