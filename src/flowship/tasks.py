"""What the kinds of task ask of the rest of the loop, declared once: here, the metrics.

Every metric is one `Metric` value: its direction, whether it can rank candidates, and the
Evidently metric that gates it. Config validation, candidate ranking, the gate's thresholds and
the Evidently checks all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One holdout metric."""

    name: str
    higher_is_better: bool
    evidently: str  # the Evidently metric class (evidently.metrics.<name>) that gates it
    ranks: bool = True  # may be `[training] metric`, the one candidates are ranked by

    def score(self, value: float) -> float:
        """The value turned so that higher is always better."""
        return value if self.higher_is_better else -value

    def floor(self, reference: float, margin: float) -> float:
        """The worst acceptable value `margin` away from `reference` in the bad direction."""
        return reference - margin if self.higher_is_better else reference + margin


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", True, "RocAuc"),
        Metric("f1", True, "F1Score"),
        Metric("accuracy", True, "Accuracy"),
        Metric("log_loss", False, "LogLoss"),
        Metric("precision", True, "Precision", ranks=False),
        Metric("recall", True, "Recall", ranks=False),
    )
}
RANKING_METRICS = tuple(name for name, m in METRICS.items() if m.ranks)


def get_metric(name: str) -> Metric:
    """The metric called `name`.

    Raises:
        ValueError: no such metric (the message lists the known ones).
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}") from None
