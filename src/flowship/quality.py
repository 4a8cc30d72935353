"""Every Evidently report and its checks, returned as plain results (the only Evidently importer).

Each check's status, value and threshold are read back from Evidently's own test results
(`snapshot.json()`), never recomputed here. Evidently is imported inside the functions: it
takes seconds to import and the service and the CLI must not pay for it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flowship.config import GateSettings, MonitorSettings

if TYPE_CHECKING:
    from flowship.data import Schema

Status = Literal["pass", "fail", "warn", "skipped"]
Group = Literal["data_quality", "drift", "model_quality", "champion"]
_STATUS: dict[str, Status] = {
    "SUCCESS": "pass",
    "FAIL": "fail",
    "WARNING": "warn",
    "ERROR": "fail",
    "SKIPPED": "skipped",
}
_OPS = {
    "GreaterOrEqual": ">=",
    "GreaterThan": ">",
    "LessOrEqual": "<=",
    "LessThan": "<",
    "Equal": "==",
    "NotEqual": "!=",
}
# Our metric names → Evidently metric class names; log_loss is a maximum, the rest minimums.
EVIDENTLY_METRICS = {
    "roc_auc": "RocAuc",
    "f1": "F1Score",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "log_loss": "LogLoss",
}


class CheckResult(BaseModel):
    """One check, as read from Evidently's test results."""

    model_config = ConfigDict(frozen=True)

    name: str
    group: Group
    status: Status
    critical: bool
    value: float | None = None
    threshold: float | None = None
    condition: str = ""
    column: str | None = None
    description: str = ""

    @property
    def blocking(self) -> bool:
        """A failed critical check blocks promotion; anything else only informs."""
        return self.critical and self.status == "fail"

    @property
    def label(self) -> str:
        return f"{self.name} [{self.column}]" if self.column else self.name


@dataclass(frozen=True)
class QualityReport:
    """The checks of one Evidently report and the report itself as self-contained HTML."""

    title: str
    checks: list[CheckResult]
    html: str = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)
    snapshot: str = field(default="", repr=False)  # Evidently's own serialisation, for workspaces
    note: str = ""  # e.g. which sample the report was computed on, and its sampling error


@dataclass(frozen=True)
class Sample:
    """A seeded random sample of a table, and how far a share measured on it may be off."""

    frame: pd.DataFrame
    of_rows: int
    seed: int

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def share_error(self) -> float:
        """The 95% margin of a share (worst case p = 0.5, finite population corrected)."""
        if self.rows >= self.of_rows:
            return 0.0
        fpc = (self.of_rows - self.rows) / (self.of_rows - 1)
        return float(1.96 * np.sqrt(0.25 / self.rows * fpc))

    def describe(self, name: str) -> str:
        if self.rows >= self.of_rows:
            return f"{name}: all {self.of_rows:,} rows"
        return (
            f"{name}: a seeded random sample of {self.rows:,} of {self.of_rows:,} rows "
            f"(seed {self.seed}); a share measured on it is within "
            f"±{100 * self.share_error:.2f} percentage points of the full table's (95%)"
        )


def sample_rows(frame: pd.DataFrame, rows: int, seed: int) -> Sample:
    """At most `rows` rows, drawn without replacement with `seed` (the same rows every run).

    Evidently's time and memory grow with rows, its verdicts do not: drift distances and
    shares settle long before a million rows (benchmarks/monitor.py compares the verdicts on
    a 50,000-row sample with the full-data ones).
    """
    picked = frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)
    return Sample(picked, len(frame), seed)


