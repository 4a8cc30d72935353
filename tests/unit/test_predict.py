"""The request schema, rows to predictions, the prediction log and the micro-batcher."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.pipeline import Pipeline

from flowship.predict import (
    Job,
    MicroBatcher,
    PredictionLog,
    Predictions,
    predict_rows,
    read_prediction_log,
    row_model,
    split_results,
    unknown_categories,
)
from flowship.schema import Schema
from flowship.train import CandidateSpec, build_pipeline, label_array
from tests.unit.conftest import Prepared

LOGREG = CandidateSpec(name="logreg", family="logreg", estimator="logistic_regression")
# 2023-11-14T22:13:20Z: requests below are stamped from here on, a second apart.
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def model(churn: Prepared) -> Pipeline:
    """A logistic regression pipeline fitted on the churn training part."""
    schema = churn.schema
    pipeline = build_pipeline(LOGREG, schema, seed=0)
    return pipeline.fit(churn.train[schema.features], label_array(churn.train[schema.target]))


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: plain values, `None` for missing, categories as str."""
    values = frame[columns].astype(object)
    return values.where(values.notna(), None).to_dict("records")


def _record(schema: Schema, **values: Any) -> dict[str, Any]:
    """One complete, valid request row (every feature set), with `values` replaced."""
    row: dict[str, Any] = {column: 10.0 for column in schema.numeric}
    row |= {column: schema.categories[column][0] for column in schema.categorical}
    return row | values


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple, str]]:
    return [(error["loc"], error["type"]) for error in exc.value.errors()]


# row_model


def test_row_model_accepts_a_full_record(churn: Prepared) -> None:
    """A record with every feature validates; ints become floats and the id defaults to None."""
    Row = row_model(churn.schema, 1000)
    row = Row.model_validate(_record(churn.schema, age=42, region="north"))
    assert row.model_dump() == {
        **_record(churn.schema, age=42.0, region="north"),
        "customer_id": None,
    }
    assert isinstance(row.age, float)


def test_row_model_requires_every_feature(churn: Prepared) -> None:
    """Leaving out any feature is refused, naming that feature."""
    Row = row_model(churn.schema, 1000)
    for feature in churn.schema.features:
        record = _record(churn.schema)
        del record[feature]
        with pytest.raises(ValidationError, match=rf"{feature}\n  Field required") as exc:
            Row.model_validate(record)
        assert _errors(exc) == [((feature,), "missing")]


def test_row_model_allows_null_features(churn: Prepared) -> None:
    """`null` is how a client says a numeric or categorical value is missing."""
    Row = row_model(churn.schema, 1000)
    record = {feature: None for feature in churn.schema.features}
    assert Row.model_validate_json(json.dumps(record)).model_dump() == {
        **record,
        "customer_id": None,
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('"12"', "float_type"),
        ("true", "float_type"),
        ("[12]", "float_type"),
        ("NaN", "finite_number"),
        ("Infinity", "finite_number"),
        ("-Infinity", "finite_number"),
        ("1e400", "finite_number"),
    ],
)
def test_row_model_numeric_must_be_a_finite_json_number(
    churn: Prepared, text: str, error: str
) -> None:
    """Strings, booleans and non-finite numbers are refused for a numeric feature."""
    Row = row_model(churn.schema, 1000)
    body = json.dumps(_record(churn.schema, age=0))[:-1] + f', "age": {text}}}'
    with pytest.raises(ValidationError) as exc:
        Row.model_validate_json(body)
    assert _errors(exc) == [(("age",), error)]


def test_row_model_numeric_accepts_ints_and_refuses_python_inf_nan(churn: Prepared) -> None:
    """A JSON int is a number; float('inf') and float('nan') from Python are refused too."""
    Row = row_model(churn.schema, 1000)
    body = json.dumps(_record(churn.schema, support_calls=3))
    assert Row.model_validate_json(body).support_calls == 3.0
    for value in (float("inf"), float("nan")):
        with pytest.raises(ValidationError, match="Input should be a finite number") as exc:
            Row.model_validate(_record(churn.schema, support_calls=value))
        assert _errors(exc) == [(("support_calls",), "finite_number")]


