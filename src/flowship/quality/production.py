"""The monitor's checks on a production window: drift of features and predictions, data
quality against what the model knows, and decay once delayed labels arrive.

Each data-quality check is one declared `CheckSpec` (`flowship.checks`) plus its entry in
`PRODUCTION_CHECKS`: the Evidently metrics that compute it for a schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from flowship.checks import (
    PRODUCTION_MISSING,
    PRODUCTION_NEW_CATEGORIES,
    PRODUCTION_OUT_OF_RANGE,
    PRODUCTION_TEXT_LENGTH,
    QualityReport,
    Sample,
    sample_rows,
)
from flowship.config import MonitorSettings
from flowship.quality import adapter
from flowship.quality.reports import check_drift, check_model_quality
from flowship.tasks import METRICS

if TYPE_CHECKING:
    from flowship.schema import Schema


def _missing_share(schema: Schema, monitor: MonitorSettings) -> list[Any]:
    from evidently.metrics import MissingValueCount
    from evidently.tests import Reference, lte

    limit = lte(Reference(absolute=monitor.max_missing_increase))
    return [MissingValueCount(column=c, share_tests=[limit]) for c in schema.features]


def _new_categories(schema: Schema, monitor: MonitorSettings) -> list[Any]:
    from evidently.metrics import OutListValueCount
    from evidently.tests import lte

    return [
        OutListValueCount(
            column=c,
            values=[*schema.categories.get(c, []), None],
            share_tests=[lte(monitor.max_new_category_share)],
        )
        for c in schema.categorical
    ]


def _out_of_range(schema: Schema, monitor: MonitorSettings) -> list[Any]:
    from evidently.metrics import OutRangeValueCount
    from evidently.tests import lte

    metrics = []
    for column in schema.numeric:
        low, high = schema.numeric_ranges[column]
        metrics.append(
            OutRangeValueCount(
                column=column,
                left=low,
                right=high,
                share_tests=[lte(monitor.max_out_of_range_share)],
            )
        )
    return metrics


def _text_length(schema: Schema, monitor: MonitorSettings) -> list[Any]:
    from evidently.metrics import OutRangeValueCount
    from evidently.tests import lte

    return [
        OutRangeValueCount(
            column=adapter.length_column(c),
            left=float(low),
            right=float(high),
            share_tests=[lte(monitor.max_out_of_range_share)],
        )
        for c, (low, high) in schema.text_lengths.items()
        if c in schema.text
    ]


PRODUCTION_CHECKS: dict[str, Callable[[Schema, MonitorSettings], list[Any]]] = {
    PRODUCTION_MISSING: _missing_share,
    PRODUCTION_NEW_CATEGORIES: _new_categories,
    PRODUCTION_OUT_OF_RANGE: _out_of_range,
    PRODUCTION_TEXT_LENGTH: _text_length,
}


def check_production(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: Schema,
    monitor: MonitorSettings,
    score_column: str,
) -> list[QualityReport]:
    """Drift of every feature and of the prediction score, and the data quality of a window.

    Data quality compares the window with what the model knows: missing shares against the
    reference's (+ `max_missing_increase`), categories never seen in training, numbers outside
    the training range. Every check here is critical for the monitor's decision.
    """
    drift = check_drift(
        current,
        reference,
        schema,
        monitor.max_drifted_share,
        blocking=True,
        title="Drift of production data and predictions against the champion's holdout",
        extra_numeric=[score_column],
    )
    plan = adapter.Plan()
    for check_id, build in PRODUCTION_CHECKS.items():
        for metric in build(schema, monitor):
            plan.add(metric, check_id)
    lengths = [adapter.length_column(c) for c in schema.text]
    definition = adapter.definition([*schema.numeric, *lengths], schema.categorical, schema.text)

    def table(frame: pd.DataFrame) -> Any:
        with_lengths = adapter.with_text_lengths(frame[schema.features], schema.text)
        return adapter.dataset(adapter.plain_frame(with_lengths), definition)

    snapshot, checks = adapter.run_report(plan, table(current), table(reference))
    quality = QualityReport(
        "Data quality of the production window",
        checks,
        adapter.html(snapshot),
        {"alarms": sorted({c.column for c in checks if c.blocking and c.column})},
        snapshot.dumps(),
    )
    return [drift, quality]


def check_window(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: Schema,
    monitor: MonitorSettings,
    champion_metrics: dict[str, float],
    metric: str,
    score_column: str,
) -> list[QualityReport]:
    """Every monitor check: drift, data quality and, with enough delayed labels, decay of the
    configured metric beyond the champion's holdout value and `max_metric_drop`.

    Windows (and references) above `[monitor] sample_rows` are checked on a seeded random
    sample of that many rows (`sample_rows`); every report then says so, with the margin of
    a share measured on the sample (±0.43 percentage points for 50,000 of 1,000,000 rows).
    """
    window = sample_rows(current, monitor.sample_rows, monitor.sample_seed)
    ref = sample_rows(reference, monitor.sample_rows, monitor.sample_seed)
    current, reference = window.frame, ref.frame
    reports = check_production(current, reference, schema, monitor, score_column)
    labelled = current[current[schema.target].notna()]
    if len(labelled) < monitor.min_labels:
        return _noted(reports, window, ref)
    task = schema.kind
    floor = METRICS[metric].floor(champion_metrics[metric], monitor.max_metric_drop)
    reports.append(
        check_model_quality(
            task.labels_from(labelled[schema.target], schema),
            task.outputs_from(labelled, schema),
            schema,
            {metric: floor},
            title="Model quality on labelled production rows vs the champion's holdout",
        )
    )
    return _noted(reports, window, ref)


def _noted(reports: list[QualityReport], window: Sample, ref: Sample) -> list[QualityReport]:
    if window.complete and ref.complete:
        return reports
    note = f"{window.describe('Window')}. {ref.describe('Reference')}."
    return [replace(r, note=f"{r.note} {note}".strip()) for r in reports]
