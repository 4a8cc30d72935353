"""The gate's checks: the training data's quality, the model's holdout quality, and the
challenger against the champion (its contract, drift of the training data, the metric on one
holdout)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flowship.checks import (
    CHAMPION_METRIC,
    CHAMPION_OWN_HOLDOUT,
    CONTRACT,
    DATA_CLASS_SHARE,
    DATA_MISSING,
    DATA_NOT_CONSTANT,
    DATA_ROWS,
    DATA_TARGET_CLASSES,
    DATA_TARGET_VARIES,
    DATA_TEXT_EMPTY,
    DRIFT_VS_CHAMPION,
    CheckResult,
    QualityReport,
    make_check,
    sample_rows,
    skipped_check,
)
from flowship.config import GateSettings
from flowship.quality import adapter
from flowship.quality.reports import check_drift, check_model_quality
from flowship.schema import contract_changes
from flowship.tasks import METRICS

if TYPE_CHECKING:
    from flowship.registry import ChampionArtifacts
    from flowship.schema import Schema


def _rows(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.metrics import RowCount
    from evidently.tests import gte

    return [RowCount(tests=[gte(gate.min_rows)])]


def _missing(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.metrics import MissingValueCount
    from evidently.tests import lte

    limit = lte(gate.max_missing_share)
    return [
        MissingValueCount(column=c, share_tests=[limit]) for c in [*schema.features, schema.target]
    ]


def _not_constant(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.tests import gt

    distinct = adapter.distinct_count_metric()
    return [distinct(column=c, tests=[gt(1)]) for c in schema.features]


def _text_empty(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.metrics import InRangeValueCount
    from evidently.tests import lte

    return [
        InRangeValueCount(
            column=adapter.length_column(c),
            left=0,
            right=0,
            share_tests=[lte(gate.max_missing_share)],
        )
        for c in schema.text
    ]


def _target_classes(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.tests import gte

    return [adapter.distinct_count_metric()(column=schema.target, tests=[gte(2)])]


def _target_varies(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.tests import gt

    return [adapter.distinct_count_metric()(column=schema.target, tests=[gt(1)])]


def _class_share(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> list[Any]:
    from evidently.metrics import UniqueValueCount
    from evidently.tests import gte

    labels = frame[schema.target].dropna().unique().tolist()
    shares = {label: [gte(gate.min_class_share)] for label in labels}
    return [UniqueValueCount(column=schema.target, share_tests=shares)]


# Each data-quality check of a training table: its declared id and the Evidently metrics that
# compute it. Every table gets the first three; the task names its target's checks.
TRAINING_CHECKS: dict[str, Callable[[pd.DataFrame, Schema, GateSettings], list[Any]]] = {
    DATA_ROWS: _rows,
    DATA_MISSING: _missing,
    DATA_NOT_CONSTANT: _not_constant,
    DATA_TEXT_EMPTY: _text_empty,
    DATA_TARGET_CLASSES: _target_classes,
    DATA_TARGET_VARIES: _target_varies,
    DATA_CLASS_SHARE: _class_share,
}


def check_training_data(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> QualityReport:
    """Data quality of a training table: rows, missing shares, constant features, and the
    target's checks for the task (classes and their shares, or that it varies).

    Every check is critical: a table that fails one must not produce a champion.
    """
    plan = adapter.Plan()
    common = (DATA_ROWS, DATA_MISSING, DATA_NOT_CONSTANT, DATA_TEXT_EMPTY)
    for check_id in (*common, *schema.kind.target_checks):
        for metric in TRAINING_CHECKS[check_id](frame, schema, gate):
            plan.add(metric, check_id)
    target_kind = [schema.target] if schema.kind.classifies else []
    lengths = [adapter.length_column(c) for c in schema.text]
    definition = adapter.definition(
        [*schema.numeric, *lengths, *([] if target_kind else [schema.target])],
        [*schema.categorical, *target_kind],
        schema.text,
    )
    columns = [*schema.features, schema.target]
    table = adapter.with_text_lengths(frame[columns].copy(), schema.text)
    snapshot, checks = adapter.run_report(plan, adapter.dataset(table, definition))
    return QualityReport("Data quality of the training data", checks, adapter.html(snapshot))


def check_against_champion(
    holdout: pd.DataFrame,
    challenger_outputs: np.ndarray,
    champion_outputs: np.ndarray,
    schema: Schema,
    metric: str,
    max_regression: float,
    check_id: str = CHAMPION_METRIC,
    title: str = "Challenger vs champion on this holdout",
    critical: bool | None = None,
) -> QualityReport:
    """Challenger (current) vs champion (reference) on the same holdout rows.

    Passes when the challenger's metric is at least the champion's minus `max_regression`
    (where lower is better: at most the champion's plus it). Critical.
    """
    from evidently.tests import Reference, gte, lte

    y = holdout[schema.target]
    current, definition = adapter.scored(y, challenger_outputs, schema)
    reference, _ = adapter.scored(y, champion_outputs, schema)
    condition = gte if METRICS[metric].higher_is_better else lte
    plan = adapter.Plan()
    compared = plan.add(
        adapter.metric(metric, [condition(Reference(absolute=max_regression))]),
        check_id,
        metric,
        critical=critical,
    )
    snapshot, checks = adapter.run_report(
        plan, adapter.dataset(current, definition), adapter.dataset(reference, definition)
    )
    champion_value = adapter.reference_value(snapshot, compared.get_fingerprint())
    return QualityReport(
        title,
        checks,
        adapter.html(snapshot),
        {"champion": champion_value, "challenger": checks[0].value if checks else None},
    )


def check_contract(schema: Schema, champion: ChampionArtifacts | None) -> CheckResult:
    """The challenger's contract against the champion's (skipped without a champion)."""
    if champion is None:
        return skipped_check(CONTRACT, "no champion yet")
    changes = contract_changes(champion.schema, schema)
    if not changes:
        return make_check(CONTRACT, "pass", description="same as the champion's")
    return make_check(
        CONTRACT,
        "fail",
        description=f"changed from the champion {champion.pathspec}: " + "; ".join(changes),
    )


def release_checks(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    gate: GateSettings,
    metric: str,
    champion: ChampionArtifacts | None = None,
    guard_with_champion_holdout: bool = False,
) -> list[QualityReport]:
    """Model quality, the contract against the champion's, drift against the champion's
    training data, and the champion comparison.

    With `guard_with_champion_holdout` (a retraining with feedback labels) the challenger is
    also compared with the champion on the champion's own holdout: a poisoned feedback label
    may fool the comparison on this run's holdout, which holds feedback rows, but not there.

    Without a champion, or when the contract changed, the drift and champion checks are
    reported as skipped with the reason: a model of another contract cannot be compared.
    """
    task = schema.kind
    outputs = task.outputs(model, holdout[schema.features])
    reports = [check_model_quality(holdout[schema.target], outputs, schema, gate.min_metrics or {})]
    contract = check_contract(schema, champion)
    if champion is None or contract.status != "pass":
        reason = "no champion yet" if champion is None else "the contract changed (see contract)"
        skipped = [
            contract,
            skipped_check(DRIFT_VS_CHAMPION, reason),
            skipped_check(CHAMPION_METRIC, reason, metric=metric),
        ]
        title = "No champion yet" if champion is None else "Contract changed"
        return [*reports, QualityReport(title, skipped, "")]
    reports.append(QualityReport("Contract", [contract], ""))
    ours = sample_rows(train, gate.sample_rows, gate.sample_seed)
    theirs = sample_rows(champion.train_data, gate.sample_rows, gate.sample_seed)
    drift = check_drift(ours.frame, theirs.frame, schema, gate.max_drifted_share, gate.drift_blocks)
    if not (ours.complete and theirs.complete):
        note = f"{ours.describe('Training data')}. {theirs.describe('The champion’s')}."
        drift = replace(drift, note=note)
    reports.append(drift)
    champion_outputs = task.outputs(champion.model, holdout[champion.schema.features])
    comparison = check_against_champion(
        holdout, outputs, champion_outputs, schema, metric, gate.max_regression
    )
    reports.append(comparison)
    if guard_with_champion_holdout:
        # Worse on the old rows is what learning a changed world looks like, when the
        # challenger is clearly better on today's; without that it is what poisoned labels do.
        better = METRICS[metric].score(comparison.summary["challenger"] or 0.0) - METRICS[
            metric
        ].score(comparison.summary["champion"])
        theirs = champion.holdout
        reports.append(
            check_against_champion(
                theirs,
                task.outputs(model, theirs[schema.features]),
                task.outputs(champion.model, theirs[champion.schema.features]),
                schema,
                metric,
                gate.max_regression,
                check_id=CHAMPION_OWN_HOLDOUT,
                title="Challenger vs champion on the champion's own holdout",
                critical=better <= gate.max_regression,
            )
        )
    return reports
