"""Prediction helpers for the service: the request schema from the stored schema, rows to
predictions, a micro-batcher, and the prediction log the monitor reads back."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, create_model

from flowship.features import MISSING
from flowship.schema import Schema, proba_column

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def row_model(schema: Schema) -> type[BaseModel]:
    """A pydantic model of one input record: every feature required, `null` for missing.

    Numbers must be JSON numbers (finite); categories are strings, and categories never seen
    in training are accepted (the model ignores them). The id column, if any, is optional.
    """
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
            Annotated[str, Strict()] | None,
            Field(..., description=f"category; seen in training: {', '.join(known[:20])}"),
        )
    if schema.id_column:
        fields[schema.id_column] = (str | int | None, Field(None, description="optional row id"))
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


def answer_model(schema: Schema) -> type[BaseModel]:
    """The answer of one row for the schema's task, as `/predict` documents it."""
    return ClassPrediction if schema.kind.classifies else ValuePrediction


def answers(predictions: Predictions) -> list[BaseModel]:
    """Each row's answer (built without re-validation: the values come from the model)."""
    if not predictions.classes:
        return [ValuePrediction.model_construct(prediction=v) for v in predictions.labels]
    names = predictions.classes
    return [
        ClassPrediction.model_construct(
            prediction=label, probabilities=dict(zip(names, proba, strict=True))
        )
        for label, proba in zip(predictions.labels, predictions.probabilities, strict=True)
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
                self.index.append({str(c): width + i for i, c in enumerate(categories)})
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
                slot = index.get(MISSING if value is None else str(value))
                if slot is not None:
                    x[i, k + slot] = 1.0
        return x

    @classmethod
    def build(
        cls, pipeline: Any, schema: Schema, probe: Sequence[dict[str, Any]]
    ) -> FastPredictor | None:
        """A checked fast path, or None when it would not give the pipeline's outputs."""
        try:
            fast = cls(pipeline, schema)
            expected = schema.kind.outputs(pipeline, _frame(probe, schema))
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
    rows.append({c: None for c in schema.features})
    rows.append({**rows[0], **{c: "never-seen" for c in schema.categorical}})
    return rows


def _frame(rows: Sequence[dict[str, Any]], schema: Schema) -> pd.DataFrame:
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
    outputs = fast.outputs(rows) if fast is not None else task.outputs(model, _frame(rows, schema))
    probabilities = outputs.tolist() if task.classifies else [[] for _ in rows]
    return Predictions(task.predicted(outputs, schema), probabilities, classes)


def unknown_categories(schema: Schema, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many values per categorical feature were never seen in training."""
    counts: dict[str, int] = {}
    for column in schema.categorical:
        known = set(schema.categories.get(column, []))
        n = sum(1 for row in rows if row.get(column) is not None and row[column] not in known)
        if n:
            counts[column] = n
    return counts


class PredictionLog:
    """Append-only JSON lines, one line per request (its rows and their predictions), rotated
    by size.

    Each worker process writes its own files (`predictions-<UTC start>-<pid>.jsonl`), so lines
    never interleave; files are flushed after every batch so readers see whole requests.
    """

    def __init__(self, directory: str | Path, model_version: str, rotate_mb: float, run: str = ""):
        self.directory = Path(directory)
        self.model_version = model_version
        self.run = run
        self.rotate_bytes = int(rotate_mb * 1024 * 1024)
        self._file: Any = None
        self._size = 0

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"predictions-{stamp}-{os.getpid()}.jsonl"
        self._file = path.open("a", encoding="utf-8")
        self._size = 0

    def write(
        self,
        request_id: str,
        rows: Sequence[dict[str, Any]],
        predictions: Predictions,
        when: float | None = None,
    ) -> None:
        """Log one request: when, its id, the model version, its rows and their predictions."""
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
            },
            separators=(",", ":"),
        )
        if self._file is None or self._size >= self.rotate_bytes:
            self.close()
            self._open()
        self._file.write(line + "\n")
        self._size += len(line) + 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


LOG_COLUMNS = ["ts", "request_id", "row", "model_version", "run", "prediction"]


def read_prediction_log(directory: str | Path, since: datetime | None = None) -> pd.DataFrame:
    """Every logged row under `directory`, oldest first: ts, request_id, row (index within its
    request), model_version, run, prediction, one `proba_<class>` column per class and one
    column per feature. A `since` without a timezone is taken as UTC."""
    rows: list[dict[str, Any]] = []
    meta: dict[str, list[Any]] = {k: [] for k in LOG_COLUMNS if k != "prediction"}
    predictions: list[Any] = []
    probabilities: list[list[float]] = []
    classes: list[str] = []
    for path in sorted(Path(directory).glob("predictions-*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                record = json.loads(line)
                n = len(record["rows"])
                rows.extend(record["rows"])
                for key in ("ts", "request_id", "model_version"):
                    meta[key].extend([record[key]] * n)
                meta["run"].extend([record.get("run", "")] * n)
                meta["row"].extend(range(n))
                predictions.extend(record["predictions"])
                probabilities.extend(record["probabilities"])
                classes = record["classes"]
    if not rows:
        return pd.DataFrame(columns=LOG_COLUMNS)
    out = pd.DataFrame(meta)
    out["prediction"] = predictions
    # a column whose values were all null in some request still reads back as numbers
    features = pd.DataFrame.from_records(rows).infer_objects()
    out = pd.concat([out, features.drop(columns=[c for c in features if c in out])], axis=1)
    if classes:
        proba = np.asarray(probabilities, dtype=float).reshape(len(rows), len(classes))
        for i, name in enumerate(classes):
            out[proba_column(name)] = proba[:, i]
    out["ts"] = pd.to_datetime(out["ts"], utc=True, format="ISO8601")
    if since is not None:
        stamp = pd.Timestamp(since)
        out = out[out["ts"] >= (stamp if stamp.tzinfo else stamp.tz_localize("UTC"))]
    return out.sort_values(["ts", "request_id", "row"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Job:
    """One request waiting for the batcher."""

    request_id: str
    rows: list[dict[str, Any]]
    received: float


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
