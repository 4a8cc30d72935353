"""The production window (prediction log + delayed labels) and the retrain decision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from flowship.checks import CheckResult, QualityReport, all_checks, drifted_columns
from flowship.compare import LiveComparison
from flowship.config import DataSettings, MonitorSettings
from flowship.data import validate_dataset
from flowship.errors import MonitorError
from flowship.predict import is_log_column, read_prediction_log, scan_prediction_log
from flowship.schema import Schema
from flowship.sources import read_source

SCORE = "prediction_score"


@dataclass(frozen=True)
class Window:
    """Production rows to check: features, the model's score and, where known, the label."""

    frame: pd.DataFrame
    source: str
    labelled: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Where the window came from and its size, as the verdict records it."""
        return {
            "source": self.source,
            "rows": len(self.frame),
            "labelled": self.labelled,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Feedback:
    """Delayed labels that can be trusted, and what was kept out and why."""

    frame: pd.DataFrame  # request_id, row, <target>: one usable label per prediction
    notes: list[str] = field(default_factory=list)


def read_feedback(directory: str | Path, target: str, schema: Schema | None = None) -> Feedback:
    """Delayed labels: CSV files with `request_id`, `row` and the target column.

    Labels are kept out, and said so in the notes, when the same request and row are labelled
    differently (in one file or across files), or (with the champion's `schema`) when a label
    is not one of its classes (or not a number, for regression). Empty files are skipped.

    Raises:
        MonitorError: a file lacks those columns, or is not readable text (naming the file).
    """
    frames, notes = [], []
    for path in sorted(Path(directory).glob("*.csv")):
        try:
            frame = pd.read_csv(path, dtype={"request_id": str})
        except pd.errors.EmptyDataError:
            notes.append(f"feedback file {path.name} is empty: skipped")
            continue
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise MonitorError(
                f"feedback file {path} is not a readable UTF-8 CSV ({exc}); write it as UTF-8 "
                "text with the columns request_id,row,<target>, or remove it"
            ) from None
        missing = {"request_id", "row", target} - set(frame.columns)
        if missing:
            raise MonitorError(
                f"feedback file {path} lacks column(s) {sorted(missing)}; it needs request_id, "
                f"row and {target!r} (the true label)"
            )
        frames.append(frame[["request_id", "row", target]])
    if not frames:
        return Feedback(pd.DataFrame(columns=["request_id", "row", target]), notes)
    labels = pd.concat(frames, ignore_index=True).dropna(subset=[target])
    if schema is not None:
        parsed = schema.kind.labels_from(labels[target], schema)
        invalid = parsed.isna()
        if invalid.any():
            examples = ", ".join(repr(v) for v in labels.loc[invalid, target].unique()[:3])
            notes.append(
                f"{int(invalid.sum())} feedback label(s) are not "
                + (
                    f"classes of the champion {schema.classes}"
                    if schema.kind.classifies
                    else "numbers"
                )
                + f" (e.g. {examples}): kept out of the checks and the retraining"
            )
        labels = labels.assign(**{target: parsed})[~invalid]
    key = ["request_id", "row"]
    labels = labels.drop_duplicates([*key, target])
    conflicting = labels.duplicated(key, keep=False)
    if conflicting.any():
        count = int(labels.loc[conflicting, key].drop_duplicates().shape[0])
        notes.append(
            f"{count} prediction(s) have contradicting feedback labels (the same request_id and "
            "row labelled differently): kept out of the checks and the retraining"
        )
        labels = labels[~conflicting]
    return Feedback(labels.reset_index(drop=True), notes)


def load_window(
    monitor: MonitorSettings,
    schema: Schema,
    champion_run: str,
    log_dir: str | Path,
    current_file: str | None = None,
    since: datetime | None = None,
) -> Window:
    """The current production window: a file (`--current`), or the prediction log's rows of
    the champion since a time / in the last `window_hours` / the last `window_rows`, with
    delayed labels joined by request id and row.

    Raises:
        MonitorError: an empty window, a window without the champion's predictions, or bad
            feedback files.
    """
    notes: list[str] = []
    if current_file:
        frame = read_source(current_file)
        source = f"file {current_file}"
        labelled = int(frame[schema.target].notna().sum()) if schema.target in frame else 0
        if frame.empty:
            raise MonitorError(f"{current_file} has no rows")
        _require_rows(len(frame), monitor.min_rows)
        return Window(frame.reset_index(drop=True), source, labelled, notes)

    if since is None and monitor.window_hours:
        since = datetime.now(UTC) - timedelta(hours=monitor.window_hours)
    scan = scan_prediction_log(log_dir, since=since, max_rows=monitor.max_window_rows)
    if scan.skipped:
        shown = "; ".join(scan.skipped[:5]) + (" ..." if len(scan.skipped) > 5 else "")
        if scan.skipped_share > monitor.max_bad_log_share:
            raise MonitorError(
                f"{len(scan.skipped)} of {scan.lines} lines of the prediction log in {log_dir} "
                f"cannot be read ({scan.skipped_share:.1%}, more than [monitor] "
                f"max_bad_log_share = {monitor.max_bad_log_share:.1%}): {shown}"
            )
        notes.append(f"skipped {len(scan.skipped)} unreadable log line(s): {shown}")
    if len(scan.frame) == monitor.max_window_rows:
        notes.append(
            f"the log holds more rows: the newest {monitor.max_window_rows:,} were read "
            "([monitor] max_window_rows)"
        )
    log = scan.frame
    if log.empty:
        raise MonitorError(
            f"no predictions logged in {log_dir}"
            + (f" since {since.isoformat()}" if since else "")
            + ": send traffic (make simulate) or point [serving] prediction_log_dir at the log"
        )
    runs = log["run"].value_counts().to_dict()
    if champion_run not in runs:
        raise MonitorError(
            f"the window holds predictions of {runs} but none of the champion {champion_run}; "
            "deploy the champion (make bento) or monitor the model that is serving"
        )
    if len(runs) > 1:
        others = {k: v for k, v in runs.items() if k != champion_run}
        notes.append(f"ignored {sum(others.values())} rows of other models: {others}")
        log = log[log["run"] == champion_run]
    if monitor.window_rows:
        log = log.tail(monitor.window_rows)
    labels = read_feedback(monitor.feedback_dir, schema.target, schema)
    notes += labels.notes
    feedback = labels.frame
    frame = log.merge(feedback, on=["request_id", "row"], how="left")
    known = set(zip(log["request_id"], log["row"], strict=True))
    unknown = sum(
        1 for key in zip(feedback["request_id"], feedback["row"], strict=True) if key not in known
    )
    if unknown:
        notes.append(f"{unknown} feedback label(s) belong to requests outside this window")
    labelled = int(frame[schema.target].notna().sum())
    _require_rows(len(frame), monitor.min_rows)
    return Window(frame.reset_index(drop=True), f"prediction log {log_dir}", labelled, notes)


def _require_rows(rows: int, minimum: int) -> None:
    if rows < minimum:
        raise MonitorError(
            f"the window has {rows} rows, fewer than [monitor] min_rows = {minimum}; wait for "
            "more traffic, widen the window, or lower min_rows"
        )


def prepare_window(window: Window, schema: Schema, model: Any) -> pd.DataFrame:
    """Typed features, the label where known, the model's outputs (scored now when the window
    is a file without them) and the watched score column."""
    frame = window.frame.copy()
    for column in schema.features:
        if column not in frame:
            raise MonitorError(f"the window lacks feature {column!r} of the champion's schema")
    task = schema.kind
    typed = validate_dataset(frame, schema.model_copy(update={"id_column": None}), target=False)
    out = typed.copy()
    out[schema.target] = (
        frame[schema.target].to_numpy() if schema.target in frame else np.full(len(frame), np.nan)
    )
    columns = task.output_columns(schema)
    if all(c in frame for c in columns):
        out[columns] = frame[columns].to_numpy(dtype=float)
    else:
        outputs = task.outputs(model, typed[schema.features])
        out[columns] = task.prediction_table(outputs, schema)[columns].to_numpy(dtype=float)
    out[SCORE] = task.watched_score(out, schema)
    return out


def reference_frame(
    holdout: pd.DataFrame, predictions: pd.DataFrame, schema: Schema
) -> pd.DataFrame:
    """The champion's holdout with its own holdout predictions and the watched score."""
    out = holdout.reset_index(drop=True).copy()
    for column in schema.kind.output_columns(schema):
        out[column] = predictions[column].to_numpy()
    out[SCORE] = schema.kind.watched_score(out, schema)
    return out


