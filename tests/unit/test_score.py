"""Batch scoring's library: the input described and checked, shards planned, rows checked as
the service checks them, shards scored and the output published whole (or not at all)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flowship import score
from flowship.config import ScoreSettings, ServingSettings
from flowship.errors import DataValidationError, ScoreError
from flowship.predict import scan_prediction_log
from flowship.sample_data import generate_churn
from flowship.score import (
    ScoringInput,
    ScoringModel,
    check_rows,
    describe_input,
    plan_shards,
    prepare_output,
    publish_scores,
    score_shard,
)
from flowship.sources import TableFile
from flowship.train import CandidateSpec, build_pipeline, label_array
from tests.unit.conftest import Prepared


def _input(*rows: int) -> ScoringInput:
    files = [TableFile(f"f{i}.parquet", ["a"], n) for i, n in enumerate(rows)]
    return ScoringInput("f*.parquet", files, None)


def test_plan_splits_large_files_and_packs_small_ones() -> None:
    """Shards hold `shard_rows` rows (the last fewer), in input order: a large file is cut by
    rows, small files share a shard, an empty file is skipped, every row once."""
    shards = plan_shards(_input(5, 0, 2, 12), shard_rows=4)
    assert [s.rows for s in shards] == [4, 4, 4, 4, 3]
    assert [[(p.url, p.start, p.stop) for p in s.pieces] for s in shards[:2]] == [
        [("f0.parquet", 0, 4)],
        [("f0.parquet", 4, 5), ("f2.parquet", 0, 2), ("f3.parquet", 0, 1)],
    ]
    positions = [
        r for s in shards for p in s.pieces for r in range(p.first_row, p.first_row + p.rows)
    ]
    assert positions == list(range(19))
    assert [s.index for s in shards] == [0, 1, 2, 3, 4]
    assert len(plan_shards(_input(3), shard_rows=1_000_000)) == 1


def test_check_rows_refuses_what_the_service_refuses(churn: Prepared) -> None:
    """Text in a numeric column, a number that is not finite, a category too long or not a
    scalar, a text feature that is not text: each refused row gets its first reason; the rest
    are typed as the service types them (numbers float64), missing and unseen values counted."""
    schema = churn.schema
    frame = churn.holdout[schema.features].head(8).reset_index(drop=True)
    frame = frame.astype({"monthly_charges": object, "contract": object, "region": object})
    frame.loc[0, "monthly_charges"] = "abc"
    frame.loc[1, "monthly_charges"] = "12.5"  # a number as text: read as the number
    frame.loc[2, "tenure_months"] = np.inf
    frame.loc[3, "contract"] = "x" * 21
    frame.at[4, "contract"] = {"plan": 2}
    frame.loc[5, "contract"] = "never-seen"
    frame.loc[6, "contract"] = None
    frame.loc[0, "region"] = "x" * 30  # a second problem of row 0: its first reason stays
    serving = ServingSettings(max_string_length=20)
    checked = check_rows(frame, schema, serving)
    assert checked.valid.tolist() == [False, True, False, False, False, True, True, True]
    assert checked.reasons[0] == "monthly_charges: 'abc' is not a number"
    assert checked.reasons[2] == "tenure_months: inf is not a finite number"
    assert (
        checked.reasons[3] == "contract: 21 characters, more than [serving] max_string_length = 20"
    )
    assert checked.reasons[4] == "contract: {'plan': 2} is neither text nor a number"
    assert len(checked.frame) == 4
    assert checked.frame["monthly_charges"].dtype == np.float64
    assert checked.frame["monthly_charges"].iloc[0] == 12.5
    assert checked.unknown == 1  # "never-seen"
    assert checked.missing >= 1  # the missing contract (and any missing in the sample)


def test_check_rows_text_features() -> None:
    """A text feature must be text (or missing) no longer than [serving] max_text_length."""
    from flowship.schema import Schema

    schema = Schema(
        task="binary", target="y", numeric=[], categorical=[], classes=[0, 1], categories={},
        numeric_ranges={}, text=["review"],
    )  # fmt: skip
    frame = pd.DataFrame({"review": ["fine", 5, None, "x" * 11]}, dtype=object)
    checked = check_rows(frame, schema, ServingSettings(max_text_length=10))
    assert checked.valid.tolist() == [True, False, True, False]
    assert checked.reasons[1] == "review: 5 is not text"
    assert checked.reasons[3].startswith("review: 11 characters, more than")
    assert checked.missing == 1


def _parquet(path: Path, frame: pd.DataFrame) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


def test_describe_input_checks_every_file(churn: Prepared, tmp_path: Path) -> None:
    """Every file must hold the model's features (the missing ones are named); the id column
    is kept when every file has it; an input without rows, a sample or nothing is refused."""
    schema = churn.schema
    table = generate_churn(30, seed=1)
    _parquet(tmp_path / "a.parquet", table.iloc[:20])
    _parquet(tmp_path / "b.parquet", table.iloc[20:])
    described = describe_input(str(tmp_path / "*.parquet"), schema)
    assert [f.rows for f in described.files] == [20, 10] and described.rows == 30
    assert described.id_column == "customer_id"
    _parquet(tmp_path / "c.parquet", table.drop(columns=["customer_id"]).iloc[:3])
    assert describe_input(str(tmp_path / "*.parquet"), schema).id_column is None
    _parquet(tmp_path / "d.parquet", table.drop(columns=["region", "age"]))
    with pytest.raises(
        DataValidationError, match=r"d.parquet lacks column\(s\) \['age', 'region'\]"
    ):
        describe_input(str(tmp_path / "*.parquet"), schema)
    empty = _parquet(tmp_path / "empty.parquet", table.iloc[:0])
    with pytest.raises(DataValidationError, match="has no rows: nothing to score"):
        describe_input(empty, schema)
    with pytest.raises(DataValidationError, match="generated table, not a file"):
        describe_input("sample:churn?rows=10", schema)
    with pytest.raises(DataValidationError, match="no input: give --input"):
        describe_input("", schema)
    with pytest.raises(DataValidationError, match=r"no file matches --input = '.*\*\.csv'"):
        describe_input(str(tmp_path / "*.csv"), schema)


def test_prepare_output_refuses_an_existing_output(tmp_path: Path) -> None:
    """An output that exists is refused unless overwritten; {date} and {run_id} are filled in;
    the staging prefixes sit beside the output, hidden."""
    (tmp_path / "taken").mkdir()
    with pytest.raises(ScoreError, match="exists: pass --overwrite True"):
        prepare_output(str(tmp_path / "taken"), "7", overwrite=False)
    assert prepare_output(str(tmp_path / "taken"), "7", overwrite=True).output.endswith("taken")
    target = prepare_output(str(tmp_path / "s/{date}/{run_id}"), "42", False, log_dir="logs")
    assert target.output.endswith("/42") and "/s/20" in target.output
    assert target.staging == str(Path(target.output).parent / ".42.staging-42")
    assert target.log_dir == str(Path("logs").resolve())
    with pytest.raises(ScoreError, match="no output"):
        prepare_output("", "7", overwrite=False)


@pytest.fixture(scope="module")
def fitted(churn: Prepared):
    spec = CandidateSpec(name="lr", family="logreg", estimator="logistic_regression", params={})
    pipe = build_pipeline(spec, churn.schema, seed=0)
    return pipe.fit(
        churn.train[churn.schema.features], label_array(churn.train[churn.schema.target])
    )


def _score_all(tmp_path, churn, fitted, monkeypatch, frame, settings, log=False, output="out"):
    """Plan, score and publish a table the way ScoreFlow's steps do, in this process (the
    model given, not read from a run)."""
    monkeypatch.setattr(score, "load_model", lambda run: fitted)
    frame.to_csv(tmp_path / "in.csv", index=False)  # CSV: a column may mix numbers and text
    model = ScoringModel("TrainFlow/1", "TrainFlow/1", "v1", churn.schema)
    source = describe_input(str(tmp_path / "in.csv"), churn.schema)
    log_dir = str(tmp_path / "log") if log else None
    target = prepare_output(str(tmp_path / output), "9", True, log_dir, request_rows=40)
    shards = plan_shards(source, settings.shard_rows)
    serving = ServingSettings()
    results = [
        score_shard(s, model, source, target, serving, settings, "ScoreFlow/9") for s in shards
    ]
    return source, shards, results, model, target


def test_score_and_publish_in_input_order(churn, fitted, tmp_path, monkeypatch) -> None:
    """Shards scored with the model's own arithmetic (bit for bit its predict_proba), published
    whole: one row per input row in order, ids kept, refused rows in _rejects/ with the reason,
    a manifest naming the model and the runs, and the batch in the prediction log."""
    frame = generate_churn(300, seed=4).astype({"monthly_charges": object})
    frame.loc[17, "monthly_charges"] = "cheap"
    settings = ScoreSettings(shard_rows=70, max_reject_share=0.01)
    args = _score_all(tmp_path, churn, fitted, monkeypatch, frame, settings, log=True)
    summary = publish_scores(*args, settings, "ScoreFlow/9")
    out = pd.read_parquet(tmp_path / "out")
    kept = frame.drop(index=17)
    assert out["row"].tolist() == kept.index.tolist()
    assert out["customer_id"].tolist() == kept["customer_id"].tolist()
    features = kept[churn.schema.features].astype({"monthly_charges": float})
    got = out[["proba_0", "proba_1"]].to_numpy()
    np.testing.assert_allclose(got, fitted.predict_proba(features), rtol=1e-12, atol=1e-15)
    rejects = pd.read_parquet(tmp_path / "out" / "_rejects")
    assert rejects.to_dict("records") == [
        {"row": 17, "customer_id": frame.loc[17, "customer_id"],
         "reason": "monthly_charges: 'cheap' is not a number"}
    ]  # fmt: skip
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["rows"] == 300 and manifest["scored"] == 299 and manifest["rejected"] == 1
    assert manifest["model_run"] == "TrainFlow/1" and manifest["scoring_run"] == "ScoreFlow/9"
    meta = json.loads(pq.read_schema(tmp_path / "out" / "part-00000.parquet").metadata[b"flowship"])
    assert meta["verdict"] == "v1"
    assert summary.shards == 5 and summary.scored == 299 and summary.rejected == 1
    assert sum(summary.labels.values()) == 299 and summary.scores
    assert not list(tmp_path.glob(".out.*"))  # nothing staged is left
    log = scan_prediction_log(tmp_path / "log").frame
    assert len(log) == 299 and set(log["run"]) == {"TrainFlow/1"}
    merged = out.merge(log, left_on=["request_id", "request_row"], right_on=["request_id", "row"])
    assert len(merged) == 299
    assert np.array_equal(merged["proba_1_x"].to_numpy(), merged["proba_1_y"].to_numpy())
    # the same rows in other shards (one shard of all rows): the same bits
    other = ScoreSettings(shard_rows=1000, max_reject_share=0.01)
    args = _score_all(tmp_path, churn, fitted, monkeypatch, frame, other, output="again")
    publish_scores(*args, other, "ScoreFlow/9")
    assert np.array_equal(pd.read_parquet(tmp_path / "again")[["proba_0", "proba_1"]], got)


def test_too_many_refused_rows_publish_nothing(churn, fitted, tmp_path, monkeypatch) -> None:
    """Past [score] max_reject_share the run fails naming examples, and nothing is published
    or left staged; a shard that alone passes the limit fails at once."""
    frame = generate_churn(100, seed=5).astype({"age": object})
    frame.loc[[3, 60], "age"] = "old"
    settings = ScoreSettings(shard_rows=50, max_reject_share=0.015)
    args = _score_all(tmp_path, churn, fitted, monkeypatch, frame, settings)
    with pytest.raises(ScoreError, match=r"2 of the input's 100 rows \(2.00%\) cannot be scored"):
        publish_scores(*args, settings, "ScoreFlow/9")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    with pytest.raises(ScoreError, match="row 3: age: 'old' is not a number"):
        _score_all(
            tmp_path,
            churn,
            fitted,
            monkeypatch,
            frame,
            ScoreSettings(shard_rows=50, max_reject_share=0.0),
        )


def test_publish_checks_every_part(churn, fitted, tmp_path, monkeypatch) -> None:
    """A staged part that is missing, or a shard reported twice, stops the publication; an
    output that appeared meanwhile is kept unless overwriting."""
    settings = ScoreSettings(shard_rows=40)
    source, shards, results, model, target = _score_all(
        tmp_path, churn, fitted, monkeypatch, generate_churn(100, seed=6), settings
    )
    with pytest.raises(ScoreError, match="the shards reported are"):
        publish_scores(source, shards, [*results, results[0]], model, target, settings, "S/9")
    (Path(target.staging) / "part-00001.parquet").unlink()
    with pytest.raises(ScoreError, match=r"missing: \['part-00001.parquet'\]"):
        publish_scores(source, shards, results, model, target, settings, "S/9")
    assert not Path(target.output).exists()

    source, shards, results, model, target = _score_all(
        tmp_path, churn, fitted, monkeypatch, generate_churn(100, seed=6), settings
    )
    Path(target.output).mkdir()
    (Path(target.output) / "keep.txt").write_text("someone else's")
    appeared = type(target)(**{**target.__dict__, "overwrite": False})
    with pytest.raises(ScoreError, match="appeared while this run was scoring"):
        publish_scores(source, shards, results, model, appeared, settings, "S/9")
    assert (Path(target.output) / "keep.txt").exists()
    publish_scores(source, shards, results, model, target, settings, "S/9")
    assert sorted(p.name for p in Path(target.output).iterdir()) == [
        "_manifest.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]  # fmt: skip


def test_a_shard_of_refused_rows_keeps_the_dataset_readable(
    churn, fitted, tmp_path, monkeypatch
) -> None:
    """A shard whose every row was refused (within the allowed share) writes an empty part
    typed like the others: the published dataset reads as one table."""
    frame = generate_churn(100, seed=7).astype({"age": object})
    frame.loc[:9, "age"] = "n.a."
    settings = ScoreSettings(shard_rows=10, max_reject_share=0.1)
    args = _score_all(tmp_path, churn, fitted, monkeypatch, frame, settings)
    summary = publish_scores(*args, settings, "ScoreFlow/9")
    assert (summary.scored, summary.rejected) == (90, 10)
    out = pd.read_parquet(tmp_path / "out")
    assert out["row"].tolist() == list(range(10, 100)) and out["prediction"].dtype == "int64"
