"""The two reports both the gate and the monitor run: drift, and model quality."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from flowship.checks import (
    DRIFT_COLUMN,
    DRIFT_SHARE,
    MODEL_METRIC,
    QualityReport,
    drifted_columns,
)
from flowship.quality import adapter
from flowship.tasks import METRICS

if TYPE_CHECKING:
    from flowship.schema import Schema


def check_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: Schema,
    max_drifted_share: float,
    blocking: bool,
    title: str = "Drift of the training data against the champion's",
    extra_numeric: Sequence[str] = (),
) -> QualityReport:
    """Per-column drift (Evidently's defaults per type: for text, its domain classifier) and
    the share of drifted columns, text lengths included.

    `extra_numeric` adds columns beyond the features (e.g. the prediction score). The share
    check is critical when `blocking`; each column's own drift only informs.
    """
    from evidently.metrics import DriftedColumnsCount, ValueDrift
    from evidently.tests import lte

    lengths = [adapter.length_column(c) for c in schema.text]
    current = adapter.with_text_lengths(current, schema.text)
    reference = adapter.with_text_lengths(reference, schema.text)
    numbers = [*schema.numeric, *lengths, *extra_numeric]
    wanted = [*schema.features, *lengths, *extra_numeric]
    present = [c for c in wanted if c in current.columns and c in reference.columns]
    # a column without a single value on either side has no distribution to compare (Evidently
    # raises on it): it is named, and the missing-share checks judge it
    empty = [c for c in present if current[c].isna().all() or reference[c].isna().all()]
    columns = [c for c in present if c not in empty]
    note = f"Not compared, no values on one side: {', '.join(empty)}." if empty else ""
    if not columns:
        html = f"<p>{note}</p>" if note else "<p>No column to compare.</p>"
        return QualityReport(
            title, [], html, {"drifted_columns": [], "not_compared": empty}, note=note
        )
    definition = adapter.definition(
        [c for c in numbers if c in columns],
        [c for c in schema.categorical if c in columns],
        [c for c in schema.text if c in columns],
    )
    plan = adapter.Plan()
    share_test = lte(max_drifted_share, is_critical=blocking)
    plan.add(
        DriftedColumnsCount(columns=columns, share_tests=[share_test]),
        DRIFT_SHARE,
        critical=blocking,
    )
    for column in columns:
        plan.add(ValueDrift(column=column), DRIFT_COLUMN)
    snapshot, checks = adapter.run_report(
        plan,
        adapter.dataset(adapter.plain_frame(current[columns]), definition),
        adapter.dataset(adapter.plain_frame(reference[columns]), definition),
        include_tests=True,
    )
    summary: dict[str, list[str]] = {"drifted_columns": drifted_columns(checks)}
    if empty:
        summary["not_compared"] = empty
    return QualityReport(
        title, checks, adapter.html(snapshot), summary, snapshot.dumps(), note=note
    )


def check_model_quality(
    y_true: pd.Series,
    outputs: np.ndarray,
    schema: Schema,
    bounds: Mapping[str, float],
    title: str = "Model quality on the holdout",
) -> QualityReport:
    """Every metric of the task on true labels (values) and the model's outputs; those in
    `bounds` checked against them (a minimum where higher is better, a maximum otherwise).
    The summary holds every metric's value."""
    from evidently.tests import gte, lte

    scored, definition = adapter.scored(y_true, outputs, schema)
    plan = adapter.Plan()
    for name in sorted(schema.kind.metrics):
        tests = []
        if name in bounds:
            tests = [gte(bounds[name]) if METRICS[name].higher_is_better else lte(bounds[name])]
        plan.add(adapter.metric(name, tests=tests), MODEL_METRIC, name)
    snapshot, checks = adapter.run_report(plan, adapter.dataset(scored, definition))
    values = adapter.metric_values(snapshot, plan.planned)
    return QualityReport(title, checks, adapter.html(snapshot), values, snapshot.dumps())
