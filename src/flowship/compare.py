"""Champion against challenger on the same labelled live rows: the evidence `make compare`,
MonitorFlow and `make promote-challenger` decide on.

A Bento with a challenger logs both models' predictions of every row it could (shadow or A/B,
`flowship.challenger`); delayed labels join them by request and row. On the rows labelled and
scored by both, Evidently computes the configured metric for each model
(`flowship.quality.live`), and a paired bootstrap over the rows gives a 95% interval of the
difference. The live evidence favours the challenger when there are at least `[gate]
live_min_labels` such rows, the challenger is better on them, and the lower end of the interval
is above `-[gate] live_max_regression`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flowship.checks import CheckResult
from flowship.config import GateSettings
from flowship.errors import MonitorError
from flowship.predict import CHALLENGER_PREFIX
from flowship.schema import Schema
from flowship.tasks import METRICS

BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_MAX_ROWS = 20_000  # rows resampled (a seeded sample of larger windows)


@dataclass(frozen=True)
class Paired:
    """Labelled rows with both models' outputs."""

    target: pd.Series
    champion: np.ndarray  # outputs: probabilities (rows × classes) or values
    challenger: np.ndarray
    challenger_run: str
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.target)


def paired_rows(window: pd.DataFrame, schema: Schema, champion_run: str) -> Paired:
    """The rows of a prediction-log window (joined with its delayed labels) that the champion
    and one challenger both scored and that have a label.

    Raises:
        MonitorError: the window holds no challenger predictions.
    """
    run_column = f"{CHALLENGER_PREFIX}run"
    if run_column not in window or window[run_column].isna().all():
        raise MonitorError(
            "the prediction log holds no challenger predictions: serve a Bento with one "
            "(`make bento CHALLENGER=TrainFlow/<id>`) and send it traffic"
        )
    notes: list[str] = []
    rows = window[window["run"] == champion_run] if "run" in window else window
    challengers = rows[run_column].dropna().value_counts()
    challenger_run = str(challengers.index[0])
    if len(challengers) > 1:
        notes.append(
            f"the window holds predictions of {len(challengers)} challengers; compared "
            f"{challenger_run}, the one with the most rows"
        )
    rows = rows[rows[run_column] == challenger_run]
    task = schema.kind
    columns = task.output_columns(schema)
    theirs = [CHALLENGER_PREFIX + c for c in columns]
    scored = rows[theirs].notna().all(axis=1)
    if (~scored).any():
        notes.append(
            f"{int((~scored).sum())} row(s) were not scored by the challenger (it was behind "
            "and dropped them)"
        )
    labelled = rows[scored & rows[schema.target].notna()] if schema.target in rows else rows[:0]
    champion = labelled[columns].to_numpy(dtype=float)
    challenger = labelled[theirs].to_numpy(dtype=float)
    if not task.classifies:
        champion, challenger = champion.reshape(-1), challenger.reshape(-1)
    return Paired(labelled[schema.target], champion, challenger, challenger_run, notes)


def bootstrap_difference(
    paired: Paired, schema: Schema, metric: str, seed: int = 0
) -> tuple[float, float, float]:
    """The challenger's metric minus the champion's (turned so that positive is better), and
    the 2.5% and 97.5% percentiles of that difference over paired bootstrap resamples."""
    task = schema.kind
    direction = METRICS[metric]
    rng = np.random.default_rng(seed)
    y = paired.target.to_numpy()
    ours, theirs = paired.champion, paired.challenger
    if len(y) > BOOTSTRAP_MAX_ROWS:
        keep = rng.choice(len(y), BOOTSTRAP_MAX_ROWS, replace=False)
        y, ours, theirs = y[keep], ours[keep], theirs[keep]

    def difference(index: np.ndarray) -> float:
        a = task.compute_metric(metric, y[index], ours[index], schema)
        b = task.compute_metric(metric, y[index], theirs[index], schema)
        return direction.score(b) - direction.score(a)

    point = difference(np.arange(len(y)))
    draws = np.array(
        [difference(rng.integers(0, len(y), len(y))) for _ in range(BOOTSTRAP_RESAMPLES)]
    )
    draws = draws[np.isfinite(draws)]  # a resample with one class has no ROC AUC
    if not len(draws):
        return point, float("nan"), float("nan")
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(point), float(low), float(high)