def test_row_model_category_is_a_label(churn: Prepared) -> None:
    """A category may be a string or a number (a code, a rating: it matches as its category
    text, so 3 and 3.0 are one category); an object is refused; an unseen one is accepted."""
    from flowship.schema import category_text

    Row = row_model(churn.schema, 1000)
    assert Row.model_validate_json(json.dumps(_record(churn.schema, region=3))).region == 3
    assert category_text(3) == category_text(3.0) == "3"
    with pytest.raises(ValidationError) as exc:
        Row.model_validate_json(json.dumps(_record(churn.schema, region={"a": 1})))
    assert {error[0][0] for error in _errors(exc)} == {"region"}
    assert Row.model_validate(_record(churn.schema, region="atlantis")).region == "atlantis"


def test_row_model_refuses_unknown_keys(churn: Prepared) -> None:
    """A key that is not a feature (a typo, the target) is refused, naming it."""
    Row = row_model(churn.schema, 1000)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted") as exc:
        Row.model_validate(_record(churn.schema, agee=30.0, churned=1))
    assert sorted(_errors(exc)) == [
        (("agee",), "extra_forbidden"),
        (("churned",), "extra_forbidden"),
    ]


def test_row_model_id_column_is_optional(churn: Prepared) -> None:
    """The id may be a string, an int or absent; without an id column it is an unknown key."""
    Row = row_model(churn.schema, 1000)
    assert Row.model_validate(_record(churn.schema, customer_id="C7")).customer_id == "C7"
    assert Row.model_validate(_record(churn.schema, customer_id=7)).customer_id == 7
    assert Row.model_validate(_record(churn.schema)).customer_id is None

    NoId = row_model(churn.schema.model_copy(update={"id_column": None}), 1000)
    with pytest.raises(ValidationError) as exc:
        NoId.model_validate(_record(churn.schema, customer_id="C7"))
    assert _errors(exc) == [(("customer_id",), "extra_forbidden")]


def test_row_model_text_is_a_string_up_to_max_text_length() -> None:
    """A text feature takes a string of up to `max_text_length` characters (its own limit,
    not the categories' `max_string_length`) or null; a longer one, or a number, is refused
    naming the field (the 400 of /predict); the API documents the limit and training's
    lengths."""
    schema = Schema(
        task="binary", target="y", numeric=["stars"], categorical=[], classes=[0, 1],
        categories={}, numeric_ranges={"stars": (1.0, 5.0)}, text=["review"],
        text_lengths={"review": (3, 40)},
    )  # fmt: skip
    Row = row_model(schema, max_string_length=5, max_text_length=10)
    assert Row.model_validate_json('{"stars": 4, "review": "ten chars!"}').review == "ten chars!"
    assert Row.model_validate_json('{"stars": 4, "review": null}').review is None
    for review, error in (('"eleven char"', "string_too_long"), ("5", "string_type")):
        with pytest.raises(ValidationError) as refused:
            Row.model_validate_json(f'{{"stars": 4, "review": {review}}}')
        assert _errors(refused) == [(("review",), error)]
    with pytest.raises(ValidationError, match="at most 10 characters"):
        Row.model_validate_json('{"stars": 4, "review": "eleven char"}')
    documented = Row.model_json_schema()["properties"]["review"]
    assert documented["anyOf"] == [{"type": "string", "maxLength": 10}, {"type": "null"}]
    assert documented["description"] == "free text; 3 to 40 characters in training"


