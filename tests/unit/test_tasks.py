"""The metric table: one entry per metric, with its direction and its Evidently metric."""

from __future__ import annotations

import evidently.metrics
import pytest

from flowship.tasks import METRICS, RANKING_METRICS, get_metric


def test_every_metric_names_a_real_evidently_metric() -> None:
    for metric in METRICS.values():
        assert hasattr(evidently.metrics, metric.evidently), metric.name


def test_directions_scores_and_floors() -> None:
    """Higher is better except for log_loss; a floor lies in the bad direction."""
    assert [n for n, m in METRICS.items() if not m.higher_is_better] == ["log_loss"]
    assert get_metric("log_loss").score(0.3) == -0.3
    assert get_metric("roc_auc").floor(0.8, 0.05) == pytest.approx(0.75)
    assert get_metric("log_loss").floor(0.3, 0.05) == pytest.approx(0.35)
    assert RANKING_METRICS == ("roc_auc", "f1", "accuracy", "log_loss")


def test_unknown_metric() -> None:
    with pytest.raises(ValueError, match="unknown metric 'mse'; allowed: roc_auc"):
        get_metric("mse")
