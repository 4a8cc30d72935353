"""Metrics from probabilities on hand-checked examples, metric direction, importances."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from flowship.evaluate import compute_importances, compute_metrics
from flowship.schema import Schema
from flowship.tasks import TASKS

BINARY = Schema(
    task="binary",
    target="y",
    id_column=None,
    numeric=["noise", "signal"],
    categorical=[],
    classes=[0, 1],
    positive_class=1,
    categories={},
    numeric_ranges={"noise": (-3.0, 3.0), "signal": (-3.0, 3.0)},
)


def _scorer(metric: str):
    """The binary task's scorer of `metric` (higher is better)."""
    return TASKS["binary"].scorer(BINARY, metric)


# Four rows, positive class 1: predictions 0, 1, 0, 1 → one TP, one FP, one FN, one TN.
Y = [0, 0, 1, 1]
PROBA = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]])


def test_binary_metrics_on_a_hand_made_example() -> None:
    """Accuracy, precision, recall, f1, roc_auc and log_loss match hand-worked values."""
    metrics = compute_metrics(Y, PROBA, classes=[0, 1], positive_class=1)
    assert metrics == pytest.approx(
        {
            "accuracy": 0.5,
            "precision": 0.5,
            "recall": 0.5,
            "f1": 0.5,
            # 3 of the 4 (positive, negative) pairs are ordered correctly.
            "roc_auc": 0.75,
            "log_loss": -(math.log(0.9) + math.log(0.4)) / 2,
        }
    )


def test_binary_metrics_follow_the_positive_class() -> None:
    """With positive_class 0, recall counts the 0 rows found; roc_auc is unchanged."""
    y = [0, 0, 0, 1]
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    as_one = compute_metrics(y, proba, classes=[0, 1], positive_class=1)
    as_zero = compute_metrics(y, proba, classes=[0, 1], positive_class=0)
    assert (as_one["precision"], as_one["recall"]) == (0.5, 1.0)
    assert (as_zero["precision"], as_zero["recall"]) == pytest.approx((1.0, 2 / 3))
    assert as_one["roc_auc"] == as_zero["roc_auc"] == 1.0


def test_binary_string_labels_default_to_the_last_class() -> None:
    """Without a positive class the last of the classes is positive."""
    y = pd.Series(["no", "yes", "yes"])
    proba = np.array([[0.8, 0.2], [0.7, 0.3], [0.1, 0.9]])
    metrics = compute_metrics(y, proba, classes=["no", "yes"])
    assert (metrics["precision"], metrics["recall"]) == (1.0, 0.5)


def test_roc_auc_is_nan_with_one_class_present() -> None:
    """roc_auc is undefined (NaN) when the labels hold only one class."""
    metrics = compute_metrics([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]), [0, 1], 1)
    assert math.isnan(metrics["roc_auc"])
    assert metrics["accuracy"] == 0.5


def test_multiclass_metrics_are_macro_averages() -> None:
    """Three classes: f1, precision and recall average the per-class values equally."""
    y = ["a", "b", "c", "a"]
    # Predicted: a, b, b, a → f1 per class: a 1, b 2/3, c 0.
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    metrics = compute_metrics(y, proba, classes=["a", "b", "c"])
    assert metrics["accuracy"] == 0.75
    assert metrics["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert metrics["precision"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["recall"] == pytest.approx((1 + 1 + 0) / 3)
    # One-vs-rest ranks each class's own rows above the others' even where argmax misses c.
    assert metrics["roc_auc"] == 1.0
    swapped = proba[:, [0, 2, 1]]  # b's and c's probabilities traded: b and c rank worse
    assert compute_metrics(y, swapped, classes=["a", "b", "c"])["roc_auc"] < 1.0


def test_shape_mismatch_is_refused() -> None:
    """Probabilities that do not match the labels and classes name both shapes."""
    with pytest.raises(ValueError, match=r"proba has shape \(4, 2\), expected \(3, 2\)"):
        compute_metrics(Y[:3], PROBA, classes=[0, 1])
    with pytest.raises(ValueError, match=r"expected \(4, 3\) for 4 labels and classes \[0, 1, 2\]"):
        compute_metrics(Y, PROBA, classes=[0, 1, 2])


def test_unknown_label_is_refused() -> None:
    """A label outside the classes is named with the classes."""
    with pytest.raises(
        ValueError, match=r"labels \['7'\] are not among the model's classes \[0, 1\]"
    ):
        compute_metrics([0, 7, 1, 1], PROBA, classes=[0, 1])


@pytest.fixture(scope="module")
def signal_and_noise() -> tuple[LogisticRegression, pd.DataFrame, pd.Series]:
    """200 rows where `signal` decides the label and `noise` is unrelated; a fitted model."""
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"noise": rng.normal(size=200), "signal": rng.normal(size=200)})
    y = pd.Series((features["signal"] + 0.3 * rng.normal(size=200) > 0).astype(int))
    return LogisticRegression().fit(features, y), features, y