def _snapshot_tests(snapshot: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    payload = json.loads(snapshot.json())
    values = {m["id"]: m["value"] for m in payload["metrics"]}
    return payload["tests"], values


def _observed(test: dict[str, Any], value: Any) -> float | None:
    """The tested number: count or share of count metrics, one label of by-label metrics."""
    bound = test["bound_test"]
    kind = bound["type"].rsplit(":", 1)[-1]
    if kind == "CountBoundTest":
        value = value["count" if bound["is_count"] else "share"]
    elif kind == "ByLabelCountBoundTest":
        value = value[bound["slot"] + "s"].get(str(bound.get("label")), 0.0)
    elif kind == "ByLabelBoundTest":
        value = value.get(str(bound.get("label")))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _read_checks(
    snapshot: Any,
    group: Group,
    name_of: dict[str, str],
    *,
    critical: bool | None = None,
    reference: dict[str, float] | None = None,
) -> list[CheckResult]:
    """Turn a snapshot's tests into CheckResults; `name_of` maps metric ids to check names."""
    tests, values = _snapshot_tests(snapshot)
    checks = []
    for test in tests:
        metric_id = test["metric_config"]["metric_id"]
        params = test["metric_config"]["params"]
        config = test["test_config"]
        threshold = config.get("threshold", config.get("expected", params.get("threshold")))
        op = _OPS.get(config.get("type", "").rsplit(":", 1)[-1].replace("MetricTest", ""), "")
        ref = (reference or {}).get(metric_id)
        if isinstance(threshold, dict):  # Reference(absolute=...): relative to the champion
            margin = threshold.get("absolute") or 0.0
            threshold = None if ref is None else ref + (-margin if op.startswith(">") else margin)
        status = _STATUS.get(test["status"], "fail")
        is_critical = bool(config.get("is_critical", True)) if critical is None else critical
        if not is_critical and status == "fail":
            status = "warn"
        name = name_of.get(metric_id, params["type"].rsplit(":", 1)[-1])
        label = test["bound_test"].get("label")
        checks.append(
            CheckResult(
                name=name if label is None else f"{name} of {label!r}",
                group=group,
                status=status,
                critical=is_critical,
                value=_observed(test, values.get(metric_id)),
                threshold=float(threshold) if isinstance(threshold, int | float) else None,
                condition=f"{op} {threshold:.4g}"
                if op and isinstance(threshold, int | float)
                else "",
                column=params.get("column"),
                description=test.get("description", ""),
            )
        )
    return checks


def _report(metrics: list[Any], **kwargs: Any) -> Any:
    from evidently import Report

    return Report(metrics, **kwargs)


def _html(snapshot: Any) -> str:
    return str(snapshot.get_html_str(as_iframe=False))


def _dataset(frame: pd.DataFrame, definition: Any) -> Any:
    from evidently import Dataset

    return Dataset.from_pandas(frame, data_definition=definition)


def _distinct_count_metric() -> Any:
    """Evidently has no per-column 'number of distinct values' metric; this adds one."""
    global _DISTINCT
    if _DISTINCT is not None:
        return _DISTINCT
    from evidently.core.metric_types import (
        ColumnMetric,
        SingleValueCalculation,
        SingleValueMetric,
    )

    class DistinctValueCount(ColumnMetric, SingleValueMetric):
        """Number of distinct non-missing values in `column`."""

    class DistinctValueCountCalculation(SingleValueCalculation[DistinctValueCount]):
        def calculate(self, context: Any, current_data: Any, reference_data: Any) -> Any:
            def count(data: Any) -> Any:
                column = data.as_dataframe()[self.metric.column]
                return self.result(int(column.nunique(dropna=True)))

            return count(current_data), None if reference_data is None else count(reference_data)

        def display_name(self) -> str:
            return f"Distinct values in column '{self.metric.column}'"

    _DISTINCT = DistinctValueCount
    return _DISTINCT


_DISTINCT: Any = None


def check_training_data(frame: pd.DataFrame, schema: Schema, gate: GateSettings) -> QualityReport:
    """Data quality of a training table: rows, missing shares, constant features, classes.

    Every check is critical: a table that fails one must not produce a champion.
    """
    from evidently import DataDefinition
    from evidently.metrics import MissingValueCount, RowCount, UniqueValueCount
    from evidently.tests import gt, gte, lte

    distinct = _distinct_count_metric()
    columns = [*schema.features, schema.target]
    metrics: list[Any] = [RowCount(tests=[gte(gate.min_rows)])]
    names: list[str] = ["row count"]
    for column in columns:
        metrics.append(MissingValueCount(column=column, share_tests=[lte(gate.max_missing_share)]))
        names.append("missing share")
    for column in schema.features:
        metrics.append(distinct(column=column, tests=[gt(1)]))
        names.append("not constant")
    metrics.append(distinct(column=schema.target, tests=[gte(2)]))
    names.append("target classes")
    labels = frame[schema.target].dropna().unique().tolist()
    metrics.append(
        UniqueValueCount(
            column=schema.target,
            share_tests={label: [gte(gate.min_class_share)] for label in labels},
        )
    )
    names.append("class share")
    data = frame[columns].copy()
    definition = DataDefinition(
        numerical_columns=list(schema.numeric),
        categorical_columns=[*schema.categorical, schema.target],
    )
    report = _report(metrics)
    snapshot = report.run(_dataset(data, definition))
    name_of = {m.get_fingerprint(): n for m, n in zip(metrics, names, strict=True)}
    checks = _read_checks(snapshot, "data_quality", name_of)
    return QualityReport("Data quality of the training data", checks, _html(snapshot))


def check_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: Schema,
    max_drifted_share: float,
    blocking: bool,
    title: str = "Drift of the training data against the champion's",
    extra_numeric: Sequence[str] = (),
) -> QualityReport:
    """Per-column drift (Evidently's defaults per type) and the share of drifted columns.

    `extra_numeric` adds columns beyond the features (e.g. the prediction score). The share
    check is critical when `blocking`; each column's own drift only informs.
    """
    from evidently import DataDefinition
    from evidently.metrics import DriftedColumnsCount, ValueDrift
    from evidently.tests import lte

    wanted = [*schema.features, *extra_numeric]
    columns = [c for c in wanted if c in current.columns and c in reference.columns]
    definition = DataDefinition(
        numerical_columns=[c for c in [*schema.numeric, *extra_numeric] if c in columns],
        categorical_columns=[c for c in schema.categorical if c in columns],
    )
    share = DriftedColumnsCount(
        columns=columns, share_tests=[lte(max_drifted_share, is_critical=blocking)]
    )
    per_column = [ValueDrift(column=c) for c in columns]
    report = _report([share, *per_column], include_tests=True)
    snapshot = report.run(
        _dataset(_plain_frame(current[columns]), definition),
        _dataset(_plain_frame(reference[columns]), definition),
    )
    name_of = {share.get_fingerprint(): "drifted share"}
    name_of.update({m.get_fingerprint(): "column drift" for m in per_column})
    checks = [
        c if c.name == "drifted share" else c.model_copy(update={"critical": False})
        for c in _read_checks(snapshot, "drift", name_of)
    ]
    checks = [
        c.model_copy(update={"status": "warn"}) if not c.critical and c.status == "fail" else c
        for c in checks
    ]
    drifted = [c.column for c in checks if c.name == "column drift" and c.status != "pass"]
    return QualityReport(
        title, checks, _html(snapshot), {"drifted_columns": drifted}, snapshot.dumps()
    )


