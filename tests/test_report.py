from __future__ import annotations

from lstm_overfit.claims import judge_all
from lstm_overfit.params import parse_params
from lstm_overfit.report import curves_figure, memorization_figure, render_markdown, sweep_figure, why
from test_claims import memorizes, record, run


def _fixture(repo_params):
    t = parse_params(repo_params).claims
    t = type(t)(**{**t.__dict__, "article_epoch": 2})
    flat = lambda e: 1.0  # noqa: E731
    names = ("ex1", "ex2", "ex3", "ex3_seq20", "sine", "sine_small", "stocks")
    results = {n: record(n, [run(v, s, 10, memorizes if s else flat, flat, 0.01 if "sine" in n else 1)
                             for v in ("baseline", "dropout", "l2") for s in (0, 1)],
                         noise_var=0.01 if "sine" in n else None) for n in names}
    sweep = {"steps": 10, "epochs": 2, "sizes": {
        n: {"record": record(f"n{n}", [run("baseline", s, 10, memorizes, flat) for s in (0, 1)]),
            "equal_steps": 10, "equal_epochs": 2} for n in ("8", "16")}}
    return t, results, sweep


def test_markdown_explains_every_claim_with_numbers(repo_params):
    t, results, sweep = _fixture(repo_params)
    claims = judge_all(results, sweep, t)
    md = render_markdown(claims, results, t)
    for claim in claims:
        assert f"## {claim}" in md
    assert "| C1 | long (epoch 10) | **mixed** | 1/1/0 |" in md
    assert "The seeds disagree (1 supported, 1 refuted, 0 inconclusive)" in md
    assert "train_frac = " in md and "![curves_ex1.png](figures/curves_ex1.png)" in md


def test_why_names_the_reason(repo_params):
    t, _, _ = _fixture(repo_params)
    assert "dropout" in why("C2", {"verdict": "refuted"}, t)
    assert "nothing" in why("C5", {"verdict": "inconclusive"}, t)


def test_figures_are_written_and_reproducible(tmp_path, repo_params):
    t, results, sweep = _fixture(repo_params)
    for i in (1, 2):
        curves_figure(results["ex2"], tmp_path / f"c{i}.png")
        memorization_figure(results, sweep, tmp_path / f"m{i}.png")
        sweep_figure(sweep, t, tmp_path / f"s{i}.png")
    for stem in "cms":
        a, b = (tmp_path / f"{stem}1.png").read_bytes(), (tmp_path / f"{stem}2.png").read_bytes()
        assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