def test_row_model_json_schema_documents_training_values(churn: Prepared) -> None:
    """/docs.json lists every feature as required, with its training range or categories."""
    schema = row_model(churn.schema, 1000).model_json_schema()
    assert schema["required"] == churn.schema.features
    assert list(schema["properties"]) == [*churn.schema.features, "customer_id"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert properties["age"]["description"] == "numeric; seen in training: 18 to 88"
    assert properties["total_charges"]["description"] == (
        "numeric; seen in training: 19.72 to 9325.59"
    )
    assert properties["age"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert properties["region"]["description"] == (
        "category; seen in training: east, north, south, west"
    )
    assert properties["region"]["anyOf"] == [
        {"type": "string", "maxLength": 1000},
        {"type": "integer"},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
    for feature in churn.schema.features:
        assert properties[feature]["description"].startswith(("numeric; ", "category; "))
    assert properties["customer_id"]["default"] is None


# predict_rows


def test_predict_rows_matches_the_pipeline(churn: Prepared, model: Pipeline) -> None:
    """Validated request rows get exactly the pipeline's own probabilities and argmax class."""
    schema = churn.schema
    missing = churn.holdout[churn.holdout[schema.numeric].isna().any(axis=1)].head(5)
    frame = pd.concat([churn.holdout.head(25), missing])
    assert frame[schema.numeric].isna().any(axis=None)
    Row = row_model(schema, 1000)
    rows = [
        Row.model_validate(r).model_dump()
        for r in _records(frame, [schema.id_column, *schema.features])
    ]

    result = predict_rows(model, schema, rows)

    expected = model.predict_proba(frame[schema.features])
    assert len(result) == 30
    assert result.classes == ["0", "1"]
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-12, atol=0)
    assert result.labels == expected.argmax(axis=1).tolist()
    assert {type(label) for label in result.labels} == {int}
    assert {type(p) for row in result.probabilities for p in row} == {float}


def test_predict_rows_imputes_missing_values(churn: Prepared, model: Pipeline) -> None:
    """A null numeric is the training median; a null category is its own 'missing' level."""
    schema = churn.schema
    base = _records(churn.holdout.dropna(subset=schema.numeric).head(1), schema.features)[0]
    median = float(churn.train["age"].median())

    null_age, median_age = predict_rows(
        model, schema, [base | {"age": None}, base | {"age": median}]
    ).probabilities
    assert null_age == pytest.approx(median_age, rel=1e-12)

    frame = pd.DataFrame([base | {"contract": np.nan}])[schema.features]
    result = predict_rows(model, schema, [base | {"contract": None}])
    assert result.probabilities[0] == pytest.approx(model.predict_proba(frame)[0].tolist())

    all_null = predict_rows(model, schema, [dict.fromkeys(schema.features)])
    assert all_null.labels[0] in (0, 1)
    assert sum(all_null.probabilities[0]) == pytest.approx(1.0)


def test_predict_rows_accepts_unknown_categories(churn: Prepared, model: Pipeline) -> None:
    """A category never seen in training still gets a prediction, the pipeline's own."""
    schema = churn.schema
    row = _records(churn.holdout.head(1), schema.features)[0] | {"region": "atlantis"}
    result = predict_rows(model, schema, [row])
    expected = model.predict_proba(pd.DataFrame([row])[schema.features])[0]
    assert result.probabilities[0] == pytest.approx(expected.tolist())
    assert result.labels == [int(expected.argmax())]
    assert sum(result.probabilities[0]) == pytest.approx(1.0)


class _FixedModel:
    """Returns fixed probabilities and keeps the frame it was given."""

    def __init__(self, proba: list[list[float]]):
        self.proba = np.array(proba)
        self.frames: list[pd.DataFrame] = []

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        self.frames.append(frame)
        return self.proba


PLAN = Schema(
    task="multiclass",
    target="plan",
    id_column="id",
    numeric=["x", "n"],
    categorical=["colour"],
    classes=["basic", "max", "plus"],
    positive_class=None,
    categories={"colour": ["red"]},
    numeric_ranges={"x": (0.0, 1.0), "n": (0.0, 9.0)},
)


def test_predict_rows_passes_only_features_in_schema_order() -> None:
    """The model sees the features in schema order, numbers as float64, absent keys as NaN;
    classes map by position and are named as strings."""
    model = _FixedModel([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    rows = [{"id": "a", "colour": "red", "n": 3, "x": 0.5}, {"x": None, "n": 4}]

    result = predict_rows(model, PLAN, rows)

    assert result == Predictions(
        labels=["max", "basic"],
        probabilities=[[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]],
        classes=["basic", "max", "plus"],
    )
    (frame,) = model.frames
    assert list(frame.columns) == ["x", "n", "colour"]
    assert frame["x"].dtype == "float64"
    assert frame["n"].dtype == "float64"
    assert frame["n"].tolist() == [3.0, 4.0]
    assert np.isnan(frame.loc[1, "x"])
    assert frame.loc[0, "colour"] == "red"
    assert pd.isna(frame.loc[1, "colour"])


def test_predict_rows_labels_keep_the_class_type() -> None:
    """Boolean classes come back as Python bools, their names as 'False'/'True'."""
    schema = PLAN.model_copy(update={"classes": [False, True], "positive_class": True})
    result = predict_rows(_FixedModel([[0.9, 0.1], [0.2, 0.8]]), schema, [{"x": 1.0}] * 2)
    assert result.labels == [False, True]
    assert [type(label) for label in result.labels] == [bool, bool]
    assert result.classes == ["False", "True"]


def test_predict_rows_without_rows(churn: Prepared) -> None:
    """No rows is no predictions, without calling the model."""
    model = _FixedModel([])
    assert predict_rows(model, churn.schema, []) == Predictions([], [], ["0", "1"])
    assert model.frames == []


def test_predictions_take_slices_rows() -> None:
    """`take` keeps the classes and cuts labels and probabilities alike."""
    result = Predictions(["a", "b", "a"], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], ["a", "b"])
    assert len(result) == 3
    assert result.take(1, 3) == Predictions(["b", "a"], [[0.2, 0.8], [0.6, 0.4]], ["a", "b"])
    assert len(result.take(3, 3)) == 0


# unknown_categories


def test_unknown_categories_counts_unseen_values_per_feature(churn: Prepared) -> None:
    """Only non-null values outside the training categories count; features without any
    are left out."""
    rows = [
        {"region": "atlantis", "contract": "one_year"},
        {"region": None, "contract": "lifetime"},
        {"region": "atlantis", "payment_method": "cash"},
        {"region": "east"},
        {},
    ]
    assert unknown_categories(churn.schema, rows) == {
        "contract": 1,
        "payment_method": 1,
        "region": 2,
    }


def test_unknown_categories_none_for_known_values(churn: Prepared) -> None:
    """Known values and nulls give an empty count."""
    rows = [_record(churn.schema), _record(churn.schema, region=None, contract="two_year")]
    assert unknown_categories(churn.schema, rows) == {}
    assert unknown_categories(churn.schema, []) == {}


# PredictionLog and read_prediction_log


def _predictions(*p1: float) -> Predictions:
    """Binary 0/1 predictions with these probabilities of class 1."""
    return Predictions([int(p > 0.5) for p in p1], [[1 - p, p] for p in p1], ["0", "1"])


def test_prediction_log_round_trip(tmp_path: Path) -> None:
    """After a flush the reader sees every logged row, with its request, features and
    probabilities, even while the file is still open."""
    log = PredictionLog(tmp_path / "predictions", "churn:abc123", 64, run="TrainFlow/7")
    log.write(
        "req-1",
        [{"age": 30.0, "region": "east"}, {"age": None, "region": "atlantis"}],
        _predictions(0.25, 0.75),
        when=T0,
    )
    log.write("req-2", [{"age": 61.0, "region": None}], _predictions(0.5), when=T0 + 1.5)
    log.flush()

    frame = read_prediction_log(tmp_path / "predictions")
    log.close()

    assert list(frame.columns) == [
        "ts",
        "request_id",
        "row",
        "model_version",
        "run",
        "answered_by",
        "prediction",
        "age",
        "region",
        "proba_0",
        "proba_1",
    ]
    assert frame["ts"].tolist() == [
        pd.Timestamp("2023-11-14T22:13:20Z"),
        pd.Timestamp("2023-11-14T22:13:20Z"),
        pd.Timestamp("2023-11-14T22:13:21.500Z"),
    ]
    assert frame["request_id"].tolist() == ["req-1", "req-1", "req-2"]
    assert frame["row"].tolist() == [0, 1, 0]
    assert frame["answered_by"].tolist() == ["churn:abc123"] * 3  # no challenger: the model
    assert frame["model_version"].tolist() == ["churn:abc123"] * 3
    assert frame["run"].tolist() == ["TrainFlow/7"] * 3
    assert frame["prediction"].tolist() == [0, 1, 0]
    assert frame["proba_1"].tolist() == [0.25, 0.75, 0.5]
    assert frame["proba_0"].tolist() == [0.75, 0.25, 0.5]
    assert frame["age"].tolist()[::2] == [30.0, 61.0]
    assert np.isnan(frame["age"].iloc[1])
    assert frame["region"].tolist()[:2] == ["east", "atlantis"]
    assert pd.isna(frame["region"].iloc[2])


def test_read_prediction_log_keeps_feature_types(tmp_path: Path) -> None:
    """A request whose only row lacks a value does not turn the column into objects: numbers
    stay float64 with NaN, categories strings with NaN, as the monitor compares them."""
    log = PredictionLog(tmp_path, "v1", 64)
    log.write("nulls", [{"age": None, "region": None}], _predictions(0.2), when=T0)
    log.write("full", [{"age": 30, "region": "east"}], _predictions(0.7), when=T0 + 1)
    log.close()

    frame = read_prediction_log(tmp_path)

    assert frame["age"].dtype == "float64"
    assert frame["age"].tolist()[1:] == [30.0]
    assert np.isnan(frame["age"].iloc[0])
    assert pd.api.types.is_string_dtype(frame["region"])
    assert frame["region"].isna().tolist() == [True, False]
    assert frame["prediction"].tolist() == [0, 1]


def test_prediction_log_writes_one_json_line_per_request(tmp_path: Path) -> None:
    """Each file is named by its start time and process; each line holds one request."""
    log = PredictionLog(tmp_path, "churn:abc123", 64)
    log.write("req-1", [{"age": 30.0}, {"age": None}], _predictions(0.25, 0.75), when=T0)
    log.close()

    (path,) = tmp_path.glob("predictions-*.jsonl")
    stamp, pid = path.stem.removeprefix("predictions-").split("-")
    assert len(stamp) == len("20231114T221320000000Z")
    assert int(pid) > 0
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {
            "ts": "2023-11-14T22:13:20.000+00:00",
            "request_id": "req-1",
            "model_version": "churn:abc123",
            "run": "",
            "classes": ["0", "1"],
            "rows": [{"age": 30.0}, {"age": None}],
            "predictions": [0, 1],
            "probabilities": [[0.75, 0.25], [0.25, 0.75]],
        }
    ]


def test_read_prediction_log_lines_without_run(tmp_path: Path) -> None:
    """Lines logged before the `run` field existed read with an empty run."""
    line = {
        "ts": "2023-11-14T22:13:20.000+00:00",
        "request_id": "old",
        "model_version": "churn:abc123",
        "classes": ["no", "yes"],
        "rows": [{"age": 30.0}],
        "predictions": ["yes"],
        "probabilities": [[0.4, 0.6]],
    }
    (tmp_path / "predictions-20231114T221320000000Z-1.jsonl").write_text(json.dumps(line) + "\n")
    frame = read_prediction_log(tmp_path)
    assert frame.drop(columns="ts").to_dict("records") == [
        {
            "request_id": "old",
            "row": 0,
            "model_version": "churn:abc123",
            "run": "",
            "answered_by": "churn:abc123",
            "prediction": "yes",
            "age": 30.0,
            "proba_no": 0.4,
            "proba_yes": 0.6,
        }
    ]


def test_prediction_log_rotates_by_size(tmp_path: Path) -> None:
    """Past the size limit a new file starts; the reader still returns every row in order."""
    log = PredictionLog(tmp_path, "churn:abc123", rotate_mb=0.0001)  # 104 bytes
    for i in range(6):
        log.write(
            f"req-{i}", [{"age": float(i)}, {"age": 50.0 + i}], _predictions(0.1, 0.9), T0 + i
        )
    log.close()

    files = sorted(tmp_path.glob("predictions-*.jsonl"))
    assert len(files) > 1
    assert sum(len(path.read_text().splitlines()) for path in files) == 6

    frame = read_prediction_log(tmp_path)
    assert frame["request_id"].tolist() == [f"req-{i // 2}" for i in range(12)]
    assert frame["row"].tolist() == [0, 1] * 6
    assert frame["age"].tolist() == [v for i in range(6) for v in (float(i), 50.0 + i)]
    assert frame["prediction"].tolist() == [0, 1] * 6
    assert frame["ts"].is_monotonic_increasing


def test_read_prediction_log_is_oldest_first(tmp_path: Path) -> None:
    """Rows come back by timestamp, whatever order the files and lines were written in."""
    log = PredictionLog(tmp_path, "v1", rotate_mb=0.0001)
    log.write("late", [{"age": 1.0}], _predictions(0.9), when=T0 + 60)
    log.write("early", [{"age": 2.0}], _predictions(0.1), when=T0)
    log.close()
    assert read_prediction_log(tmp_path)["request_id"].tolist() == ["early", "late"]


def test_read_prediction_log_since(tmp_path: Path) -> None:
    """`since` keeps rows logged at or after that moment."""
    log = PredictionLog(tmp_path, "v1", 64)
    for i in range(4):
        log.write(f"req-{i}", [{"age": 1.0}], _predictions(0.1), when=T0 + 10 * i)
    log.close()

    since = datetime.fromtimestamp(T0 + 10, UTC)
    assert read_prediction_log(tmp_path, since=since)["request_id"].tolist() == [
        "req-1",
        "req-2",
        "req-3",
    ]
    later = read_prediction_log(tmp_path, since=datetime(2030, 1, 1, tzinfo=UTC))
    assert later.empty
    assert "proba_1" in later.columns


def test_read_prediction_log_empty(tmp_path: Path) -> None:
    """No log files, or no directory at all, is an empty frame with the log's columns."""
    (tmp_path / "notes.txt").write_text("not a log")
    for directory in (tmp_path, tmp_path / "missing"):
        frame = read_prediction_log(directory)
        assert frame.empty
        assert list(frame.columns) == [
            "ts",
            "request_id",
            "row",
            "model_version",
            "run",
            "answered_by",
            "prediction",
        ]


# MicroBatcher


def _job(request_id: str, rows: int = 1) -> Job:
    return Job(request_id=request_id, rows=[{"i": i} for i in range(rows)], received=T0)


def _run(scenario: Any) -> Any:
    """Run a scenario, failing within seconds (not hanging) if a request is never answered."""
    return asyncio.run(asyncio.wait_for(scenario, timeout=5))


def _echo(batches: list[list[str]]) -> Any:
    """A handle that records each batch's request ids and answers `<id>:<row count>`."""

    def handle(jobs: list[Job]) -> list[str]:
        batches.append([job.request_id for job in jobs])
        time.sleep(0.005)  # a model call takes a while
        return [f"{job.request_id}:{len(job.rows)}" for job in jobs]

    return handle


def test_micro_batcher_serves_concurrent_jobs_in_few_calls() -> None:
    """Twenty concurrent requests share model calls and each gets its own answer back."""
    batches: list[list[str]] = []
    batcher = MicroBatcher(_echo(batches), max_rows=1000)
    jobs = [_job(f"r{i}", rows=1 + i % 3) for i in range(20)]

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(job) for job in jobs))

    results = _run(scenario())

    assert results == [f"r{i}:{1 + i % 3}" for i in range(20)]
    assert len(batches) < len(jobs)
    assert [rid for batch in batches for rid in batch] == [job.request_id for job in jobs]


