"""Explanations: additive to 1e-6 for every kind of estimator, equal to exact Shapley values,
summed back to the original features."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from flowship.config import TextSettings, load_settings
from flowship.explain import RowExplainer, background_sample, feature_blocks, global_importance
from flowship.sample_data import sample_table
from flowship.train import CandidateSpec, build_pipeline, label_array
from tests.helpers import small_config
from tests.unit.conftest import Prepared, prepare


def _fitted(prepared: Prepared, estimator: str, **params: object):
    spec = CandidateSpec(name=estimator, family=estimator, estimator=estimator, params=params)
    text = TextSettings(max_features=300, min_df=1) if prepared.schema.text else None
    pipeline = build_pipeline(spec, prepared.schema, seed=0, text=text)
    schema = prepared.schema
    pipeline.fit(prepared.train[schema.features], label_array(prepared.train[schema.target]))
    return pipeline


def _prepared(table: str, rows: int = 600) -> Prepared:
    sample = sample_table(table)
    settings = load_settings(
        small_config(
            data={
                "source": f"sample:{table}?rows={rows}&seed=3",
                "target": sample.target,
                "id_column": sample.id_column,
            },
            training={"metric": ""},
            gate={"min_metrics": {}},
        )
    )
    return prepare(sample.generate(rows, 3, "baseline"), settings)


@pytest.fixture(scope="module")
def delivery() -> Prepared:
    return _prepared("delivery")


@pytest.fixture(scope="module")
def reviews() -> Prepared:
    return _prepared("reviews")


def _explain(prepared: Prepared, pipeline, rows: int = 8, max_evals: int = 1024):
    background = background_sample(prepared.train, prepared.schema, 30, seed=0)
    explainer = RowExplainer(pipeline, prepared.schema, background, max_evals)
    frame = prepared.holdout.iloc[:rows]
    return explainer, explainer.explain(frame), frame


def _assert_additive(prepared: Prepared, pipeline, explanations, frame) -> None:
    """base + contributions = the explained output, which is what the pipeline outputs."""
    schema = prepared.schema
    outputs = schema.kind.outputs(pipeline, frame[schema.features])
    for i, e in enumerate(explanations):
        assert set(e.contributions) == set(schema.features)
        assert abs(e.base_value + sum(e.contributions.values()) - e.output) <= 1e-6
        if schema.kind.classifies:
            column = list(schema.classes).index(e.label)
            assert e.output == pytest.approx(outputs[i, column], abs=1e-12)
        else:
            assert e.label is None and e.output == pytest.approx(outputs[i], abs=1e-9)


def test_a_tree_model_is_explained_by_shap_tree_explainer(churn: Prepared) -> None:
    """A random forest (binary): TreeExplainer, additive, explaining P(positive class)."""
    pipeline = _fitted(churn, "random_forest", n_estimators=30)
    explainer, explanations, frame = _explain(churn, pipeline)
    assert explainer.method == "tree" and {e.method for e in explanations} == {"tree"}
    _assert_additive(churn, pipeline, explanations, frame)
    assert {e.label for e in explanations} == {churn.schema.positive}


def test_gradient_boosting_is_additive_whichever_explainer_holds(
    churn: Prepared, delivery: Prepared
) -> None:
    """shap reads scikit-learn's gradient boosting only approximately on some rows (up to
    1e-3 in probability here): those rows get the exact model-agnostic values instead, so
    every answer adds up."""
    for prepared in (churn, delivery):
        pipeline = _fitted(prepared, "hist_gradient_boosting", max_iter=30)
        _, explanations, frame = _explain(prepared, pipeline)
        _assert_additive(prepared, pipeline, explanations, frame)


def test_a_linear_regressor_is_explained_by_shap_linear_explainer(delivery: Prepared) -> None:
    pipeline = _fitted(delivery, "ridge")
    explainer, explanations, frame = _explain(delivery, pipeline)
    assert explainer.method == "linear"
    _assert_additive(delivery, pipeline, explanations, frame)


def test_a_logistic_regression_is_explained_exactly_on_the_probability(churn: Prepared) -> None:
    """A linear classifier's probability is not linear: model-agnostic, exact, additive."""
    pipeline = _fitted(churn, "logistic_regression")
    explainer, explanations, frame = _explain(churn, pipeline)
    assert explainer.method == "exact"
    _assert_additive(churn, pipeline, explanations, frame)


