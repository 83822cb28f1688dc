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
