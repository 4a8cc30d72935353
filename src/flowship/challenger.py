"""A second model in the Bento: the challenger, in shadow or A/B mode.

- shadow: the champion answers every request; the challenger scores the same rows off the
  response path, on a thread of its own with a bounded queue and a time budget (after each
  batch it rests, so it takes at most `time_share` of the worker's time): when it falls
  behind, rows are dropped and counted, never queued without bound, and no answer waits for it.
- ab: a stable share of rows is answered by the challenger (`assigned_to_challenger`: a hash
  of the row's key column value, or of the request id); the champion still scores every row
  on the response path (the log keeps its predictions for the monitor), and the challenger
  scores the rest of the rows off the path, as in shadow mode.

Either way each request's log line carries both models' predictions (the challenger's `null`
for dropped rows) and which model answered each row, so the monitor can compare the two on the
same labelled rows (`flowship.compare`).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowship.predict import Predictions
from flowship.schema import category_text

_log = logging.getLogger("flowship.challenger")


def assigned_to_challenger(key: Any, share: float, salt: str) -> bool:
    """Whether the row with `key` goes to the challenger: the same key always gets the same
    answer for one `salt` (the challenger's model tag), and a `share` of keys does."""
    digest = hashlib.sha256(f"{salt}|{category_text(key)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def pause_after(busy: float, time_share: float) -> float:
    """Seconds to rest after `busy` seconds of work so the work is `time_share` of the time."""
    return busy * (1 - time_share) / time_share


@dataclass
class Shadowed:
    """One answered request waiting for the challenger's predictions of its rows."""

    request_id: str
    rows: list[dict[str, Any]]
    received: float
    champion: Predictions  # the champion's own predictions of every row
    answered_by: list[str]  # per row: the model version that answered it
    challenger: list[Any | None]  # per row: the challenger's prediction (None: not yet)
    challenger_probabilities: list[list[float] | None]
    fields: dict[str, Any] = field(default_factory=dict)  # e.g. the caller's key id

    @property
    def missing(self) -> list[int]:
        return [i for i, p in enumerate(self.challenger) if p is None]


class ShadowScorer:
    """Scores queued requests with the challenger on its own thread, then hands each finished
    request to `done` (which logs it). `submit` never blocks: past `max_rows` waiting rows the
    request is handed to `done` at once, without the challenger's predictions, and its rows are
    counted in `dropped_rows`. After each batch the thread rests so that scoring takes at most
    `time_share` of its time (1: no rest).
    """

    def __init__(
        self,
        predict: Callable[[Sequence[dict[str, Any]]], Predictions],
        done: Callable[[Shadowed], None],
        max_rows: int,
        batch_rows: int,
        time_share: float = 1.0,
    ) -> None:
        self._predict = predict
        self._done = done
        self._max_rows = max_rows
        self._batch_rows = batch_rows
        self._time_share = time_share
        self._closing = threading.Event()
        self._queue: queue.SimpleQueue[Shadowed | None] = queue.SimpleQueue()
        self._waiting = 0  # rows queued, not yet taken by the thread
        self._lock = threading.Lock()
        self.dropped_rows = 0
        self.scored_rows = 0
        self._thread = threading.Thread(target=self._run, name="flowship-shadow", daemon=True)
        self._thread.start()

    def submit(self, item: Shadowed) -> bool:
        """Queue a request for the challenger; False (and logged now) when the queue is full."""
        rows = len(item.missing)
        if rows == 0:
            self._done(item)
            return True
        with self._lock:
            full = self._waiting + rows > self._max_rows
            if full:
                self.dropped_rows += rows
            else:
                self._waiting += rows
        if full:
            self._done(item)
            return False
        self._queue.put(item)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued (up to `timeout` seconds), then stop the thread."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            batch, rows = [first], len(first.missing)
            while rows < self._batch_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                rows += len(item.missing)
            with self._lock:
                self._waiting -= rows
            started = time.perf_counter()
            self._score(batch)
            self._closing.wait(pause_after(time.perf_counter() - started, self._time_share))

    def _score(self, batch: list[Shadowed]) -> None:
        wanted = [(item, i) for item in batch for i in item.missing]
        try:
            predictions = self._predict([item.rows[i] for item, i in wanted])
        except Exception:  # the challenger failing must never stop the champion's log
            _log.exception("the challenger failed to score %d rows: logged without", len(wanted))
            predictions = None
        if predictions is not None:
            for k, (item, i) in enumerate(wanted):
                item.challenger[i] = predictions.labels[k]
                item.challenger_probabilities[i] = predictions.probabilities[k]
            self.scored_rows += len(wanted)
        for item in batch:
            self._done(item)