class MonitorVerdict(BaseModel):
    """What the monitor concluded about a window, with every check."""

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: str
    status: Literal["ok", "alarm", "retrain"]
    retrain: bool
    reasons: list[str]
    checks: list[CheckResult]
    champion: str
    window: dict[str, Any]
    challenger: LiveComparison | None = None  # the live comparison, when a challenger served

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def decide_retrain(
    reports: list[QualityReport],
    champion: str,
    window: Window,
    now: datetime | None = None,
    live: LiveComparison | None = None,
) -> MonitorVerdict:
    """Retrain when drift or decay fails a critical check; raise an alarm (no retrain) when
    only data quality fails: broken or new inputs need a look before a model learns them.
    A live comparison with a challenger (`flowship.compare`) is reported beside, and never
    changes the status: promoting a challenger is `make promote-challenger`."""
    checks = all_checks(reports)
    failed = [c for c in checks if c.blocking]
    drift_or_decay = [c for c in failed if c.group in {"drift", "model_quality"}]
    quality = [c for c in failed if c.group == "data_quality"]
    status: Literal["ok", "alarm", "retrain"] = (
        "retrain" if drift_or_decay else "alarm" if quality else "ok"
    )
    reasons = [f"{c.group}: {c.label} = {_num(c.value)} (limit {c.condition})" for c in failed]
    drifted = drifted_columns(checks)
    if drifted:
        reasons.append(f"drifted columns: {', '.join(drifted)}")
    if not window.labelled:
        reasons.append("no delayed labels in the window: model quality not checked")
    if status == "ok":
        reasons.insert(0, "no drift, decay or data-quality problem beyond the [monitor] limits")
    if live is not None:
        reasons.append(f"challenger {live.challenger_run}: {live.summary()}")
    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    body = json.dumps([created, champion, [c.model_dump() for c in checks]], sort_keys=True)
    return MonitorVerdict(
        id=hashlib.sha256(body.encode()).hexdigest()[:12],
        created_at=created,
        status=status,
        retrain=status == "retrain",
        reasons=reasons,
        checks=checks,
        champion=champion,
        window=window.summary(),
        challenger=live,
    )