class LiveComparison(BaseModel):
    """Champion vs challenger on labelled live rows, and whether the evidence favours the
    challenger."""

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: str
    champion_run: str
    challenger_run: str
    metric: str
    rows: int
    champion: float | None
    challenger: float | None
    improvement: float | None  # challenger - champion, positive = better
    interval: tuple[float, float] | None
    favours_challenger: bool
    reasons: list[str]
    checks: list[CheckResult]
    notes: list[str] = []

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    def summary(self) -> str:
        """One line for the monitor card, the CLI and the promotion's audit trail."""
        if self.improvement is None or self.interval is None:
            return f"{self.rows} labelled rows both models scored: " + "; ".join(self.reasons)
        verb = "favours the challenger" if self.favours_challenger else "does not favour it"
        return (
            f"{self.metric} on {self.rows:,} labelled live rows: champion {self.champion:.4f}, "
            f"challenger {self.challenger:.4f} (difference {self.improvement:+.4f}, 95% "
            f"interval {self.interval[0]:+.4f} to {self.interval[1]:+.4f}): the evidence {verb}"
        )


def compare_live(
    paired: Paired,
    schema: Schema,
    metric: str,
    gate: GateSettings,
    champion_run: str,
    now: datetime | None = None,
) -> tuple[LiveComparison, str]:
    """The live comparison (and its Evidently report as HTML)."""
    from flowship.quality.live import check_live

    enough = paired.rows >= gate.live_min_labels
    point = low = high = None
    if enough:
        point, low, high = bootstrap_difference(paired, schema, metric)
    report = check_live(paired, schema, metric, gate, point, low, high)
    failing = [c for c in report.checks if c.blocking]
    favours = not failing and point is not None and point > 0
    reasons = [f"{c.label}: {c.description}" for c in failing]
    if not failing and not favours:
        reasons.append(f"the challenger is not better on {metric} on these rows")
    if favours:
        reasons.append("the live evidence favours the challenger")
    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    body = json.dumps([created, champion_run, paired.challenger_run, paired.rows, point])
    comparison = LiveComparison(
        id=hashlib.sha256(body.encode()).hexdigest()[:12],
        created_at=created,
        champion_run=champion_run,
        challenger_run=paired.challenger_run,
        metric=metric,
        rows=paired.rows,
        champion=report.summary.get("champion"),
        challenger=report.summary.get("challenger"),
        improvement=point,
        interval=None if low is None or high is None else (low, high),
        favours_challenger=favours,
        reasons=reasons,
        checks=report.checks,
        notes=list(paired.notes),
    )
    return comparison, report.html


def compare_window(
    frame: pd.DataFrame, schema: Schema, metric: str, gate: GateSettings, champion_run: str
) -> tuple[LiveComparison, str] | None:
    """The live comparison of a monitor window, or None when no challenger scored it."""
    column = f"{CHALLENGER_PREFIX}run"
    if column not in frame or frame[column].isna().all():
        return None
    return compare_live(
        paired_rows(frame, schema, champion_run), schema, metric, gate, champion_run
    )


def live_window(
    log_dir: str, feedback_dir: str, schema: Schema, since: datetime | None = None
) -> pd.DataFrame:
    """The prediction log (since `since`) joined with its trusted delayed labels."""
    from flowship.monitoring import read_feedback
    from flowship.predict import read_prediction_log

    log = read_prediction_log(log_dir, since)
    if log.empty:
        raise MonitorError(f"no predictions logged in {log_dir}: send traffic first")
    labels = read_feedback(feedback_dir, schema.target, schema).frame
    return log.merge(labels, on=["request_id", "row"], how="left")


def describe(comparison: LiveComparison) -> list[str]:
    """The comparison as lines of text (the CLI's output)."""
    lines = [
        f"champion   {comparison.champion_run}",
        f"challenger {comparison.challenger_run}",
        comparison.summary(),
    ]
    lines += [f"  - {r}" for r in comparison.reasons]
    lines += [f"  note: {n}" for n in comparison.notes]
    return lines