def _plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain strings: Evidently compares categorical columns by value."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object)
    return out


def _scored(frame: pd.DataFrame, proba: np.ndarray, schema: Schema) -> tuple[pd.DataFrame, Any]:
    """A frame Evidently can read as a classification: target, labels and probabilities.

    Binary targets become 1 (positive) / 0 so string labels work; multiclass labels become
    strings with one probability column per class named like the class. The predicted label
    is the argmax, as Evidently derives labels from probabilities anyway.
    """
    from evidently import BinaryClassification, DataDefinition, MulticlassClassification

    classes = list(schema.classes)
    y = frame[schema.target].to_numpy()
    if schema.task == "binary":
        pos = classes.index(
            schema.positive_class if schema.positive_class is not None else classes[-1]
        )
        out = pd.DataFrame(
            {
                "target": (y == schema.positive_class).astype(int),
                "prediction": (proba.argmax(axis=1) == pos).astype(int),
                "proba": proba[:, pos],
            }
        )
        definition = DataDefinition(
            numerical_columns=["proba"],
            categorical_columns=["target", "prediction"],
            classification=[
                BinaryClassification(
                    target="target",
                    prediction_labels="prediction",
                    prediction_probas="proba",
                    pos_label=1,
                )
            ],
        )
        return out, definition
    names = [str(c) for c in classes]
    out = pd.DataFrame(proba, columns=names)
    out.insert(0, "target", [str(v) for v in y])
    out.insert(1, "prediction", np.asarray(names, dtype=object)[proba.argmax(axis=1)])
    definition = DataDefinition(
        numerical_columns=names,
        categorical_columns=["target", "prediction"],
        classification=[
            MulticlassClassification(
                target="target", prediction_labels="prediction", prediction_probas=names
            )
        ],
    )
    return out, definition


def _metric(name: str, **kwargs: Any) -> Any:
    import evidently.metrics as em

    return getattr(em, EVIDENTLY_METRICS[name])(**kwargs)


