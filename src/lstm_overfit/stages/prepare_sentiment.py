"""Stage `prepare_sentiment`: claim C8's review sentences as token ids, split without overlap."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from lstm_overfit.datasets.arrays import save_dataset
from lstm_overfit.datasets.sentiment import dedupe, read_sentences, split, vectorize
from lstm_overfit.infrastructure.outputs import atomic_dir, write_json
from lstm_overfit.params import load_params


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="prepare_sentiment", description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="folder of the UCI files")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    p = load_params(args.params).sentiment
    sentences, counts = dedupe(read_sentences(args.data))
    train, val = split(sentences, p.val_fraction, p.seed)
    dataset, vocabulary = vectorize(train, val, p)
    with atomic_dir(args.out) as tmp:
        save_dataset(dataset, tmp)
        (tmp / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        with open(tmp / "split.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\",
                                lineterminator="\n")
            writer.writerow(["part", "site", "label", "sentence"])
            for part, rows in (("train", train), ("validation", val)):
                writer.writerows((part, s.site, s.label, s.text) for s in rows)
        write_json(tmp / "meta.json", {**counts, "train": len(train), "validation": len(val),
                                       "vocabulary": len(vocabulary)})
