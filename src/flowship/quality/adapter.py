"""Run an Evidently report and read its test results back as `CheckResult`s.

Each check's status, value and threshold are read from Evidently's own test results
(`snapshot.json()`), never recomputed here. Every Evidently metric a report runs is planned as
one declared check (`Planned`), so results carry the check's id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flowship.checks import CheckResult, Status, make_check
from flowship.tasks import METRICS

if TYPE_CHECKING:
    from flowship.schema import Schema

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


@dataclass(frozen=True)
class Planned:
    """Which declared check an Evidently metric's tests are: its id, the metric name that fills
    the spec's `{metric}`, and whether it blocks (None: the spec's default)."""

    check_id: str
    metric: str = ""
    critical: bool | None = None


class Plan:
    """Evidently metrics in report order, each planned as one declared check."""

    def __init__(self) -> None:
        self.metrics: list[Any] = []
        self.planned: dict[str, Planned] = {}

    def add(
        self, metric: Any, check_id: str, metric_name: str = "", critical: bool | None = None
    ) -> Any:
        self.metrics.append(metric)
        self.planned[metric.get_fingerprint()] = Planned(check_id, metric_name, critical)
        return metric


def run_report(
    plan: Plan, current: Any, reference: Any = None, include_tests: bool = False
) -> tuple[Any, list[CheckResult]]:
    """Run the plan's metrics on Evidently datasets; the snapshot and its checks."""
    from evidently import Report

    snapshot = Report(plan.metrics, include_tests=include_tests).run(current, reference)
    return snapshot, read_checks(snapshot, plan.planned)


def read_checks(snapshot: Any, planned: Mapping[str, Planned]) -> list[CheckResult]:
    """Turn a snapshot's tests into CheckResults, one per test, in the report's order.

    A threshold given relative to the reference (`Reference(absolute=...)`) is turned into the
    absolute number it was compared with.
    """
    payload = json.loads(snapshot.json())
    values = {m["id"]: m["value"] for m in payload["metrics"]}
    checks = []
    for test in payload["tests"]:
        metric_id = test["metric_config"]["metric_id"]
        params = test["metric_config"]["params"]
        config = test["test_config"]
        threshold = config.get("threshold", config.get("expected", params.get("threshold")))
        op = _OPS.get(config.get("type", "").rsplit(":", 1)[-1].replace("MetricTest", ""), "")
        if isinstance(threshold, dict):  # Reference(absolute=...): relative to the reference
            margin = threshold.get("absolute") or 0.0
            ref = reference_value(snapshot, metric_id, test["bound_test"])
            threshold = ref + (-margin if op.startswith(">") else margin)
        plan = planned[metric_id]
        label = test["bound_test"].get("label")
        check = make_check(
            plan.check_id,
            _STATUS.get(test["status"], "fail"),
            critical=plan.critical,
            metric=plan.metric,
            value=_observed(test["bound_test"], values.get(metric_id)),
            threshold=float(threshold) if isinstance(threshold, int | float) else None,
            condition=f"{op} {threshold:.4g}" if op and isinstance(threshold, int | float) else "",
            column=params.get("column"),
            description=test.get("description", ""),
        )
        if label is not None:
            check = check.model_copy(update={"name": f"{check.name} of {label!r}"})
        checks.append(check)
    return checks


def reference_value(snapshot: Any, metric_id: str, bound: Mapping[str, Any] | None = None) -> float:
    """A metric's value on the reference data (the count or share of count metrics, the mean
    of mean/std metrics)."""
    result = snapshot.context.get_reference_metric_result(metric_id)
    kind = bound["type"].rsplit(":", 1)[-1] if bound is not None else ""
    if kind == "CountBoundTest":
        result = result.count if bound and bound["is_count"] else result.share
    elif kind == "MeanStdBoundTest" or hasattr(result, "mean"):
        result = result.mean if not bound or bound.get("is_mean", True) else result.std
    return float(result.value)


def metric_values(snapshot: Any, planned: Mapping[str, Planned]) -> dict[str, float]:
    """The numeric value of each planned metric (the mean of mean/std metrics), by name."""
    values = {}
    for m in json.loads(snapshot.json())["metrics"]:
        value = m["value"]
        if isinstance(value, dict) and "mean" in value:
            value = value["mean"]
        if m["id"] in planned and isinstance(value, int | float):
            values[planned[m["id"]].metric] = float(value)
    return values


def _observed(bound: Mapping[str, Any], value: Any) -> float | None:
    """The tested number: count or share of count metrics, mean or std of mean/std metrics,
    one label of by-label metrics."""
    kind = bound["type"].rsplit(":", 1)[-1]
    if kind == "CountBoundTest":
        value = value["count" if bound["is_count"] else "share"]
    elif kind == "MeanStdBoundTest":
        value = value["mean" if bound.get("is_mean", True) else "std"]
    elif kind == "ByLabelCountBoundTest":
        value = value[bound["slot"] + "s"].get(str(bound.get("label")), 0.0)
    elif kind == "ByLabelBoundTest":
        value = value.get(str(bound.get("label")))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def html(snapshot: Any) -> str:
    """The report as one self-contained HTML page."""
    return str(snapshot.get_html_str(as_iframe=False))


def dataset(frame: pd.DataFrame, definition: Any) -> Any:
    from evidently import Dataset

    return Dataset.from_pandas(frame, data_definition=definition)


def definition(
    numerical: Sequence[str] = (),
    categorical: Sequence[str] = (),
    text: Sequence[str] = (),
    **kw: Any,
) -> Any:
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=list(numerical),
        categorical_columns=list(categorical),
        text_columns=list(text),
        **kw,
    )


TEXT_LENGTH_SUFFIX = " (characters)"


def length_column(column: str) -> str:
    """The derived numeric column holding a text feature's length in characters."""
    return f"{column}{TEXT_LENGTH_SUFFIX}"


def with_text_lengths(frame: pd.DataFrame, text: Sequence[str]) -> pd.DataFrame:
    """The frame with one length column per text feature (0 for missing text), so that
    Evidently checks the lengths as numbers: empty texts, their range, their drift."""
    if not text:
        return frame
    lengths = {
        length_column(c): frame[c].fillna("").astype(str).str.len().astype(float) for c in text
    }
    return frame.assign(**lengths)


def plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain strings: Evidently compares categorical columns by value."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object)
    return out


def metric(name: str, tests: list[Any]) -> Any:
    """The Evidently metric that gates our metric `name` (`tasks.METRICS`), with `tests`."""
    import evidently.metrics as em

    spec = METRICS[name]
    return getattr(em, spec.evidently)(**{spec.tests_arg: tests})


def scored(y_true: Any, outputs: np.ndarray, schema: Schema) -> tuple[pd.DataFrame, Any]:
    """The target and the model's outputs as a frame and data definition Evidently reads as
    the schema's task (`Task.evidently_frame`)."""
    import evidently

    frame, view = schema.kind.evidently_frame(y_true, outputs, schema)
    kind = getattr(evidently, view.kind)(**view.arguments)
    return frame, definition(view.numerical, view.categorical, **{view.slot: [kind]})


_DISTINCT: Any = None


def distinct_count_metric() -> Any:
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
