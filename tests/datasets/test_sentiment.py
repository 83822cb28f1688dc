"""Claim C8's data: parsing the UCI files as their SOURCE.md says, deduplication, a split
without overlap stratified by label and site, and a vocabulary from training sentences only."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_overfit.datasets.sentiment import (
    SITES,
    Sentence,
    dedupe,
    parse_lines,
    read_sentences,
    split,
    vectorize,
)
from lstm_overfit.errors import StageError
from lstm_overfit.params import Sentiment

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "data" / "snapshot" / "sentiment"


def test_lines_split_on_the_last_tab_and_keep_quotes():
    rows = parse_lines('"Loved it," she said.  \t1\nbad\tmovie\t0\n', "f.txt", "imdb")
    assert rows == [Sentence('"Loved it," she said.', 1, "imdb"), Sentence("bad\tmovie", 0, "imdb")]


@pytest.mark.parametrize(("text", "message"), [
    ("no label here\n", "f.txt:1: no TAB-separated label"),
    ("fine\t1\nodd\t2\n", "f.txt:2: label '2' is not 0 or 1"),
    ("\t1\n", "f.txt:1: empty sentence"),
    ("\n\n", "f.txt: no sentences"),
])
def test_bad_lines_fail_with_file_and_line(text, message):
    with pytest.raises(StageError, match=message):
        parse_lines(text, "f.txt", "yelp")


def test_the_real_files_parse_to_3000_balanced_rows():
    rows = read_sentences(SNAPSHOT)
    assert len(rows) == 3000
    for site in SITES:
        labels = [r.label for r in rows if r.site == site]
        assert len(labels) == 1000 and sum(labels) == 500
    assert not any(r.text != r.text.strip() for r in rows)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(StageError, match="amazon_cells_labelled.txt: missing"):
        read_sentences(tmp_path)


def test_dedupe_drops_repeats_and_conflicts():
    rows = [Sentence("a", 1, "x"), Sentence("a", 1, "y"), Sentence("b", 0, "x"),
            Sentence("b", 1, "x"), Sentence("c", 0, "x")]
    kept, counts = dedupe(rows)
    assert [r.text for r in kept] == ["a", "c"]
    assert counts == {"read": 5, "duplicates": 2, "conflicting": 1, "kept": 2}


def test_split_is_disjoint_stratified_and_seeded():
    rows, _ = dedupe(read_sentences(SNAPSHOT))
    train, val = split(rows, 0.2, seed=8)
    assert not {r.text for r in train} & {r.text for r in val}
    assert len(train) + len(val) == len(rows)
    for site in SITES:
        for label in (0, 1):
            group = [r for r in rows if r.site == site and r.label == label]
            held = [r for r in val if r.site == site and r.label == label]
            assert len(held) == round(0.2 * len(group))
    assert split(rows, 0.2, seed=8) == (train, val)
    assert split(rows, 0.2, seed=9) != (train, val)


def test_vocabulary_comes_from_training_sentences_only():
    train = [Sentence("good good film", 1, "imdb"), Sentence("bad film", 0, "imdb")]
    val = [Sentence("unseen wonderful film", 1, "imdb")]
    data, vocab = vectorize(train, val, Sentiment(vocab_size=10, seq_len=4, val_fraction=0.5, seed=0))
    assert vocab[:2] == ["", "[UNK]"] and "wonderful" not in vocab and vocab[2] == "good"
    assert data.x_train.shape == (2, 4) and data.x_train.dtype == np.int32
    assert data.x_val[0, :3].tolist() == [1, 1, vocab.index("film")]  # unseen words are 1
    assert data.x_train[1, 2:].tolist() == [0, 0]  # padding at the end
    assert data.vocab == len(vocab) and data.y_val.tolist() == [[1.0]]


def test_prepare_sentiment_writes_the_same_bytes_twice(tmp_path, repo_params):
    import yaml

    from lstm_overfit.stages import prepare_sentiment

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(repo_params))
    for out in ("a", "b"):
        prepare_sentiment.main(["--data", str(SNAPSHOT), "--out", str(tmp_path / out),
                                "--params", str(tmp_path / "params.yaml")])
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert {"x_train.npy", "vocabulary.txt", "split.tsv", "meta.json"} <= set(files)
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