def retrain_event_payload(verdict: MonitorVerdict, monitor_run: str) -> dict[str, str] | None:
    """The payload of the Argo event that starts TrainFlow, or None when no retrain is due.

    TrainFlow's `@trigger` maps `with_feedback` onto its `--with-feedback` parameter, so the
    retrained model also learns from the labelled production rows; the rest is lineage.
    """
    if not verdict.retrain:
        return None
    return {
        "with_feedback": "true",
        "monitor_run": monitor_run,
        "monitor_verdict": verdict.id,
        "champion": verdict.champion,
        "reasons": "; ".join(verdict.reasons),
    }


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def labelled_production_rows(
    log_dir: str | Path,
    feedback_dir: str | Path,
    data: DataSettings,
    schema: Schema | None = None,
) -> pd.DataFrame:
    """Logged production rows that have a trusted delayed label (see `read_feedback`; with
    the champion's `schema`, labels outside its classes are kept out), in the training
    table's columns (for retraining: the data source plus these, deduplicated by id).

    Raises:
        MonitorError: the logged rows lack a configured column.
    """
    log = read_prediction_log(log_dir)
    features = [
        *(data.numeric_features or []),
        *(data.categorical_features or []),
        *(data.text_features or []),
    ]
    if not features:
        reserved = {data.id_column, data.target}
        features = [c for c in log.columns if c not in reserved and not is_log_column(c)]
    columns = [c for c in [data.id_column, *features, data.target] if c]
    if log.empty:
        return pd.DataFrame(columns=columns)
    feedback = read_feedback(feedback_dir, data.target, schema).frame
    joined = log.merge(feedback, on=["request_id", "row"], how="inner")
    missing = [c for c in columns if c not in joined]
    if missing:
        raise MonitorError(
            f"logged rows lack {missing}; clients must send them (the id column is optional "
            "in requests but needed to deduplicate feedback)"
        )
    return joined[columns].reset_index(drop=True)
