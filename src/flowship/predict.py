"""Prediction helpers for the service: the request schema from the stored schema, rows to
predictions, a micro-batcher, and the prediction log the monitor reads back."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, create_model

from flowship.schema import MISSING, PROBA_PREFIX, Schema, category_text, proba_column

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
_log = logging.getLogger("flowship.predict")


def row_model(
    schema: Schema, max_string_length: int, max_text_length: int = 10_000
) -> type[BaseModel]:
    """A pydantic model of one input record: every feature required, `null` for missing.

    Numbers must be JSON numbers (finite); categories are strings of at most
    `max_string_length` characters, and categories never seen in training are accepted (the
    model ignores them); text features are strings of at most `max_text_length`. The id
    column, if any, is optional.
    """
    text = Annotated[str, Strict(), StringConstraints(max_length=max_string_length)]
    # a category may come as a number too (a rating, a code): it matches as its category text
    label = text | Annotated[int, Strict()] | Number | Annotated[bool, Strict()]
    prose = Annotated[str, Strict(), StringConstraints(max_length=max_text_length)]
    fields: dict[str, Any] = {}
    for column in schema.numeric:
        low, high = schema.numeric_ranges.get(column, (0.0, 0.0))
        fields[column] = (
            Number | None,
            Field(..., description=f"numeric; seen in training: {low:g} to {high:g}"),
        )
    for column in schema.categorical:
        known = schema.categories.get(column, [])
        fields[column] = (
            label | None,
            Field(..., description=f"category; seen in training: {', '.join(known[:20])}"),
        )
    for column in schema.text:
        low, high = schema.text_lengths.get(column, (0, 0))
        fields[column] = (
            prose | None,
            Field(..., description=f"free text; {low} to {high} characters in training"),
        )
    if schema.id_column:
        fields[schema.id_column] = (text | int | None, Field(None, description="optional row id"))
    return create_model("Row", __config__=ConfigDict(extra="forbid"), **fields)


@dataclass(frozen=True)
class Predictions:
    """The predictions of a batch of rows as plain Python values: the predicted class and the
    probability of every class, or (regression, no classes) the predicted value."""

    labels: list[Any]
    probabilities: list[list[float]]  # one list per row; empty lists for regression
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, start: int, stop: int) -> Predictions:
        return Predictions(self.labels[start:stop], self.probabilities[start:stop], self.classes)


class ClassPrediction(BaseModel):
    """One row's answer from a classifier."""

    prediction: str | int | bool = Field(description="the most probable class")
    probabilities: dict[str, float] = Field(description="probability of every class")


class ValuePrediction(BaseModel):
    """One row's answer from a regression model."""

    prediction: float = Field(description="the predicted value")


class ClassPredictionBy(ClassPrediction):
    """One row's answer from a classifier, naming the model that gave it (A/B serving)."""

    model_version: str = Field(description="the model that answered this row")


class ValuePredictionBy(ValuePrediction):
    """One row's answer from a regression model, naming the model that gave it (A/B serving)."""

    model_version: str = Field(description="the model that answered this row")


def answer_model(schema: Schema, per_row_model: bool = False) -> type[BaseModel]:
    """The answer of one row for the schema's task, as `/predict` documents it (naming the
    model that answered each row when two models share the traffic)."""
    if schema.kind.classifies:
        return ClassPredictionBy if per_row_model else ClassPrediction
    return ValuePredictionBy if per_row_model else ValuePrediction


def answers(predictions: Predictions, models: Sequence[str] | None = None) -> list[BaseModel]:
    """Each row's answer (built without re-validation: the values come from the model), with
    the model that answered it when `models` names one per row."""
    extra: list[dict[str, str]] = (
        [{} for _ in predictions.labels]
        if models is None
        else [{"model_version": m} for m in models]
    )
    if not predictions.classes:
        value: Any = ValuePrediction if models is None else ValuePredictionBy
        return [
            value.model_construct(prediction=v, **e)
            for v, e in zip(predictions.labels, extra, strict=True)
        ]
    kind: Any = ClassPrediction if models is None else ClassPredictionBy
    names = predictions.classes
    return [
        kind.model_construct(
            prediction=label, probabilities=dict(zip(names, proba, strict=True)), **e
        )
        for label, proba, e in zip(
            predictions.labels, predictions.probabilities, extra, strict=True
        )
    ]


