"""The NumPy fast path gives the pipeline's own probabilities, or declines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flowship.predict import FastPredictor, predict_rows, probe_rows
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
