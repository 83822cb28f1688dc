"""Claim C8's data: the UCI Sentiment Labelled Sentences, read, deduplicated, split and vectorized.

Each file is `sentence<TAB>label` per line. Lines are split on their last TAB (the imdb file
has stray double quotes that CSV quoting would swallow across lines) and sentences are
stripped (imdb's end in two spaces); see data/snapshot/sentiment/SOURCE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstm_overfit.datasets.arrays import Dataset
from lstm_overfit.errors import StageError
from lstm_overfit.params import Sentiment

SITES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt",
         "yelp": "yelp_labelled.txt"}


@dataclass(frozen=True)
class Sentence:
    text: str
    label: int
    site: str


def parse_lines(text: str, origin: str, site: str) -> list[Sentence]:
    """`sentence<TAB>label` lines; a line without a TAB, an empty sentence or a label other
    than 0 or 1 stops with the file and line number."""
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        sentence, tab, label = line.rpartition("\t")
        if not tab:
            raise StageError(f"{origin}:{number}: no TAB-separated label")
        if label.strip() not in ("0", "1"):
            raise StageError(f"{origin}:{number}: label {label!r} is not 0 or 1")
        if not sentence.strip():
            raise StageError(f"{origin}:{number}: empty sentence")
        out.append(Sentence(sentence.strip(), int(label), site))
    if not out:
        raise StageError(f"{origin}: no sentences")
    return out


def read_sentences(folder: Path) -> list[Sentence]:
    """Every site's sentences, in file order."""
    out = []
    for site, name in SITES.items():
        path = folder / name
        if not path.is_file():
            raise StageError(f"{path}: missing (the sentiment data has {', '.join(SITES.values())})")
        with open(path, encoding="utf-8", newline="") as f:
            out += parse_lines(f.read(), str(path), site)
    return out


def dedupe(sentences: list[Sentence]) -> tuple[list[Sentence], dict[str, int]]:
    """One copy of each sentence, so none can land on both sides of the split. A sentence
    that appears with both labels is dropped altogether."""
    first: dict[str, Sentence] = {}
    labels: dict[str, set[int]] = {}
    for s in sentences:
        first.setdefault(s.text, s)
        labels.setdefault(s.text, set()).add(s.label)
    kept = [s for t, s in first.items() if len(labels[t]) == 1]
    return kept, {"read": len(sentences), "duplicates": len(sentences) - len(first),
                  "conflicting": len(first) - len(kept), "kept": len(kept)}


def split(sentences: list[Sentence], val_fraction: float, seed: int
          ) -> tuple[list[Sentence], list[Sentence]]:
    """Stratified by label and site: each (label, site) group is shuffled with the seed and
    its first round(val_fraction x size) go to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for key in sorted({(s.label, s.site) for s in sentences}):
        group = [s for s in sentences if (s.label, s.site) == key]
        order = rng.permutation(len(group))
        cut = round(val_fraction * len(group))
        val += [group[i] for i in order[:cut]]
        train += [group[i] for i in order[cut:]]
    return train, val


def vectorize(train: list[Sentence], val: list[Sentence], p: Sentiment
              ) -> tuple[Dataset, list[str]]:
    """Token ids from Keras' TextVectorization, its vocabulary adapted on the training
    sentences only: lower-cased, punctuation stripped, split on whitespace, padded or cut to
    `seq_len` (0 pads, 1 is out-of-vocabulary)."""
    from lstm_overfit.infrastructure.runtime import import_keras

    keras = import_keras()
    layer = keras.layers.TextVectorization(max_tokens=p.vocab_size, output_mode="int",
                                           output_sequence_length=p.seq_len)
    layer.adapt([s.text for s in train], batch_size=len(train))

    def ids(part: list[Sentence]) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(layer([s.text for s in part])), np.int32)

    def labels(part: list[Sentence]) -> np.ndarray:
        return np.asarray([[s.label] for s in part], np.float32)

    vocabulary = list(layer.get_vocabulary())
    return (Dataset(ids(train), labels(train), ids(val), labels(val), vocab=len(vocabulary)),
            vocabulary)
