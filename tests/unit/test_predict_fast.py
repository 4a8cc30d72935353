"""The NumPy fast path gives the pipeline's own probabilities, or declines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flowship.predict import FastPredictor, predict_frame, predict_rows, probe_rows
from flowship.schema import category_text
from flowship.train import CandidateSpec, build_pipeline, label_array
from tests.unit.conftest import Prepared


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


@pytest.mark.parametrize(
    "estimator",
    ["logistic_regression", "hist_gradient_boosting", "random_forest", "extra_trees"],
)
def test_fast_path_equals_the_pipeline(churn: Prepared, estimator: str) -> None:
    """For every allowed estimator, with missing values and unknown categories, the fast path
    returns exactly the pipeline's predict_proba."""
    params = {"n_estimators": 20} if estimator in {"random_forest", "extra_trees"} else {}
    spec = CandidateSpec(name=estimator, family=estimator, estimator=estimator, params=params)
    pipe = build_pipeline(spec, churn.schema, seed=0)
    pipe.fit(churn.train[churn.schema.features], label_array(churn.train[churn.schema.target]))
    fast = FastPredictor.build(pipe, churn.schema, probe_rows(churn.schema))
    assert fast is not None
    rows = _records(churn.holdout[churn.schema.features].astype(object).head(60))
    rows[0] = {**rows[0], "region": "atlantis", "tenure_months": None, "contract": None}
    got = predict_rows(pipe, churn.schema, rows, fast)
    want = predict_rows(pipe, churn.schema, rows)
    np.testing.assert_allclose(got.probabilities, want.probabilities, rtol=1e-12, atol=1e-12)
    assert got.labels == want.labels


def test_fast_path_declines_an_unknown_layout(churn: Prepared) -> None:
    """A pipeline it does not understand gets no fast path (the service then uses the pipeline)."""

    class Opaque:
        def __init__(self) -> None:
            self.named_steps = {"preprocess": object(), "model": object()}

        def predict_proba(self, frame):
            return np.zeros((len(frame), 2))

    assert FastPredictor.build(Opaque(), churn.schema, probe_rows(churn.schema)) is None


def _fitted(churn: Prepared, estimator: str):
    params = {"max_iter": 20} if estimator == "hist_gradient_boosting" else {}
    spec = CandidateSpec(name=estimator, family=estimator, estimator=estimator, params=params)
    pipe = build_pipeline(spec, churn.schema, seed=0)
    return pipe.fit(
        churn.train[churn.schema.features], label_array(churn.train[churn.schema.target])
    )


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting"])
def test_frame_path_is_bit_for_bit_the_row_path(churn: Prepared, estimator: str) -> None:
    """A frame of rows (numbers as float64 with NaN, categories as text, categorical dtype or
    numbers) gives exactly the feature matrix and outputs the service's per-row path gives
    the same rows as records: missing values, unseen categories, a category sent as a number."""
    schema = churn.schema
    pipe = _fitted(churn, estimator)
    fast = FastPredictor.build(pipe, schema, probe_rows(schema))
    assert fast is not None
    frame = churn.holdout[schema.features].head(64).reset_index(drop=True)
    frame = frame.astype({c: "float64" for c in schema.numeric})
    frame.loc[0, "tenure_months"] = np.nan
    frame["contract"] = frame["contract"].astype(object)
    frame.loc[1, "contract"] = None
    frame.loc[2, "contract"] = "never-seen"
    frame["num_products"] = frame["num_products"].round()  # numbers, not categories, here
    frame["region"] = frame["region"].astype("category")  # as a dictionary column reads
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict(orient="records")
    ]
    assert np.array_equal(fast._frame_features(frame), fast._features(rows))
    assert np.array_equal(fast.frame_outputs(frame), fast.outputs(rows))
    plain = frame.astype({"region": object})
    assert np.array_equal(fast._frame_features(plain), fast._features(rows))
    np.testing.assert_allclose(
        predict_frame(pipe, schema, frame, fast), predict_frame(pipe, schema, frame), rtol=1e-12
    )


def test_frame_path_reads_numbers_and_booleans_as_their_category_text(churn: Prepared) -> None:
    """A category column of numbers (5, 5.0) or of objects mixing True and 1 is looked up by
    each value's category text, as the per-row path looks up each value."""
    from flowship.predict import category_codes

    codes, values = category_codes(pd.Series([True, 1, 1.0, None, "1"], dtype=object))
    assert [category_text(values[c]) if c >= 0 else None for c in codes] == [
        "True", "1", "1", None, "1"
    ]  # fmt: skip
    codes, values = category_codes(pd.Series([5.0, np.nan, 5.0, 2.0]))
    assert codes.tolist()[1] == -1 and [category_text(v) for v in values] == ["5", "2"]


def test_frame_pipeline_path_equals_the_row_pipeline_path(churn: Prepared) -> None:
    """Without a fast path (as for text models), a frame goes through the pipeline as the
    service's records do: the same outputs, bit for bit."""
    schema = churn.schema
    pipe = _fitted(churn, "logistic_regression")
    frame = churn.holdout[schema.features].head(40).reset_index(drop=True)
    frame = frame.astype({c: "float64" for c in schema.numeric})
    rows = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict(orient="records")
    ]
    want = np.asarray(predict_rows(pipe, schema, rows).probabilities)
    assert np.array_equal(predict_frame(pipe, schema, frame), want)
