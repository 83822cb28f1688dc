"""Figures: learning curves of a dataset's runs. PNG bytes are reproducible (no timestamps)."""

from __future__ import annotations

from pathlib import Path

PNG_METADATA = {"Software": None}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    fig.savefig(path, dpi=90, metadata=PNG_METADATA)
    _pyplot().close(fig)


def learning_curve(record: dict, runs: list[dict], title: str, path: Path) -> None:
    """Keras training loss per epoch and inference-mode train/validation MSE at the measured
    epochs, one colour per run, with the mean predictor's validation MSE for reference."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, run in enumerate(runs):
        colour = f"C{i}"
        label = f"{run['variant']} seed {run['seed']}"
        ax.plot(range(1, len(run["loss"]) + 1), run["loss"], color=colour, lw=0.8, alpha=0.5,
                label=f"{label}: training loss (Keras)")
        ax.plot(run["eval"]["epoch"], run["eval"]["val_mse"], color=colour, lw=1.6,
                label=f"{label}: validation MSE")
    ax.axhline(record["baseline_val_mse"], color="k", ls="--", lw=1,
               label="predicting the training mean")
    if record.get("noise_var"):
        ax.axhline(record["noise_var"], color="grey", ls=":", lw=1, label="noise variance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
