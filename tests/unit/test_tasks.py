"""The tasks: metrics and their directions against scikit-learn, defaults, auto-detection."""

from __future__ import annotations

import evidently.metrics
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from flowship.errors import ConfigError, DataValidationError
from flowship.schema import Schema
from flowship.tasks import METRICS, RANKING_METRICS, TASKS, choose_task, get_metric

REGRESSION = Schema(
    task="regression",
    target="y",
    id_column=None,
    numeric=["x"],
    categorical=[],
    classes=[],
    positive_class=None,
    categories={},
    numeric_ranges={"x": (0.0, 1.0)},
)


def test_every_metric_names_a_real_evidently_metric_and_a_task() -> None:
    for metric in METRICS.values():
        assert hasattr(evidently.metrics, metric.evidently), metric.name
        assert metric.tasks and metric.tasks <= set(TASKS)


def test_directions_scores_and_floors() -> None:
    """Higher is better for roc_auc, f1, accuracy, r2...; errors and losses are lower-better."""
    lower = sorted(n for n, m in METRICS.items() if not m.higher_is_better)
    assert lower == ["log_loss", "mae", "mape", "rmse"]
    assert get_metric("log_loss").score(0.3) == -0.3
    assert get_metric("roc_auc").floor(0.8, 0.05) == pytest.approx(0.75)
    assert get_metric("rmse").floor(3.0, 0.5) == pytest.approx(3.5)
    assert RANKING_METRICS == ("roc_auc", "f1", "accuracy", "log_loss", "rmse", "mae", "r2", "mape")


def test_task_defaults() -> None:
    """roc_auc for binary, macro f1 for multiclass, rmse for regression."""
    assert {n: t.default_metric for n, t in TASKS.items()} == {
        "binary": "roc_auc",
        "multiclass": "f1",
        "regression": "rmse",
    }
    assert TASKS["regression"].metrics == ["rmse", "mae", "r2", "mape"]
    assert "rmse" not in TASKS["binary"].metrics


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(10, 50, 300)
    predicted = y + rng.normal(0, 3, 300)
    values = TASKS["regression"].compute_metrics(pd.Series(y), predicted, REGRESSION)
    assert values["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, predicted)))
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(y, predicted))
    assert values["r2"] == pytest.approx(skm.r2_score(y, predicted))
    assert values["mape"] == pytest.approx(100 * skm.mean_absolute_percentage_error(y, predicted))


def test_regression_baseline_is_the_training_mean() -> None:
    task = TASKS["regression"]
    baseline = task.baseline_outputs(pd.Series([1.0, 2.0, 6.0]), 4, REGRESSION)
    assert baseline.tolist() == [3.0] * 4
    values = task.compute_metrics(pd.Series([1.0, 5.0]), np.array([3.0, 3.0]), REGRESSION)
    assert values["r2"] == pytest.approx(0.0)


def test_regression_split_is_plain_and_seeded() -> None:
    frame = pd.DataFrame({"x": range(100), "y": np.linspace(0, 1, 100)})
    rest, part = TASKS["regression"].split(frame, "y", 0.25, seed=3)
    again, _ = TASKS["regression"].split(frame, "y", 0.25, seed=3)
    assert (len(rest), len(part)) == (75, 25)
    assert rest["x"].tolist() == again["x"].tolist()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 1, 1, 0], "binary"),
        (["no", "yes", "no"], "binary"),
        ([True, False, True], "binary"),
        (["a", "b", "c"], "multiclass"),
        ([0, 1, 2, 3, 4] * 3, "multiclass"),
        ([0.5, 1.0, 2.0], "regression"),  # a non-integer value
        (list(range(30)), "regression"),  # many distinct numbers
        ([1.0, 2.0, 3.0] * 4, "multiclass"),  # integer-valued floats, few values
    ],
)
def test_auto_chooses_the_task_and_says_why(values: list, expected: str) -> None:
    task, reason = choose_task(pd.Series(values, name="y"), "auto")
    assert task.name == expected
    assert reason.startswith("auto: ") and expected in reason


@pytest.mark.parametrize(
    ("values", "configured", "message"),
    [
        (["a", "b"], "regression", r"holds text \(e.g. 'a'\); a regression target must be numeric"),
        ([3.0, 3.0], "regression", r"has one value \(3.0\): nothing to learn"),
        (["a", "a"], "auto", r"has one class \('a'\); a classifier needs at least two"),
        (["a", "b", "c"], "binary", r"has 3 classes; \[data\] task = \"binary\" needs exactly two"),
        ([0.5, 1.5], "multiclass", r"has non-integer numbers; a classification target"),
        ([None, None], "auto", r"has no values"),
    ],
)
def test_choose_task_refuses_a_target_the_task_cannot_take(
    values: list, configured: str, message: str
) -> None:
    with pytest.raises(DataValidationError, match=message):
        choose_task(
            pd.Series(values, name="y", dtype=object if None in values else None), configured
        )


def test_check_metrics_names_the_key_and_the_allowed_metrics() -> None:
    with pytest.raises(
        ConfigError, match=r"'training.metric' 'roc_auc' is not a metric for a regression"
    ):
        TASKS["regression"].check_metrics("roc_auc", None)
    with pytest.raises(
        ConfigError, match=r"'gate.min_metrics' has \['rmse'\], which a binary task"
    ):
        TASKS["binary"].check_metrics(None, {"rmse": 3.0})
    TASKS["regression"].check_metrics("mae", {"r2": 0.5, "rmse": 4.0})


def test_unknown_metric() -> None:
    with pytest.raises(ValueError, match="unknown metric 'mse'; allowed: roc_auc"):
        get_metric("mse")