def test_importances_rank_signal_above_noise(signal_and_noise) -> None:
    """An informative column outranks pure noise, whose importance is about zero."""
    model, features, y = signal_and_noise
    table = compute_importances(model, features, y, _scorer("roc_auc"), seed=0, max_rows=5000)
    assert list(table.columns) == ["feature", "importance", "std"]
    assert table["feature"].tolist() == ["signal", "noise"]
    assert table["importance"].iloc[0] > 0.3
    assert abs(table["importance"].iloc[1]) < 0.02


def test_importances_of_log_loss_point_the_same_way(signal_and_noise) -> None:
    """With log_loss, shuffling the signal still shows as a positive importance."""
    model, features, y = signal_and_noise
    table = compute_importances(
        model, features, y, _scorer("log_loss"), seed=0, max_rows=5000, n_repeats=2
    )
    assert table["feature"].iloc[0] == "signal"
    assert table["importance"].iloc[0] > 0


def test_importances_sample_at_most_max_rows(signal_and_noise) -> None:
    """Above max_rows a seeded sample is used, so one seed gives one table."""
    model, features, y = signal_and_noise
    first = compute_importances(model, features, y, _scorer("accuracy"), seed=3, max_rows=50)
    again = compute_importances(model, features, y, _scorer("accuracy"), seed=3, max_rows=50)
    pd.testing.assert_frame_equal(first, again)
    full = compute_importances(model, features, y, _scorer("accuracy"), seed=3, max_rows=5000)
    assert not first["importance"].equals(full["importance"])


def test_importances_refuse_an_empty_frame(signal_and_noise) -> None:
    """An empty frame has nothing to permute."""
    model, features, y = signal_and_noise
    with pytest.raises(ValueError, match="cannot compute importances on an empty frame"):
        compute_importances(
            model, features.head(0), y.head(0), _scorer("roc_auc"), seed=0, max_rows=5000
        )


def test_one_metric_alone_equals_it_among_all() -> None:
    """`only` computes one metric (the live comparison's bootstrap), the same value."""
    y = [0, 1, 1, 0, 1, 0]
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.9, 0.1], [0.2, 0.8]])
    every = compute_metrics(y, proba, [0, 1])
    for name, value in every.items():
        assert compute_metrics(y, proba, [0, 1], only=name) == {name: value}


# predict latency (the gate's latency checks)


def test_latency_is_measured_on_the_service_path(churn_model) -> None:
    from flowship.evaluate import measure_latency

    model, schema, frame = churn_model
    latency = measure_latency(model, schema, frame, calls=30)
    assert latency.row_calls == latency.batch_calls == 30
    assert 0 < latency.row_median_ms <= latency.row_p99_ms
    assert latency.row_median_ms < latency.batch_median_ms  # 100 rows cost more than 1
    assert "100 rows" in latency.describe()


def test_a_slow_model_is_measured_within_the_time_budget(churn_model) -> None:
    """At least 10 calls, then only as many as fit in the budget."""
    from flowship.evaluate import measure_latency

    model, schema, frame = churn_model
    latency = measure_latency(model, schema, frame, calls=100_000, budget_s=0.05)
    assert 10 <= latency.row_calls < 100_000 and 10 <= latency.batch_calls < 100_000


def test_latency_over_the_limit_warns_unless_it_blocks() -> None:
    from flowship.config import GateSettings
    from flowship.evaluate import Latency, latency_report

    slow = Latency(30.0, 80.0, 40.0, 300.0, 300, 300)
    warned = latency_report(slow, GateSettings(max_latency_ms=50, max_batch_latency_ms=250))
    assert [(c.id, c.status, c.critical) for c in warned.checks] == [
        ("latency.single_row", "warn", False),
        ("latency.batch", "warn", False),
    ]
    blocked = latency_report(slow, GateSettings(max_latency_ms=50, latency_blocks=True))
    assert [c.blocking for c in blocked.checks] == [True, True]
    fast = latency_report(Latency(1.0, 2.0, 3.0, 4.0, 300, 300), GateSettings(latency_blocks=True))
    assert all(c.status == "pass" for c in fast.checks)
    assert fast.checks[0].value == 2.0 and fast.checks[0].threshold == 50.0


@pytest.fixture(scope="module")
def churn_model():
    from flowship.config import load_settings
    from flowship.sample_data import generate_churn
    from flowship.train import CandidateSpec, build_pipeline, label_array
    from tests.helpers import small_config
    from tests.unit.conftest import prepare

    prepared = prepare(generate_churn(400, seed=3), load_settings(small_config()))
    spec = CandidateSpec("lr", "lr", "logistic_regression")
    model = build_pipeline(spec, prepared.schema, seed=0)
    schema = prepared.schema
    model.fit(prepared.train[schema.features], label_array(prepared.train[schema.target]))
    return model, schema, prepared.holdout
