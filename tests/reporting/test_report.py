"""The report: every claim with its setting, numbers and figures, true to params."""

from __future__ import annotations

import json
import re

from lstm_overfit.params import parse_params
from lstm_overfit.reporting.report import README_SECTION, render
from lstm_overfit.science.catalogue import CLAIMS, figure_names, headline
from records import claim_results

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def claims_json(results, p) -> tuple[dict, dict]:
    verdicts, claims = {}, {}
    for c in CLAIMS:
        d = c.judge(results, p)
        verdicts[c.id] = headline(c, d)
        claims[c.id] = {k: v.as_json() for k, v in d.items()}
    return verdicts, json.loads(json.dumps(claims))


def test_report_explains_every_claim_with_its_figures(repo_params):
    p = parse_params(repo_params)
    results = claim_results(p)
    text = render(*claims_json(results, p), results, p)
    for c in CLAIMS:
        assert f"## {c.id}: " in text
        assert c.setting(p) in text
    for name in figure_names():
        assert f"(figures/{name}.png)" in text
    assert "memorized_epoch = " in text and "Margin to the nearest threshold" in text
    assert "| ex1 | baseline | 100 |" in text  # the capacity table


def test_report_follows_a_param_change(repo_params):
    raw = json.loads(json.dumps(repo_params, default=str))
    raw["model"]["dropout_rate"] = 0.3
    raw["memorization"]["stop_frac"] = 0.05
    p = parse_params(raw)
    results = claim_results(p)
    text = render(*claims_json(results, p), results, p)
    assert "the verdict at 0.3" in text and "`noise_frac` <= 0.05" in text
    assert "Dropout(0.5)" not in text


def test_the_readme_section_the_report_cites_exists():
    anchor = README_SECTION.split("#", 1)[1]
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(), flags=re.M)
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in slugs


def test_report_has_a_section_per_series_with_its_diagnosis(repo_params):
    p = parse_params(repo_params)
    results = claim_results(p)
    d = {"info": {"csv": "data/mine.csv", "columns": ["y"], "transform": "none", "rows": 100,
                  "first": "1", "last": "100", "train_last": "80", "train_rows": 80,
                  "val_first": "81", "val_rows": 20},
         "answer": "too little training", "summary": "Not overfitting at 50 epochs because x.",
         "capacity": "cap", "signal": "sig", "budget": "bud", "regularization": "reg"}
    name = next(iter(p.series))
    text = render(*claims_json(results, p), results, p, {name: d})
    assert f"### {name}: too little training" in text
    assert f"![{name}](series/{name}.png)" in text
    assert "- **Capacity** (the randomization test): cap." in text
    assert "training to 80 (80 rows), validation from 81 (20 rows)" in text
