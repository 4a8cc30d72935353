"""Prediction helpers for the service: the request schema from the stored schema, rows to
predictions, a micro-batcher, and the prediction log the monitor reads back."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, create_model

from flowship.data import Schema

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
class RowPrediction:
    prediction: Any
    probabilities: dict[str, float]


def predict_rows(model: Any, schema: Schema, rows: Sequence[dict[str, Any]]) -> list[RowPrediction]:
    """Predicted class and class probabilities for raw records (dicts of feature values)."""
    if not rows:
        return []
    frame = pd.DataFrame.from_records(rows, columns=schema.features)
    for column in schema.numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    proba = model.predict_proba(frame)
    names = [str(c) for c in schema.classes]
    best = proba.argmax(axis=1)
    return [
        RowPrediction(
            prediction=schema.classes[int(best[i])],
            probabilities=dict(zip(names, (float(p) for p in proba[i]), strict=True)),
        )
        for i in range(len(rows))
    ]


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
    """Append-only JSON lines, one line per predicted row, rotated by size.

    Each worker process writes its own files (`predictions-<UTC start>-<pid>.jsonl`), so lines
    never interleave; a file is flushed after every batch so readers see whole requests.
    """

    def __init__(self, directory: str | Path, model_version: str, rotate_mb: float = 64.0):
        self.directory = Path(directory)
        self.model_version = model_version
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
        predictions: Sequence[RowPrediction],
        when: float | None = None,
    ) -> None:
        """Log one request: its rows with their predictions."""
        ts = datetime.fromtimestamp(when or time.time(), UTC).isoformat(timespec="milliseconds")
        lines = "".join(
            json.dumps(
                {
                    "ts": ts,
                    "request_id": request_id,
                    "row": i,
                    "model_version": self.model_version,
                    "features": row,
                    "prediction": p.prediction,
                    "probabilities": p.probabilities,
                },
                separators=(",", ":"),
            )
            + "\n"
            for i, (row, p) in enumerate(zip(rows, predictions, strict=True))
        )
        if self._file is None or self._size >= self.rotate_bytes:
            self.close()
            self._open()
        self._file.write(lines)
        self._size += len(lines)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_prediction_log(directory: str | Path, since: datetime | None = None) -> pd.DataFrame:
    """Every logged row under `directory` (oldest first): ts, request_id, row, model_version,
    prediction, one `proba_<class>` column per class and one column per feature."""
    records = []
    for path in sorted(Path(directory).glob("predictions-*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    records.append(json.loads(line))
    if not records:
        return pd.DataFrame(columns=["ts", "request_id", "row", "model_version", "prediction"])
    frame = pd.json_normalize(records, sep=".")
    frame.columns = [
        c.removeprefix("features.").replace("probabilities.", "proba_") for c in frame.columns
    ]
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    if since is not None:
        frame = frame[frame["ts"] >= pd.Timestamp(since)]
    return frame.sort_values(["ts", "request_id", "row"]).reset_index(drop=True)


@dataclass(frozen=True)
class Job:
    """One request waiting for the batcher."""

    request_id: str
    rows: list[dict[str, Any]]
    received: float


class MicroBatcher:
    """Serve many concurrent small requests from one model call.

    A request joins a queue; whenever the model is idle, everything queued (up to `max_rows`
    rows) goes out as one batch in a worker thread. There is no fixed wait: a lone request is
    answered at once, and under load batches grow by themselves while the previous one runs.
    """

    def __init__(self, handle: Callable[[list[Job]], list[Any]], max_rows: int):
        self._handle = handle
        self._max_rows = max_rows
        self._queue: list[tuple[Job, asyncio.Future[Any]]] = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowship-batch")

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
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._take()
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._handle, [job for job, _ in batch]
                    )
                except Exception as exc:  # each waiting request gets the error, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._busy = False


def split_results(sizes: Sequence[int], items: Sequence[Any]) -> list[list[Any]]:
    """Cut a flat list of per-row results back into per-request lists."""
    out, start = [], 0
    for size in sizes:
        out.append(list(items[start : start + size]))
        start += size
    return out


def as_native(value: Any) -> Any:
    """NumPy scalars as plain Python values (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value