def test_micro_batcher_answers_a_lone_job_at_once() -> None:
    """A lone request goes out alone; requests that arrive during a model call form the
    next batch together."""
    batches: list[list[str]] = []
    arrivals: list[asyncio.Task[Any]] = []
    echo = _echo(batches)

    def handle(jobs: list[Job]) -> list[str]:
        if not arrivals:  # five requests come in while the first batch runs
            loop = asyncio.get_running_loop()
            arrivals.extend(loop.create_task(batcher.submit(_job(f"r{i}"))) for i in range(5))
        return echo(jobs)

    batcher = MicroBatcher(handle, max_rows=1000)

    async def scenario() -> tuple[Any, list[Any]]:
        first = await batcher.submit(_job("first"))
        return first, await asyncio.gather(*arrivals)

    first, rest = _run(scenario())

    assert first == "first:1"
    assert rest == ["r0:1", "r1:1", "r2:1", "r3:1", "r4:1"]
    assert batches == [["first"], ["r0", "r1", "r2", "r3", "r4"]]


def test_micro_batcher_caps_rows_per_batch() -> None:
    """A batch holds at most `max_rows` rows; a larger request still runs, alone."""
    batches: list[list[str]] = []
    batcher = MicroBatcher(_echo(batches), max_rows=6)
    jobs = [_job("a", 3), _job("b", 3), _job("c", 3), _job("big", 10), _job("d", 1), _job("e", 5)]

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(job) for job in jobs))

    results = _run(scenario())

    assert results == ["a:3", "b:3", "c:3", "big:10", "d:1", "e:5"]
    assert batches == [["a", "b"], ["c"], ["big"], ["d", "e"]]