def check_model_quality(
    holdout: pd.DataFrame,
    proba: np.ndarray,
    schema: Schema,
    min_metrics: dict[str, float],
    title: str = "Model quality on the holdout",
) -> QualityReport:
    """The challenger's holdout metrics against the configured minimums (log_loss: maximum)."""
    from evidently.tests import gte, lte

    scored, definition = _scored(holdout, proba, schema)
    metrics, name_of = [], {}
    for name in sorted(EVIDENTLY_METRICS):
        tests = []
        if name in min_metrics:
            bound = min_metrics[name]
            tests = [lte(bound) if name == "log_loss" else gte(bound)]
        metric = _metric(name, tests=tests)
        metrics.append(metric)
        name_of[metric.get_fingerprint()] = name
    report = _report(metrics)
    snapshot = report.run(_dataset(scored, definition))
    checks = _read_checks(snapshot, "model_quality", name_of)
    values = {
        name_of[m["id"]]: float(m["value"])
        for m in json.loads(snapshot.json())["metrics"]
        if m["id"] in name_of and isinstance(m["value"], int | float)
    }
    return QualityReport(title, checks, _html(snapshot), values, snapshot.dumps())


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
    (for log_loss: at most the champion's plus it). Critical.
    """
    from evidently.tests import Reference, gte, lte

    current, definition = _scored(holdout, challenger_proba, schema)
    reference, _ = _scored(holdout, champion_proba, schema)
    condition = lte if metric == "log_loss" else gte
    compared = _metric(metric, tests=[condition(Reference(absolute=max_regression))])
    report = _report([compared])
    snapshot = report.run(_dataset(current, definition), _dataset(reference, definition))
    champion_value = float(
        snapshot.context.get_reference_metric_result(compared.get_fingerprint()).value
    )
    checks = _read_checks(
        snapshot,
        "champion",
        {compared.get_fingerprint(): f"{metric} vs champion"},
        reference={compared.get_fingerprint(): champion_value},
    )
    return QualityReport(
        "Challenger vs champion on this holdout",
        checks,
        _html(snapshot),
        {"champion": champion_value, "challenger": checks[0].value if checks else None},
    )


def skipped_check(name: str, group: Group, description: str) -> CheckResult:
    """A check that could not run (e.g. no champion yet), shown as such on the card."""
    return CheckResult(
        name=name, group=group, status="skipped", critical=False, description=description
    )


def render_reports(reports: Sequence[QualityReport]) -> str:
    """The Evidently reports as iframes, to embed below a summary table in one HTML card."""
    parts = []
    for report in reports:
        note = f"<p><i>{html.escape(report.note)}</i></p>" if report.note else ""
        parts.append(
            f"<h2>{html.escape(report.title)}</h2>{note}"
            f'<iframe style="width:100%;height:900px;border:1px solid #ddd" '
            f'srcdoc="{html.escape(report.html, quote=True)}"></iframe>'
        )
    return "\n".join(parts)


def release_checks(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    gate: GateSettings,
    metric: str,
    champion: Any = None,
) -> list[QualityReport]:
    """Model quality, drift against the champion's training data, and the champion comparison.

    `champion` is the champion's artifacts (`model`, `schema`, `train_data`, `pathspec`) or
    None. When there is none, or its schema differs from this run's, the champion checks are
    reported as skipped with the reason.
    """
    proba = model.predict_proba(holdout[schema.features])
    reports = [check_model_quality(holdout, proba, schema, gate.min_metrics)]
    if champion is None:
        skipped = [
            skipped_check("drift vs champion", "drift", "no champion yet"),
            skipped_check(f"{metric} vs champion", "champion", "no champion yet"),
        ]
        return [*reports, QualityReport("No champion yet", skipped, "")]
    ours = sample_rows(train, gate.sample_rows, gate.sample_seed)
    theirs = sample_rows(champion.train_data, gate.sample_rows, gate.sample_seed)
    drift = check_drift(ours.frame, theirs.frame, schema, gate.max_drifted_share, gate.drift_blocks)
    if ours.rows < ours.of_rows or theirs.rows < theirs.of_rows:
        note = f"{ours.describe('Training data')}. {theirs.describe('The champion’s')}."
        drift = replace(drift, note=note)
    reports.append(drift)
    old = champion.schema
    if list(old.classes) != list(schema.classes) or not set(old.features) <= set(holdout.columns):
        reason = (
            f"the champion {champion.pathspec} has classes {old.classes} and features "
            f"{old.features}; it cannot be scored on this holdout"
        )
        check = skipped_check(f"{metric} vs champion", "champion", reason)
        return [*reports, QualityReport("Champion not comparable", [check], "")]
    champion_proba = champion.model.predict_proba(holdout[old.features])
    reports.append(
        check_against_champion(holdout, proba, champion_proba, schema, metric, gate.max_regression)
    )
    return reports


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
    from evidently import DataDefinition
    from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount
    from evidently.tests import Reference, lte

    drift = check_drift(
        current,
        reference,
        schema,
        monitor.max_drifted_share,
        blocking=True,
        title="Drift of production data and predictions against the champion's holdout",
        extra_numeric=[score_column],
    )
    metrics: list[Any] = []
    names: list[str] = []
    for column in schema.features:
        metrics.append(
            MissingValueCount(
                column=column, share_tests=[lte(Reference(absolute=monitor.max_missing_increase))]
            )
        )
        names.append("missing share vs reference")
    for column in schema.categorical:
        known: list[Any] = [*schema.categories.get(column, []), None]
        metrics.append(
            OutListValueCount(
                column=column, values=known, share_tests=[lte(monitor.max_new_category_share)]
            )
        )
        names.append("new categories")
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
        names.append("out of training range")
    definition = DataDefinition(
        numerical_columns=list(schema.numeric), categorical_columns=list(schema.categorical)
    )
    frame = _plain_frame(current[schema.features])
    ref = _plain_frame(reference[schema.features])
    snapshot = _report(metrics).run(_dataset(frame, definition), _dataset(ref, definition))
    ids = [m.get_fingerprint() for m in metrics]
    references = {}
    for metric_id, name in zip(ids, names, strict=True):
        if name == "missing share vs reference":
            result = snapshot.context.get_reference_metric_result(metric_id)
            references[metric_id] = float(result.share.value)
    checks = _read_checks(
        snapshot, "data_quality", dict(zip(ids, names, strict=True)), reference=references
    )
    quality = QualityReport(
        "Data quality of the production window",
        checks,
        _html(snapshot),
        {"alarms": sorted({c.column for c in checks if c.blocking and c.column})},
        snapshot.dumps(),
    )
    return [drift, quality]


def save_to_workspace(path: str, project: str, reports: Sequence[QualityReport]) -> str:
    """Add each report's snapshot to an Evidently workspace project (created with dashboard
    panels for drift share, missing shares and model quality the first time)."""
    from pathlib import Path

    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Workspace

    workspace = Workspace(path) if Path(path).is_dir() else Workspace.create(path)
    found = list(workspace.search_project(project))
    target = found[0] if found else _create_monitoring_project(workspace, project)
    for report in reports:
        if not report.snapshot:
            continue
        workspace.add_run(target.id, Snapshot.loads(report.snapshot), include_data=False)
    return str(target.id)


def _create_monitoring_project(workspace: Any, name: str) -> Any:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    project = workspace.create_project(name, description="flowship production monitoring")
    board = project.dashboard
    board.add_panel(
        line_plot_panel(
            title="Share of drifted columns",
            size="half",
            values=[
                PanelMetric(
                    legend="share",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
        ),
        tab="Monitoring",
    )
    board.add_panel(
        line_plot_panel(
            title="Model quality on labelled production rows",
            size="half",
            values=[
                PanelMetric(legend="roc_auc", metric="RocAuc"),
                PanelMetric(legend="accuracy", metric="Accuracy"),
                PanelMetric(legend="f1", metric="F1Score"),
            ],
        ),
        tab="Monitoring",
    )
    return project


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
    configured metric below the champion's holdout value minus `max_metric_drop`.

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
    proba = labelled[[f"proba_{c}" for c in schema.classes]].to_numpy(dtype=float)
    drop = monitor.max_metric_drop
    floor = champion_metrics[metric] + (drop if metric == "log_loss" else -drop)
    reports.append(
        check_model_quality(
            labelled.assign(**{schema.target: labelled[schema.target].map(_label_of(schema))}),
            proba,
            schema,
            {metric: floor},
            title="Model quality on labelled production rows vs the champion's holdout",
        )
    )
    return _noted(reports, window, ref)


def _noted(reports: list[QualityReport], window: Sample, ref: Sample) -> list[QualityReport]:
    if window.rows == window.of_rows and ref.rows == ref.of_rows:
        return reports
    note = f"{window.describe('Window')}. {ref.describe('Reference')}."
    return [replace(r, note=note) for r in reports]


def _label_of(schema: Schema) -> dict[Any, Any]:
    """Labels read back from CSV feedback may be strings or floats: map them to the classes."""
    mapping: dict[Any, Any] = {}
    for c in schema.classes:
        mapping[c] = c
        mapping[str(c)] = c
        if isinstance(c, int | bool):
            mapping[float(c)] = c
    return mapping
