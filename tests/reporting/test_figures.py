"""Every figure the report links is drawn, is a real picture, and is byte-reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.params import parse_params
from lstm_overfit.reporting.figures import figure, learning_curve
from lstm_overfit.science.catalogue import figure_names
from records import claim_results


@pytest.fixture(scope="module")
def drawn(tmp_path_factory, repo_params):
    p = parse_params(repo_params)
    results = claim_results(p)
    folder = tmp_path_factory.mktemp("figures")
    for name in figure_names():
        figure(name)(results, p, folder / f"{name}.png")
    return folder


def not_blank(path) -> bool:
    import matplotlib.image

    img = matplotlib.image.imread(path)
    # Each pixel's bytes as one value: np.unique(axis=0) over RGBA rows takes ~0.7 s a figure.
    pixels = (img * 255).round().astype(np.uint8)
    colours = np.unique(pixels.reshape(-1, img.shape[-1]).view(f"V{img.shape[-1]}"))
    return img.shape[0] > 200 and len(colours) > 20 and img.std() > 0.05


def test_every_linked_figure_is_written_and_not_blank(drawn):
    for name in figure_names():
        assert not_blank(drawn / f"{name}.png"), name


def test_figures_are_byte_reproducible(drawn, tmp_path, repo_params):
    p = parse_params(repo_params)
    figure("sweep")(claim_results(p), p, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes() == (drawn / "sweep.png").read_bytes()


def test_a_runs_learning_curve(tmp_path, repo_params):
    rec = claim_results(parse_params(repo_params))["sentiment"]
    learning_curve(rec, list(rec.runs[:1]), "sentiment seed 0", tmp_path / "c.png")
    assert not_blank(tmp_path / "c.png")


@pytest.mark.parametrize("dataset", ["ex2", "sentiment"])
def test_a_learning_curve_at_its_fixed_margins_shows_every_label_whole(tmp_path, repo_params,
                                                                         monkeypatch, dataset):
    """Learning curves are laid out at fixed margins, not by tight_layout: their title, labels,
    tick labels and legend must still lie inside the picture, the legend beside the data; and
    their log ticks are plain text (10\u207b\u00b2), not mathtext."""
    import lstm_overfit.reporting.figures as figures

    saved = []
    real = figures.save_figure
    monkeypatch.setattr(figures, "save_figure",
                        lambda fig, path, margins=None: (saved.append(fig), real(fig, path, margins)))
    rec = claim_results(parse_params(repo_params))[dataset]
    learning_curve(rec, list(rec.runs), f"{dataset}/baseline", tmp_path / "c.png", 0.1)
    (fig,) = saved
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # closed after saving: measured on a canvas of its own
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    ticks = [label for axis in (ax.xaxis, ax.yaxis) for minor in (False, True)
             for loc, label in zip(axis.get_ticklocs(minor=minor),
                                   axis.get_ticklabels(minor=minor), strict=True)
             if label.get_text() and min(axis.get_view_interval()) <= loc
             <= max(axis.get_view_interval())]  # the ticks drawn
    assert ticks and not [t.get_text() for t in ticks if "$" in t.get_text()]
    assert {"1", "10"} <= {t.get_text() for t in ax.xaxis.get_ticklabels()}
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    texts = [*ticks, ax.title, ax.xaxis.label, ax.yaxis.label]
    for box in [legend, *(t.get_window_extent(renderer) for t in texts)]:
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, box
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, box


def test_log_ticks_are_plain_text():
    from lstm_overfit.reporting.figures import log_tick_formatter

    fmt = log_tick_formatter()
    assert [fmt._num_to_string(x, 1e-4, 1e4) for x in (1e-3, 0.01, 1, 10, 100, 3000, 2e5, 0.695)
            ] == ["10\u207b\u00b3", "10\u207b\u00b2", "1", "10", "10\u00b2", "3000", "2e+05",
                  "0.695"]


def legend_and_axes(fig):
    fig.tight_layout()  # as save_figure lays it out
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            out.append((legend.get_window_extent(renderer), ax.get_window_extent(renderer)))
    return out


def test_legends_sit_beside_the_data_not_on_it(tmp_path, repo_params, monkeypatch):
    """Every figure's legend lies outside every plotting area (today's curves_sine.png had it
    over the curves)."""
    import lstm_overfit.reporting.figures as figures

    p = parse_params(repo_params)
    results = claim_results(p)
    seen = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: seen.append(fig))
    for name in figure_names():
        figure(name)(results, p, tmp_path / f"{name}.png")
    assert len(seen) == len(figure_names())
    for fig in seen:
        pairs = legend_and_axes(fig)
        assert pairs, fig.axes[0].get_title()
        for legend, _ in pairs:
            for ax in fig.axes:
                assert not legend.overlaps(ax.get_window_extent()), ax.get_title()
        figures.pyplot().close(fig)


def test_learning_curves_are_seed_means_with_their_range():
    from lstm_overfit.reporting.figures import seed_band
    from records import make_run

    runs = [make_run([1.0, 0.5, 0.25], epochs=[1, 2, 4]),
            make_run([1.0, 0.3], epochs=[1, 2], seed=1, stopped=True)]
    epochs, mean, lo, hi = seed_band(runs, "train_error")
    assert epochs == [1, 2, 4]
    assert mean == pytest.approx([0.1, 0.04, 0.0275])  # seed 1 stays at its last value
    assert lo == pytest.approx([0.1, 0.03, 0.025]) and hi == pytest.approx([0.1, 0.05, 0.03])


def test_series_figure_shows_real_and_shuffled_against_the_naive_forecasts(tmp_path):
    from lstm_overfit.reporting.figures import series_figure
    from lstm_overfit.science.diagnosis import Controls
    from records import make_record, memorizing

    recs = {"baseline": make_record("s", [memorizing(s, 300) for s in (0, 1)]),
            "shuffled": make_record("s", [memorizing(s, 600, "shuffled") for s in (0, 1)])}
    c = Controls(0.5, 1.0, 0.4, 0.5, 0.1, 0.01, 10)
    series_figure(recs, c, "s", 50, tmp_path / "s.png")
    assert not_blank(tmp_path / "s.png")


def test_a_figure_has_the_same_bytes_after_the_warm_servers_first_figure(tmp_path):
    """The warm server draws a throwaway figure before it forks stages (server.py): what a
    stage draws next must not depend on it."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tests)!r})
        import yaml
        from lstm_overfit.params import parse_params
        from lstm_overfit.reporting import figures
        from records import claim_results
        if sys.argv[1] == "warm":
            figures.warm_up()
        p = parse_params(yaml.safe_load(open({str(tests.parent / "params.yaml")!r})))
        results = claim_results(p)
        figures.figure("sweep")(results, p, sys.argv[2] + "/sweep.png")
        figures.figure("curves_ex1")(results, p, sys.argv[2] + "/curves.png")
    """)
    for kind in ("cold", "warm"):
        (tmp_path / kind).mkdir()
        subprocess.run([sys.executable, "-c", script, kind, str(tmp_path / kind)], check=True,
                       timeout=120)
    for name in ("sweep.png", "curves.png"):
        assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "cold" / name).read_bytes()


def test_titles_sit_where_matplotlib_would_place_them(drawn, tmp_path, repo_params, monkeypatch):
    """save_figure fixes each title at the top of its axes instead of letting matplotlib place
    it: the same pixels, one layout of the ticks less."""
    from matplotlib.axes import Axes

    real = Axes.set_title
    monkeypatch.setattr(Axes, "set_title", lambda ax, label, *a, y=None, **kw: real(ax, label, *a, **kw))
    p = parse_params(repo_params)
    results = claim_results(p)
    for name in ("sweep", "strength_dropout", "curves_sentiment"):
        figure(name)(results, p, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes() == (drawn / f"{name}.png").read_bytes(), name
    rec = results["ex2"]
    learning_curve(rec, list(rec.runs), "ex2 baseline", tmp_path / "placed.png", 0.1)
    monkeypatch.undo()
    learning_curve(rec, list(rec.runs), "ex2 baseline", tmp_path / "fixed.png", 0.1)
    assert (tmp_path / "placed.png").read_bytes() == (tmp_path / "fixed.png").read_bytes()
