"""The gate's checks: the training data's quality, the model's holdout quality, and the
challenger against the champion (drift of the training data, the metric on one holdout)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flowship.checks import (
    CHAMPION_METRIC,
    DATA_CLASS_SHARE,
    DATA_MISSING,
    DATA_NOT_CONSTANT,
    DATA_ROWS,
    DATA_TARGET_CLASSES,
    DRIFT_VS_CHAMPION,
    QualityReport,
    sample_rows,
    skipped_check,
)
from flowship.config import GateSettings
from flowship.quality import adapter
from flowship.quality.reports import check_drift, check_model_quality
from flowship.tasks import METRICS

if TYPE_CHECKING:
    from flowship.registry import ChampionArtifacts
    from flowship.schema import Schema


def check_training_data(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> QualityReport:
    """Data quality of a training table: rows, missing shares, constant features, classes.

    Every check is critical: a table that fails one must not produce a champion.
    """
    from evidently.metrics import MissingValueCount, RowCount, UniqueValueCount
    from evidently.tests import gt, gte, lte

    distinct = adapter.distinct_count_metric()
    columns = [*schema.features, schema.target]
    plan = adapter.Plan()
    plan.add(RowCount(tests=[gte(gate.min_rows)]), DATA_ROWS)
    for column in columns:
        missing = MissingValueCount(column=column, share_tests=[lte(gate.max_missing_share)])
        plan.add(missing, DATA_MISSING)
    for column in schema.features:
        plan.add(distinct(column=column, tests=[gt(1)]), DATA_NOT_CONSTANT)
    plan.add(distinct(column=schema.target, tests=[gte(2)]), DATA_TARGET_CLASSES)
    labels = frame[schema.target].dropna().unique().tolist()
    shares = {label: [gte(gate.min_class_share)] for label in labels}
    plan.add(UniqueValueCount(column=schema.target, share_tests=shares), DATA_CLASS_SHARE)
    definition = adapter.definition(schema.numeric, [*schema.categorical, schema.target])
    snapshot, checks = adapter.run_report(plan, adapter.dataset(frame[columns].copy(), definition))
    return QualityReport("Data quality of the training data", checks, adapter.html(snapshot))


def check_against_champion(
    holdout: pd.DataFrame,
    challenger_proba: np.ndarray,
    champion_proba: np.ndarray,
    schema: Schema,
    metric: str,
    max_regression: float,
) -> QualityReport:
    """Challenger (current) vs champion (reference) on the same holdout rows.

    Passes when the challenger's metric is at least the champion's minus `max_regression`
    (where lower is better: at most the champion's plus it). Critical.
    """
    from evidently.tests import Reference, gte, lte

    current, definition = adapter.scored(holdout, challenger_proba, schema)
    reference, _ = adapter.scored(holdout, champion_proba, schema)
    condition = gte if METRICS[metric].higher_is_better else lte
    plan = adapter.Plan()
    compared = plan.add(
        adapter.metric(metric, tests=[condition(Reference(absolute=max_regression))]),
        CHAMPION_METRIC,
        metric,
    )
    snapshot, checks = adapter.run_report(
        plan, adapter.dataset(current, definition), adapter.dataset(reference, definition)
    )
    champion_value = adapter.reference_value(snapshot, compared.get_fingerprint())
    return QualityReport(
        "Challenger vs champion on this holdout",
        checks,
        adapter.html(snapshot),
        {"champion": champion_value, "challenger": checks[0].value if checks else None},
    )


def release_checks(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    gate: GateSettings,
    metric: str,
    champion: ChampionArtifacts | None = None,
) -> list[QualityReport]:
    """Model quality, drift against the champion's training data, and the champion comparison.

    When there is no champion, or its schema differs from this run's, the champion checks are
    reported as skipped with the reason.
    """
    proba = model.predict_proba(holdout[schema.features])
    reports = [check_model_quality(holdout, proba, schema, gate.min_metrics)]
    if champion is None:
        skipped = [
            skipped_check(DRIFT_VS_CHAMPION, "no champion yet"),
            skipped_check(CHAMPION_METRIC, "no champion yet", metric=metric),
        ]
        return [*reports, QualityReport("No champion yet", skipped, "")]
    ours = sample_rows(train, gate.sample_rows, gate.sample_seed)
    theirs = sample_rows(champion.train_data, gate.sample_rows, gate.sample_seed)
    drift = check_drift(ours.frame, theirs.frame, schema, gate.max_drifted_share, gate.drift_blocks)
    if not (ours.complete and theirs.complete):
        note = f"{ours.describe('Training data')}. {theirs.describe('The champion’s')}."
        drift = replace(drift, note=note)
    reports.append(drift)
    old = champion.schema
    if list(old.classes) != list(schema.classes) or not set(old.features) <= set(holdout.columns):
        reason = (
            f"the champion {champion.pathspec} has classes {old.classes} and features "
            f"{old.features}; it cannot be scored on this holdout"
        )
        check = skipped_check(CHAMPION_METRIC, reason, metric=metric)
        return [*reports, QualityReport("Champion not comparable", [check], "")]
    champion_proba = champion.model.predict_proba(holdout[old.features])
    reports.append(
        check_against_champion(holdout, proba, champion_proba, schema, metric, gate.max_regression)
    )
    return reports