def test_micro_batcher_raises_a_failed_batch_in_each_waiting_request() -> None:
    """Every request of a failed batch gets the error; other batches and later requests
    are still answered."""
    batches: list[list[str]] = []
    echo = _echo(batches)

    def handle(jobs: list[Job]) -> list[str]:
        answers = echo(jobs)
        if any(job.request_id == "bad" for job in jobs):
            raise RuntimeError("model call failed")
        return answers

    batcher = MicroBatcher(handle, max_rows=2)

    async def scenario(names: list[str]) -> list[Any]:
        jobs = [_job(name) for name in names]
        return await asyncio.gather(*(batcher.submit(j) for j in jobs), return_exceptions=True)

    ok, bad, c, d = _run(scenario(["ok", "bad", "c", "d"]))

    assert isinstance(ok, RuntimeError)
    assert isinstance(bad, RuntimeError)
    assert str(ok) == str(bad) == "model call failed"
    assert (c, d) == ("c:1", "d:1")
    assert _run(scenario(["later"])) == ["later:1"]
    assert batches == [["ok", "bad"], ["c", "d"], ["later"]]


# split_results


def test_split_results_cuts_per_request() -> None:
    """A batch's predictions go back to requests by their row counts, empty ones included."""
    batch = _predictions(0.1, 0.2, 0.6, 0.7, 0.8, 0.9)
    parts = split_results([1, 3, 0, 2], batch)
    assert [part.labels for part in parts] == [[0], [0, 1, 1], [], [1, 1]]
    assert parts[1] == _predictions(0.2, 0.6, 0.7)
    assert parts[3].probabilities == batch.probabilities[4:]
    assert all(part.classes == ["0", "1"] for part in parts)
    assert split_results([], batch) == []