class FastPredictor:
    """The pipeline's own arithmetic on plain NumPy for small batches.

    scikit-learn's ColumnTransformer spends ~3 ms per call on pandas and validation whatever
    the batch size; this applies the fitted imputer medians, scaler and one-hot categories
    directly, then calls the fitted estimator. `build` checks it against the pipeline and
    returns None (use the pipeline) when the pipeline is not the shape it knows or differs.
    """

    def __init__(self, pipeline: Any, schema: Schema):
        pre, self.estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
        self.task = schema.kind
        self.numeric, self.categorical = list(schema.numeric), list(schema.categorical)
        names = [name for name, _, _ in pre.transformers_ if name != "remainder"]
        if names != [
            n for n, cols in (("numeric", self.numeric), ("categorical", self.categorical)) if cols
        ]:
            raise ValueError("unexpected preprocessing layout")
        self.median = self.mean = self.scale = np.zeros(0)
        if self.numeric:
            steps = pre.named_transformers_["numeric"].named_steps
            self.median = np.asarray(steps["impute"].statistics_, dtype=float)
            self.mean = np.asarray(steps["scale"].mean_, dtype=float)
            self.scale = np.asarray(steps["scale"].scale_, dtype=float)
            if not (len(self.median) == len(self.mean) == len(self.numeric)):
                raise ValueError("the imputer dropped a feature")
        self.index: list[dict[str, int]] = []
        width = 0
        if self.categorical:
            onehot = pre.named_transformers_["categorical"].named_steps["onehot"]
            for categories in onehot.categories_:
                self.index.append({category_text(c): width + i for i, c in enumerate(categories)})
                width += len(categories)
        self.width = len(self.numeric) + width

    def outputs(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """The fitted estimator's outputs (probabilities or values) for raw records."""
        return self.task.outputs(self.estimator, self._features(rows))

    def _features(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        n, k = len(rows), len(self.numeric)
        x = np.zeros((n, self.width))
        if k:
            raw = np.array(
                [[np.nan if r[c] is None else r[c] for c in self.numeric] for r in rows],
                dtype=float,
            )
            raw = np.where(np.isnan(raw), self.median, raw)
            x[:, :k] = (raw - self.mean) / self.scale
        for column, index in zip(self.categorical, self.index, strict=True):
            for i, row in enumerate(rows):
                value = row[column]
                slot = index.get(MISSING if value is None else category_text(value))
                if slot is not None:
                    x[i, k + slot] = 1.0
        return x

    def frame_outputs(self, frame: pd.DataFrame) -> np.ndarray:
        """`outputs` for the rows of a frame (a column per feature, missing as null/NaN), built
        column by column: the feature matrix is bit for bit the one `outputs` builds from the
        same rows as records, without a Python object per row (batch scoring)."""
        return self.task.outputs(self.estimator, self._frame_features(frame))

    def _frame_features(self, frame: pd.DataFrame) -> np.ndarray:
        n, k = len(frame), len(self.numeric)
        x = np.zeros((n, self.width))
        if k:
            raw = frame[self.numeric].to_numpy(dtype=float, na_value=np.nan)
            raw = np.where(np.isnan(raw), self.median, raw)
            x[:, :k] = (raw - self.mean) / self.scale
        for column, index in zip(self.categorical, self.index, strict=True):
            codes, values = category_codes(frame[column])
            # one slot per distinct value, looked up as `_features` looks up each row's value
            slots = np.array(
                [index.get(category_text(v), -1) for v in values] + [index.get(MISSING, -1)]
            )[codes]  # code -1 (missing) takes the last entry
            known = np.flatnonzero(slots >= 0)
            x[known, k + slots[known]] = 1.0
        return x

    @classmethod
    def build(
        cls, pipeline: Any, schema: Schema, probe: Sequence[dict[str, Any]]
    ) -> FastPredictor | None:
        """A checked fast path, or None when it would not give the pipeline's outputs."""
        try:
            fast = cls(pipeline, schema)
            expected = schema.kind.outputs(pipeline, frame_of(probe, schema))
            if np.allclose(fast.outputs(probe), expected, rtol=1e-12, atol=1e-12):
                return fast
        except (AttributeError, KeyError, TypeError, ValueError):
            pass
        return None


def probe_rows(schema: Schema) -> list[dict[str, Any]]:
    """Rows that exercise every path: typical values, missing values, unknown categories."""
    typical = {c: (lo + hi) / 2 for c, (lo, hi) in schema.numeric_ranges.items()}
    rows = []
    for j in range(4):
        row: dict[str, Any] = {c: typical.get(c, 0.0) * (0.5 + j / 3) for c in schema.numeric}
        for c in schema.categorical:
            known = schema.categories.get(c) or ["x"]
            row[c] = known[j % len(known)]
        rows.append(row)
    for row in rows:
        row.update({c: "a typical text of a few words" for c in schema.text})
    rows.append({c: None for c in schema.features})
    rows.append({**rows[0], **{c: "never-seen" for c in schema.categorical}})
    return rows


def frame_of(rows: Sequence[dict[str, Any]], schema: Schema) -> pd.DataFrame:
    """Raw records as the pipeline's input frame (numbers as float64, missing as NaN)."""
    frame = pd.DataFrame.from_records(rows, columns=schema.features)
    for column in schema.numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def predict_rows(
    model: Any, schema: Schema, rows: Sequence[dict[str, Any]], fast: FastPredictor | None = None
) -> Predictions:
    """Predictions for raw records (dicts of feature values): the class and every class's
    probability, or the value."""
    task = schema.kind
    classes = [str(c) for c in schema.classes]
    if not rows:
        return Predictions([], [], classes)
    outputs = (
        fast.outputs(rows) if fast is not None else task.outputs(model, frame_of(rows, schema))
    )
    probabilities = outputs.tolist() if task.classifies else [[] for _ in rows]
    return Predictions(task.predicted(outputs, schema), probabilities, classes)


def predict_frame(
    model: Any, schema: Schema, frame: pd.DataFrame, fast: FastPredictor | None = None
) -> np.ndarray:
    """The outputs `predict_rows` computes for the same rows (probabilities or values), for a
    frame with a column per feature (numbers as float64, missing as null/NaN): the fast path's
    own arithmetic when given, else the pipeline on the frame."""
    if fast is not None:
        return fast.frame_outputs(frame)
    return schema.kind.outputs(model, frame[schema.features])


def category_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Each row's index into the column's distinct values (-1: missing), and those values.

    Values that compare equal but read differently as categories (True and 1 in one column
    of Python objects) are told apart by their category text first."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), list(values.cat.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if values.dtype == object and any(isinstance(u, bool | np.bool_) for u in uniques):
        text = values.map(category_text, na_action="ignore")
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
    return codes, list(uniques)


def unknown_categories(schema: Schema, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many values per categorical feature were never seen in training."""
    counts: dict[str, int] = {}
    for column in schema.categorical:
        known = set(schema.categories.get(column, []))
        n = sum(
            1
            for row in rows
            if row.get(column) is not None and category_text(row[column]) not in known
        )
        if n:
            counts[column] = n
    return counts


class PredictionLog:
    """Append-only JSON lines, one line per request (its rows and their predictions), rotated
    by size, the oldest files deleted past `retain_mb` in all.

    Each worker process writes its own files (`predictions-<UTC start>-<pid>.jsonl`), so lines
    never interleave; files are flushed after every batch so readers see whole requests.

    A log that cannot be written (a folder that is not writable, a full disk) never fails a
    request: `write` returns False, `lost_rows` counts the rows not logged, one warning is
    logged per minute, and the next write tries again.
    """

    def __init__(
        self,
        directory: str | Path,
        model_version: str,
        rotate_mb: float,
        run: str = "",
        retain_mb: float | None = None,
    ):
        self.directory = Path(directory)
        self.model_version = model_version
        self.run = run
        self.rotate_bytes = int(rotate_mb * 1024 * 1024)
        self.retain_bytes = None if retain_mb is None else int(retain_mb * 1024 * 1024)
        self.lost_rows = 0
        self._file: Any = None
        self._size = 0
        self._warned = -math.inf
        self._lock = threading.Lock()  # the shadow scorer's thread writes too

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"predictions-{stamp}-{os.getpid()}.jsonl"
        self._file = path.open("a", encoding="utf-8")
        self._size = 0
        self._enforce_retention(path)

    def _enforce_retention(self, keep: Path) -> None:
        """Delete the oldest log files while all of them together exceed `retain_bytes`;
        files written in the last minute (another worker's current file) are kept."""
        if self.retain_bytes is None:
            return
        files = sorted(self.directory.glob("predictions-*.jsonl"))
        sizes = {f: f.stat().st_size for f in files}
        total = sum(sizes.values())
        now = time.time()
        for old in files:
            if total <= self.retain_bytes:
                break
            if old == keep or now - old.stat().st_mtime < 60:
                continue
            old.unlink(missing_ok=True)
            total -= sizes[old]

    def write(
        self,
        request_id: str,
        rows: Sequence[dict[str, Any]],
        predictions: Predictions,
        when: float | None = None,
        **fields: Any,
    ) -> bool:
        """Log one request: when, its id, the model version, its rows and their predictions
        (and any `fields`, e.g. the caller's key id); False when it could not be written."""
        stamp = time.time() if when is None else when
        ts = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
        line = json.dumps(
            {
                "ts": ts,
                "request_id": request_id,
                "model_version": self.model_version,
                "run": self.run,
                "classes": predictions.classes,
                "rows": list(rows),
                "predictions": predictions.labels,
                "probabilities": predictions.probabilities,
                **fields,
            },
            separators=(",", ":"),
        )
        with self._lock:
            try:
                if self._file is None or self._size >= self.rotate_bytes:
                    self._close()
                    self._open()
                self._file.write(line + "\n")
            except OSError as exc:
                self._lost(len(rows), exc)
                return False
            self._size += len(line) + 1
        return True

    def _lost(self, rows: int, exc: OSError) -> None:
        self.lost_rows += rows
        self._file = None  # try to open a new file next time
        if time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            _log.error(
                "prediction log %s is not writable (%s): answers go on, but %d rows were not "
                "logged so far and the monitor will not see them; fix the folder "
                "([serving] prediction_log_dir / FLOWSHIP_PREDICTION_LOG_DIR)",
                self.directory,
                exc,
                self.lost_rows,
            )

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                except OSError as exc:
                    self._lost(0, exc)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                self._lost(0, exc)
            self._file = None


LOG_COLUMNS = ["ts", "request_id", "row", "model_version", "run", "answered_by", "prediction"]
# With a challenger in the Bento: its model version, run, prediction and probabilities per row
CHALLENGER_PREFIX = "challenger_"


def is_log_column(name: str) -> bool:
    """Whether a column of a read-back log is the log's own (not a feature the client sent)."""
    return name in LOG_COLUMNS or name.startswith((PROBA_PREFIX, CHALLENGER_PREFIX))


@dataclass(frozen=True)
class LogScan:
    """The rows read from a prediction log, and the lines that could not be read."""

    frame: pd.DataFrame
    lines: int  # lines read (blank ones not counted)
    skipped: list[str]  # "<file>:<line>: <why>", one per unreadable line

    @property
    def skipped_share(self) -> float:
        return len(self.skipped) / self.lines if self.lines else 0.0


def scan_prediction_log(
    directory: str | Path, since: datetime | None = None, max_rows: int | None = None
) -> LogScan:
    """Every logged row under `directory` (since `since`; the newest `max_rows` at most, so
    memory stays bounded), oldest first, with the lines that could not be read.

    A line is skipped, and named, when it is not JSON (a truncated last line of a killed
    worker, garbage), lacks a field, or its rows, predictions and probabilities do not match.
    Files last written before `since` are not opened at all.
    """
    since_utc = _utc(since)
    since_text = None if since_utc is None else since_utc.isoformat(timespec="milliseconds")
    kept: deque[dict[str, Any]] = deque(maxlen=max_rows)
    skipped: list[str] = []
    shape: dict[str, Any] = {}  # a record left out by `since`: the columns of an empty window
    lines = 0
    for path in sorted(Path(directory).glob("predictions-*.jsonl")):
        if since_utc is not None and path.stat().st_mtime < since_utc.timestamp():
            shape = shape or _first_record(path)  # only for the columns of an empty window
            continue
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    records = _records(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    skipped.append(f"{path.name}:{number}: {_why(exc)}")
                    continue
                if since_text is not None and records and records[0]["ts"] < since_text:
                    shape = records[0]
                    continue  # the writer's UTC ISO stamps order as text
                kept.extend(records)
    if not kept:
        return LogScan(pd.DataFrame(columns=_ordered(list(shape) or LOG_COLUMNS)), lines, skipped)
    out = pd.DataFrame.from_records(list(kept))
    columns = _ordered(list(out.columns))
    fixed = [c for c in columns if is_log_column(c)]
    # a column whose values were all null in some request still reads back as numbers
    features = out.drop(columns=fixed).infer_objects()
    out = pd.concat([out[fixed], features], axis=1)[columns]
    out["ts"] = pd.to_datetime(out["ts"], utc=True, format="ISO8601")
    out = out.sort_values(["ts", "request_id", "row"], kind="stable").reset_index(drop=True)
    return LogScan(out, lines, skipped)


def read_prediction_log(directory: str | Path, since: datetime | None = None) -> pd.DataFrame:
    """Every readable logged row under `directory`, oldest first: ts, request_id, row (index
    within its request), model_version, run, prediction, one `proba_<class>` column per class
    and one column per feature. A `since` without a timezone is taken as UTC."""
    return scan_prediction_log(directory, since).frame


def _first_record(path: Path) -> dict[str, Any]:
    """The first readable row of a log file ({} when there is none)."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                records = _records(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue
            if records:
                return records[0]
    return {}


def _ordered(columns: list[str]) -> list[str]:
    """The log's columns first, then the features, one probability per class, and the
    challenger's columns."""
    probabilities = [c for c in columns if c.startswith(PROBA_PREFIX)]
    challenger = [c for c in columns if c.startswith(CHALLENGER_PREFIX)]
    features = [c for c in columns if not is_log_column(c)]
    return [*LOG_COLUMNS, *features, *probabilities, *challenger]


def _utc(when: datetime | None) -> pd.Timestamp | None:
    if when is None:
        return None
    stamp = pd.Timestamp(when)
    return stamp if stamp.tzinfo else stamp.tz_localize("UTC")


def _records(record: Any) -> list[dict[str, Any]]:
    """One logged request as one record per row (raises on a malformed line)."""
    rows, predictions = record["rows"], record["predictions"]
    classes = list(record.get("classes") or [])
    probabilities = record.get("probabilities") or [[] for _ in rows]
    if not isinstance(rows, list) or not (len(rows) == len(predictions) == len(probabilities)):
        raise ValueError("rows, predictions and probabilities differ in length")
    ts = str(record["ts"])
    answered_by = record.get("answered_by") or [record["model_version"]] * len(rows)
    challenger = _challenger_columns(record.get("challenger"), classes, len(rows))
    if len(answered_by) != len(rows):
        raise ValueError("answered_by and rows differ in length")
    out = []
    for i, (row, prediction, proba) in enumerate(
        zip(rows, predictions, probabilities, strict=True)
    ):
        if not isinstance(row, dict) or len(proba) != len(classes):
            raise ValueError("a row is not an object, or its probabilities do not match classes")
        out.append(
            {
                **row,
                "ts": ts,
                "request_id": str(record["request_id"]),
                "row": i,
                "model_version": record["model_version"],
                "run": record.get("run", ""),
                "answered_by": answered_by[i],
                "prediction": prediction,
                **{proba_column(c): float(p) for c, p in zip(classes, proba, strict=True)},
                **challenger[i],
            }
        )
    return out


def _challenger_columns(block: Any, classes: list[str], rows: int) -> list[dict[str, Any]]:
    """Per row: the challenger's model version, run, prediction and probabilities (NaN where
    it dropped the row); empty dicts when the request had no challenger."""
    if not block:
        return [{} for _ in range(rows)]
    predictions = block["predictions"]
    probabilities = block.get("probabilities") or [None] * rows
    if not (len(predictions) == len(probabilities) == rows):
        raise ValueError("the challenger's predictions and the rows differ in length")
    out = []
    for prediction, proba in zip(predictions, probabilities, strict=True):
        values = proba if proba is not None else [math.nan] * len(classes)
        if len(values) != len(classes):
            raise ValueError("the challenger's probabilities do not match classes")
        out.append(
            {
                f"{CHALLENGER_PREFIX}model_version": block["model_version"],
                f"{CHALLENGER_PREFIX}run": block.get("run", ""),
                f"{CHALLENGER_PREFIX}prediction": prediction,
                **{
                    CHALLENGER_PREFIX + proba_column(c): float(p)
                    for c, p in zip(classes, values, strict=True)
                },
            }
        )
    return out


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc} field"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON (a truncated or corrupted line)"
    return str(exc)


@dataclass(frozen=True)
class Job:
    """One request waiting for the batcher."""

    request_id: str
    rows: list[dict[str, Any]]
    received: float
    key_id: str | None = None  # the caller's API key id (never the key)


class MicroBatcher:
    """Serve many concurrent small requests from one model call.

    A request joins a queue; whenever the model is idle, everything queued (up to `max_rows`
    rows) goes out as one batch. There is no fixed wait: a lone request is answered at once,
    and under load batches grow by themselves while the previous one runs. The batch runs on
    the event loop itself: a worker thread would fight the loop for the GIL, and its 5 ms
    switch interval showed up as a long latency tail.
    """

    def __init__(self, handle: Callable[[list[Job]], list[Any]], max_rows: int):
        self._handle = handle
        self._max_rows = max_rows
        self._queue: list[tuple[Job, asyncio.Future[Any]]] = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, job: Job) -> Any:
        """Queue a job and wait for its result (what `handle` returned for it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((job, future))
        if not self._busy:
            self._busy = True
            self._task = loop.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[Job, asyncio.Future[Any]]]:
        batch: list[tuple[Job, asyncio.Future[Any]]] = []
        total = 0
        while self._queue and (not batch or total + len(self._queue[0][0].rows) <= self._max_rows):
            item = self._queue.pop(0)
            batch.append(item)
            total += len(item[0].rows)
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                try:
                    results = self._handle([job for job, _ in batch])
                except Exception as exc:  # each waiting request gets the error, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if len(results) != len(batch):
                    error = RuntimeError(f"{len(results)} results for {len(batch)} requests")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                await asyncio.sleep(0)  # let the loop read the requests that arrived meanwhile
        finally:
            self._busy = False


def split_results(sizes: Sequence[int], predictions: Predictions) -> list[Predictions]:
    """Cut a batch's predictions back into one `Predictions` per request."""
    out, start = [], 0
    for size in sizes:
        out.append(predictions.take(start, start + size))
        start += size
    return out
