"""Check results and the declared checks: what the gate, the monitor and the cards work from.

Every check is declared once as a `CheckSpec` with a stable id; results carry that id, and code
finds a check by its id (`DRIFT_SHARE`), never by the text a card shows. Nothing here imports
Evidently: `flowship.quality` computes the checks and returns these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

Status = Literal["pass", "fail", "warn", "skipped"]
Group = Literal["data_quality", "contract", "drift", "model_quality", "champion", "latency", "live"]


@dataclass(frozen=True)
class CheckSpec:
    """One kind of check: its id, group, the name cards show, whether a failure blocks by
    default (a setting may decide instead, e.g. `[gate] drift_blocks`) and what it compares."""

    id: str
    group: Group
    name: str
    critical: bool
    compares: str


# Release checks (TrainFlow's gate)
DATA_ROWS = "data.rows"
DATA_MISSING = "data.missing_share"
DATA_NOT_CONSTANT = "data.not_constant"
DATA_TARGET_CLASSES = "data.target_classes"
DATA_CLASS_SHARE = "data.class_share"
DATA_TARGET_VARIES = "data.target_varies"
DATA_TEXT_EMPTY = "data.text_empty"
CONTRACT = "contract.unchanged"
DRIFT_SHARE = "drift.share"
DRIFT_COLUMN = "drift.column"
DRIFT_VS_CHAMPION = "drift.vs_champion"
MODEL_METRIC = "model.metric"
CHAMPION_METRIC = "champion.metric"
CHAMPION_OWN_HOLDOUT = "champion.own_holdout"
LATENCY_ROW = "latency.single_row"
LATENCY_BATCH = "latency.batch"
# Production checks (MonitorFlow); drift and model quality reuse the specs above
PRODUCTION_MISSING = "production.missing_share"
PRODUCTION_NEW_CATEGORIES = "production.new_categories"
PRODUCTION_OUT_OF_RANGE = "production.out_of_range"
PRODUCTION_TEXT_LENGTH = "production.text_length"
# Champion vs challenger on labelled live rows (`make compare`, MonitorFlow)
LIVE_METRIC = "live.metric"
LIVE_LABELS = "live.labels"

CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(DATA_ROWS, "data_quality", "row count", True, "rows >= [gate] min_rows"),
    CheckSpec(
        DATA_MISSING,
        "data_quality",
        "missing share",
        True,
        "each column's missing share <= [gate] max_missing_share",
    ),
    CheckSpec(
        DATA_NOT_CONSTANT, "data_quality", "not constant", True, "each feature has 2+ values"
    ),
    CheckSpec(
        DATA_TARGET_CLASSES, "data_quality", "target classes", True, "the target has 2+ classes"
    ),
    CheckSpec(
        DATA_CLASS_SHARE,
        "data_quality",
        "class share",
        True,
        "each class's share >= [gate] min_class_share",
    ),
    CheckSpec(
        DATA_TARGET_VARIES, "data_quality", "target varies", True, "the target has 2+ values"
    ),
    CheckSpec(
        DATA_TEXT_EMPTY,
        "data_quality",
        "empty text share",
        True,
        "each text feature's share of empty (or missing) texts <= [gate] max_missing_share",
    ),
    CheckSpec(
        CONTRACT,
        "contract",
        "contract",
        True,
        "task, target, classes and features (with their kinds) equal the champion's; a change "
        "is promoted only with --accept-new-contract",
    ),
    CheckSpec(
        DRIFT_SHARE,
        "drift",
        "drifted share",
        True,
        "share of drifted columns <= max_drifted_share (gate: against the champion's training "
        "data; monitor: production against the champion's holdout)",
    ),
    CheckSpec(DRIFT_COLUMN, "drift", "column drift", False, "one column's distribution"),
    CheckSpec(
        DRIFT_VS_CHAMPION, "drift", "drift vs champion", False, "training data vs the champion's"
    ),
    CheckSpec(
        MODEL_METRIC,
        "model_quality",
        "{metric}",
        True,
        "a holdout metric against [gate] min_metrics (monitor: labelled production rows against "
        "the champion's holdout value and [monitor] max_metric_drop)",
    ),
    CheckSpec(
        CHAMPION_METRIC,
        "champion",
        "{metric} vs champion",
        True,
        "the challenger's metric vs the champion's on the same holdout, within max_regression",
    ),
    CheckSpec(
        CHAMPION_OWN_HOLDOUT,
        "champion",
        "{metric} vs champion on the champion's own holdout",
        True,
        "in a retraining with feedback: the challenger's metric on the champion's original "
        "holdout (rows no feedback label can poison), within max_regression",
    ),
    CheckSpec(
        LATENCY_ROW,
        "latency",
        "predict latency p99 ms, 1 row",
        False,
        "p99 of in-process single-row predictions (the service's path, one thread) <= [gate] "
        "max_latency_ms; blocks only with [gate] latency_blocks = true",
    ),
    CheckSpec(
        LATENCY_BATCH,
        "latency",
        "predict latency p99 ms, 100 rows",
        False,
        "p99 of in-process 100-row predictions <= [gate] max_batch_latency_ms; blocks only with "
        "[gate] latency_blocks = true",
    ),
    CheckSpec(
        PRODUCTION_MISSING,
        "data_quality",
        "missing share vs reference",
        True,
        "each feature's missing share <= the reference's + [monitor] max_missing_increase",
    ),
    CheckSpec(
        PRODUCTION_NEW_CATEGORIES,
        "data_quality",
        "new categories",
        True,
        "share of categories never seen in training <= [monitor] max_new_category_share",
    ),
    CheckSpec(
        PRODUCTION_OUT_OF_RANGE,
        "data_quality",
        "out of training range",
        True,
        "share of numbers outside the training range <= [monitor] max_out_of_range_share",
    ),
    CheckSpec(
        PRODUCTION_TEXT_LENGTH,
        "data_quality",
        "text length out of training range",
        True,
        "share of texts shorter or longer than in training <= [monitor] max_out_of_range_share",
    ),
    CheckSpec(
        LIVE_LABELS,
        "live",
        "labelled rows both models scored",
        True,
        "labelled production rows with the champion's and the challenger's predictions >= "
        "[gate] live_min_labels",
    ),
    CheckSpec(
        LIVE_METRIC,
        "live",
        "{metric}: challenger vs champion, live",
        True,
        "the challenger's metric minus the champion's on the same labelled live rows (lower "
        "end of its 95% bootstrap interval) >= -[gate] live_max_regression",
    ),
)
SPECS: dict[str, CheckSpec] = {spec.id: spec for spec in CHECKS}


class CheckResult(BaseModel):
    """One check's outcome, as read from Evidently's test results."""

    model_config = ConfigDict(frozen=True)

    id: str
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


def make_check(
    check_id: str,
    status: Status,
    *,
    critical: bool | None = None,
    name: str | None = None,
    metric: str = "",
    **fields: Any,
) -> CheckResult:
    """A result of the declared check `check_id`.

    `critical` overrides the spec's default; a failed check that is not critical is a warning.
    The name is the spec's (with `{metric}` filled in) unless `name` is given.
    """
    spec = SPECS[check_id]
    critical = spec.critical if critical is None else critical
    if status == "fail" and not critical:
        status = "warn"
    return CheckResult(
        id=check_id,
        name=name if name is not None else spec.name.format(metric=metric),
        group=spec.group,
        status=status,
        critical=critical,
        **fields,
    )


def skipped_check(check_id: str, description: str, metric: str = "") -> CheckResult:
    """A check that could not run (e.g. no champion yet), shown as such on the card."""
    return make_check(check_id, "skipped", critical=False, metric=metric, description=description)


def drifted_columns(checks: Iterable[CheckResult]) -> list[str]:
    """The columns whose own drift check did not pass."""
    return [str(c.column) for c in checks if c.id == DRIFT_COLUMN and c.status != "pass"]


@dataclass(frozen=True)
class QualityReport:
    """The checks of one Evidently report and the report itself as self-contained HTML."""

    title: str
    checks: list[CheckResult]
    html: str = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)
    snapshot: str = field(default="", repr=False)  # Evidently's own serialisation, for workspaces
    note: str = ""  # e.g. which sample the report was computed on, and its sampling error


def all_checks(reports: Iterable[QualityReport]) -> list[CheckResult]:
    """Every check of every report, in report order."""
    return [check for report in reports for check in report.checks]


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
    def complete(self) -> bool:
        return self.rows >= self.of_rows

    @property
    def share_error(self) -> float:
        """The 95% margin of a share (worst case p = 0.5, finite population corrected)."""
        if self.complete:
            return 0.0
        fpc = (self.of_rows - self.rows) / (self.of_rows - 1)
        return float(1.96 * np.sqrt(0.25 / self.rows * fpc))

    def describe(self, name: str) -> str:
        if self.complete:
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