def test_any_other_estimator_is_explained_model_agnostically(churn: Prepared) -> None:
    """A plug-in estimator shap knows nothing of (k nearest neighbours)."""
    pipeline = _fitted(churn, "sklearn.neighbors:KNeighborsClassifier")
    explainer, explanations, frame = _explain(churn, pipeline, rows=3)
    assert explainer.method == "exact"
    _assert_additive(churn, pipeline, explanations, frame)


def test_a_small_budget_samples_permutations_and_stays_additive(churn: Prepared) -> None:
    """Past the budget (2^10 coalitions > 64) permutations are sampled: still additive, and
    close to the exact values."""
    pipeline = _fitted(churn, "logistic_regression")
    _, exact, frame = _explain(churn, pipeline, rows=3)
    _, sampled, _ = _explain(churn, pipeline, rows=3, max_evals=64)
    assert {e.method for e in sampled} == {"permutation"}
    _assert_additive(churn, pipeline, sampled, frame)
    for a, b in zip(exact, sampled, strict=True):
        biggest = max(a.contributions, key=lambda f: abs(a.contributions[f]))
        assert math.copysign(1, a.contributions[biggest]) == math.copysign(
            1, b.contributions[biggest]
        )


def test_exact_values_match_the_shapley_formula(churn: Prepared) -> None:
    """An independent brute-force Shapley computation over the original features (each
    coalition's value: the average output with the other features taken from the background
    rows) gives the same contributions."""
    pipeline = _fitted(churn, "logistic_regression")
    schema = churn.schema
    background = background_sample(churn.train, schema, 10, seed=0)
    row = churn.holdout.iloc[[0]][schema.features]
    features = schema.features
    m = len(features)

    def value(coalition: tuple[str, ...]) -> float:
        mixed = background.copy()
        for f in coalition:
            mixed[f] = [row[f].iloc[0]] * len(mixed)
        return float(pipeline.predict_proba(mixed)[:, 1].mean())

    cache = {c: value(c) for k in range(m + 1) for c in itertools.combinations(features, k)}
    expected = {}
    for f in features:
        others = [g for g in features if g != f]
        total = 0.0
        for k in range(m):
            weight = math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
            for c in itertools.combinations(others, k):
                with_f = tuple(g for g in features if g in c or g == f)
                total += weight * (cache[with_f] - cache[c])
        expected[f] = total
    (got,) = RowExplainer(pipeline, schema, background).explain(row)
    assert got.base_value == pytest.approx(cache[()], abs=1e-9)
    for f in features:
        assert got.contributions[f] == pytest.approx(expected[f], abs=1e-9), f


def test_text_and_multiclass(reviews: Prepared) -> None:
    """Sparse TF-IDF (logistic regression): a text column is one feature; multiclass explains
    the predicted class's probability."""
    pipeline = _fitted(reviews, "logistic_regression")
    _, explanations, frame = _explain(reviews, pipeline, rows=5)
    _assert_additive(reviews, pipeline, explanations, frame)
    predicted = pipeline.predict(frame[reviews.schema.features])
    assert [e.label for e in explanations] == list(predicted)
    assert reviews.schema.text[0] in explanations[0].contributions


def test_feature_blocks_cover_every_preprocessed_column_once(churn: Prepared) -> None:
    pipeline = _fitted(churn, "logistic_regression")
    blocks = feature_blocks(pipeline.named_steps["preprocess"], churn.schema)
    columns = np.concatenate(blocks)
    width = pipeline.named_steps["preprocess"].transform(churn.holdout.iloc[:1]).shape[1]
    assert len(blocks) == len(churn.schema.features)
    assert sorted(columns.tolist()) == list(range(width))


def test_global_importance_is_the_mean_absolute_contribution(churn: Prepared) -> None:
    pipeline = _fitted(churn, "logistic_regression")
    _, explanations, _ = _explain(churn, pipeline, rows=4)
    table = global_importance(explanations)
    first = table.iloc[0]
    expected = np.mean([abs(e.contributions[first.feature]) for e in explanations])
    assert first.mean_abs_shap == pytest.approx(expected)
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert global_importance([]).empty


def test_an_empty_background_is_refused(churn: Prepared) -> None:
    pipeline = _fitted(churn, "logistic_regression")
    with pytest.raises(ValueError, match="no rows"):
        RowExplainer(pipeline, churn.schema, pd.DataFrame(columns=churn.schema.features))
