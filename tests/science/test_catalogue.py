"""The claims catalogue: every claim judged from records, its setting from params, its
figures drawable; the claims stage end to end on files, and its errors."""

from __future__ import annotations

import json

import pytest

from lstm_overfit.errors import StageError
from lstm_overfit.params import parse_params
from lstm_overfit.records import write_results
from lstm_overfit.reporting.figures import figure
from lstm_overfit.science.catalogue import CLAIMS, headline
from lstm_overfit.science.judges import OUTCOMES
from lstm_overfit.stages import claims as claims_stage
from records import claim_results


@pytest.fixture
def params(repo_params):
    return parse_params(repo_params)


def test_ids_are_unique_and_every_claim_has_text_reads_and_figures(params):
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    for c in CLAIMS:
        assert c.text and c.reads(params) and c.figures
        for name in c.figures:
            assert callable(figure(name))


def test_every_claim_is_judged_from_the_records(params):
    results = claim_results(params)
    verdicts = {}
    for c in CLAIMS:
        decisions = c.judge(results, params)
        for d in decisions.values():
            assert d.verdict in (*OUTCOMES, "mixed")
            assert sum(d.seeds.values()) == len(params.base.seeds)
        verdicts[c.id] = headline(c, decisions)
    # what the fixtures were built to show
    assert verdicts["C1"] == "refuted"  # memorized random targets
    assert verdicts["C3"] == "refuted"  # so did length 5
    assert verdicts["C4"] == "partial"  # the pattern with many windows, the noise with few
    # the curves' Dropout levels off; Example 2's only delays memorizing
    assert verdicts["C2"] == "partial" and verdicts["C5"] == "supported"
    c2 = CLAIMS[1].judge(results, params)
    assert c2["ex2_long"].verdict == "refuted"
    assert c2["ex2_long"].says == "delays memorizing x2.5; does not prevent it"
    assert c2["ex2_long"].numbers["dropout_memorized_epoch"] == 750
    assert verdicts["C6"] == "refuted"
    assert verdicts["C7"] == "refuted"  # every size memorized within the cap
    assert verdicts["C8"] == "supported"


def test_settings_follow_params(repo_params):
    raw = repo_params | {"model": {"dropout_rate": 0.3, "l2": 0.001}}
    raw["train"] = {**repo_params["train"], "ex1": {"units": 64, "epochs": 777}}
    p = parse_params(raw)
    text = {c.id: c.setting(p) for c in CLAIMS}
    assert "LSTM(64)" in text["C1"] and "777 epochs" in text["C1"]
    assert "the verdict at 0.3" in text["C2"] and "Dropout(0.3)" in text["C2"]
    assert "(1000, 20, 1)" in text["C2"]  # the article's Example 2
    assert "AAPL" in text["C6"]
    assert f"Embedding({p.sentiment.vocab_size}" in text["C8"]


def test_claims_stage_writes_a_verdict_per_claim(tmp_path, params, repo_params):
    import yaml

    for rec in claim_results(params).values():
        write_results(tmp_path / "results" / f"{rec.dataset}.json", [rec])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(repo_params))
    out, verdicts = tmp_path / "claims.json", tmp_path / "verdicts.json"
    claims_stage.main(["--results", str(tmp_path / "results"), "--out", str(out),
                       "--verdicts", str(verdicts), "--params", str(tmp_path / "params.yaml")])
    v = json.loads(verdicts.read_text())
    assert list(v) == [c.id for c in CLAIMS]
    c = json.loads(out.read_text())
    assert c["C1"]["long"]["memorized_epoch"] is not None
    assert set(c["C8"]) == {"overfits", "stable", "better"}


def test_claims_stage_names_the_claim_whose_results_are_missing(tmp_path, params, repo_params):
    import yaml

    for rec in claim_results(params).values():
        if rec.dataset != "sentiment":
            write_results(tmp_path / "results" / f"{rec.dataset}.json", [rec])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(repo_params))
    with pytest.raises(StageError, match="claim C8 cannot be judged: missing results"):
        claims_stage.main(["--results", str(tmp_path / "results"), "--out", str(tmp_path / "c"),
                           "--verdicts", str(tmp_path / "v"),
                           "--params", str(tmp_path / "params.yaml")])
    assert not (tmp_path / "c").exists()
