"""The results record: validation, truncation, merging and the files the stages share."""

from __future__ import annotations

import pydantic
import pytest

from lstm_overfit.errors import StageError
from lstm_overfit.records import RunRecord, load_results, merge, read_results, write_results
from records import make_record, make_run


def test_a_run_must_measure_its_last_epoch():
    with pytest.raises(pydantic.ValidationError, match="last measured epoch"):
        RunRecord(variant="baseline", seed=0, dropout=0, l2=0, loss=(1.0, 1.0, 1.0), epochs=(1, 2),
                  train_error=(1.0, 1.0), val_error=(1.0, 1.0), stopped_early=False)
    with pytest.raises(pydantic.ValidationError, match="training and a validation error"):
        RunRecord(variant="baseline", seed=0, dropout=0, l2=0, loss=(1.0, 1.0), epochs=(1, 2),
                  train_error=(1.0,), val_error=(1.0, 1.0), stopped_early=False)


def test_truncated_is_the_run_as_it_stood():
    run = make_run([1.0, 0.5, 0.2, 0.1], epochs=[1, 2, 4, 8], stopped=True)
    cut = run.truncated(4)
    assert cut.epochs == (1, 2, 4) and len(cut.loss) == 4 and not cut.stopped_early
    assert run.truncated(100) is run
    with pytest.raises(ValueError, match="not measured"):
        run.truncated(3)


def test_write_read_roundtrip(tmp_path):
    rec = make_record()
    write_results(tmp_path / "r.json", [rec])
    assert read_results(tmp_path / "r.json") == [rec]
    first = (tmp_path / "r.json").read_bytes()
    write_results(tmp_path / "r.json", [rec])
    assert (tmp_path / "r.json").read_bytes() == first


def test_merge_joins_runs_of_a_dataset_and_refuses_disagreement():
    a = make_record(runs=[make_run([1.0, 0.5], seed=0)])
    b = make_record(runs=[make_run([1.0, 0.4], variant="dropout", dropout=0.5, seed=0)])
    merged = merge([a, b])["ex1"]
    assert len(merged.runs) == 2
    assert merged.select("dropout", dropout=0.5)[0].variant == "dropout"
    with pytest.raises(StageError, match="disagree"):
        merge([a, make_record(n_train=99)])


def test_load_results_reads_every_file_below(tmp_path):
    write_results(tmp_path / "ex1" / "baseline.json", [make_record()])
    write_results(tmp_path / "curves" / "x.json", [make_record(name="sine", noise_var=0.01)])
    assert set(load_results(tmp_path)) == {"ex1", "sine"}
    with pytest.raises(StageError, match="no results"):
        load_results(tmp_path / "empty")
