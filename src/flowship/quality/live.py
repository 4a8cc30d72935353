"""Champion and challenger on the same labelled live rows, through Evidently: each model's
metric (the challenger as current data, the champion as reference), and the checks
`flowship.compare` decides on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from flowship.checks import LIVE_LABELS, LIVE_METRIC, QualityReport, make_check, skipped_check
from flowship.config import GateSettings
from flowship.quality.release import check_against_champion

if TYPE_CHECKING:
    from flowship.compare import Paired
    from flowship.schema import Schema

TITLE = "Champion vs challenger on labelled live rows"


def check_live(
    paired: Paired,
    schema: Schema,
    metric: str,
    gate: GateSettings,
    improvement: float | None,
    low: float | None,
    high: float | None,
) -> QualityReport:
    """The number of labelled rows both models scored against `[gate] live_min_labels`, and
    the challenger's improvement (its 95% interval's lower end against
    `-[gate] live_max_regression`); the metric of each model by Evidently."""
    labels = make_check(
        LIVE_LABELS,
        "pass" if paired.rows >= gate.live_min_labels else "fail",
        value=float(paired.rows),
        threshold=float(gate.live_min_labels),
        condition=f">= {gate.live_min_labels}",
        description=f"{paired.rows:,} labelled rows scored by both models",
    )
    if improvement is None or low is None or high is None:
        why = (
            f"needs at least {gate.live_min_labels} labelled rows both models scored "
            "([gate] live_min_labels); wait for more traffic and labels"
        )
        return QualityReport(TITLE, [labels, skipped_check(LIVE_METRIC, why, metric)], "")
    frame = pd.DataFrame({schema.target: paired.target.to_numpy()})
    evidently = check_against_champion(
        frame,
        paired.challenger,
        paired.champion,
        schema,
        metric,
        gate.live_max_regression,
        check_id=LIVE_METRIC,
        title=TITLE,
        critical=False,
    )
    floor = -gate.live_max_regression
    decisive = make_check(
        LIVE_METRIC,
        "pass" if low >= floor else "fail",
        metric=metric,
        value=improvement,
        threshold=floor,
        condition=f"95% interval's lower end {low:+.4g} >= {floor:g}",
        description=(
            f"challenger minus champion (positive: challenger better), 95% paired bootstrap "
            f"interval {low:+.4f} to {high:+.4f}"
        ),
    )
    return QualityReport(TITLE, [labels, decisive], evidently.html, evidently.summary)
