"""The challenger beside the champion: stable A/B assignment, and a shadow scorer that never
makes an answer wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from flowship.challenger import Shadowed, ShadowScorer, assigned_to_challenger
from flowship.predict import Predictions


def _item(request_id: str, rows: int) -> Shadowed:
    champion = Predictions([0] * rows, [[0.5, 0.5]] * rows, ["0", "1"])
    return Shadowed(
        request_id,
        [{"x": i} for i in range(rows)],
        0.0,
        champion,
        ["champion"] * rows,
        [None] * rows,
        [None] * rows,
    )


def test_assignment_is_stable_and_takes_the_share() -> None:
    """The same key always goes the same way; about `share` of keys go to the challenger
    (within 4 standard deviations of a binomial); another salt reshuffles."""
    keys = [f"customer-{i}" for i in range(20_000)]
    first = [assigned_to_challenger(k, 0.2, "model:a") for k in keys]
    assert first == [assigned_to_challenger(k, 0.2, "model:a") for k in keys]
    share = sum(first) / len(keys)
    assert abs(share - 0.2) < 4 * (0.2 * 0.8 / len(keys)) ** 0.5
    other = [assigned_to_challenger(k, 0.2, "model:b") for k in keys]
    assert other != first
    assert assigned_to_challenger(5, 0.2, "s") == assigned_to_challenger("5", 0.2, "s")


def test_the_shadow_scorer_fills_in_the_challengers_predictions() -> None:
    done: list[Shadowed] = []
    finished = threading.Event()

    def predict(rows: Sequence[dict[str, Any]]) -> Predictions:
        return Predictions([1] * len(rows), [[0.1, 0.9]] * len(rows), ["0", "1"])

    def record(item: Shadowed) -> None:
        done.append(item)
        if len(done) == 2:
            finished.set()

    scorer = ShadowScorer(predict, record, max_rows=100, batch_rows=50)
    assert scorer.submit(_item("a", 3)) and scorer.submit(_item("b", 2))
    assert finished.wait(5)
    scorer.close()
    assert [i.request_id for i in done] == ["a", "b"]
    assert all(i.challenger == [1] * len(i.rows) for i in done)
    assert done[0].challenger_probabilities == [[0.1, 0.9]] * 3
    assert scorer.scored_rows == 5 and scorer.dropped_rows == 0


def test_a_slow_challenger_drops_rows_instead_of_delaying_anything() -> None:
    """With the challenger stuck, `submit` returns at once; past the queue's bound the request
    is logged without the challenger's predictions and its rows counted as dropped."""
    release = threading.Event()
    done: list[Shadowed] = []

    def slow(rows: Sequence[dict[str, Any]]) -> Predictions:
        release.wait(10)
        return Predictions([1] * len(rows), [[0.1, 0.9]] * len(rows), ["0", "1"])

    scorer = ShadowScorer(slow, done.append, max_rows=10, batch_rows=4)
    started = time.perf_counter()
    accepted = [scorer.submit(_item(str(i), 4)) for i in range(10)]
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0  # nothing waited for the challenger
    assert accepted.count(False) >= 6 and scorer.dropped_rows == 4 * accepted.count(False)
    dropped = [i for i in done if all(p is None for p in i.challenger)]
    assert len(dropped) == accepted.count(False)  # logged at once, without the challenger
    release.set()
    scorer.close()
    assert len(done) == 10 and scorer.scored_rows == 4 * accepted.count(True)


def test_a_failing_challenger_never_loses_the_champions_log_line() -> None:
    done: list[Shadowed] = []

    def broken(rows: Sequence[dict[str, Any]]) -> Predictions:
        raise RuntimeError("boom")

    scorer = ShadowScorer(broken, done.append, max_rows=100, batch_rows=10)
    scorer.submit(_item("a", 2))
    scorer.close()
    assert len(done) == 1 and done[0].challenger == [None, None]


def test_a_request_with_nothing_left_to_score_is_logged_at_once() -> None:
    """A/B: rows the challenger answered already carry its predictions."""
    done: list[Shadowed] = []
    scorer = ShadowScorer(lambda rows: None, done.append, max_rows=1, batch_rows=1)  # type: ignore[arg-type,return-value]
    item = _item("a", 1)
    item.challenger[0], item.challenger_probabilities[0] = 1, [0.2, 0.8]
    assert scorer.submit(item) and done == [item]
    scorer.close()


def test_the_challenger_rests_to_keep_to_its_share_of_the_time() -> None:
    """With `time_share` 0.25 the thread rests three times as long as each batch took before
    the next; `close` ends the rest at once and still scores what is queued."""
    calls: list[tuple[float, float]] = []  # (start, end) of each challenger call

    def predict(rows: Sequence[dict[str, Any]]) -> Predictions:
        start = time.perf_counter()
        time.sleep(0.05)
        calls.append((start, time.perf_counter()))
        return Predictions([1] * len(rows), [[0.1, 0.9]] * len(rows), ["0", "1"])

    done: list[Shadowed] = []
    scorer = ShadowScorer(predict, done.append, max_rows=100, batch_rows=1, time_share=0.25)
    assert scorer.submit(_item("a", 1)) and scorer.submit(_item("b", 1))
    while len(calls) < 2:
        time.sleep(0.01)
    (_, first_end), (second_start, _) = calls
    assert second_start - first_end >= 3 * 0.05 * 0.95  # rested 3x the busy time
    scorer.submit(_item("c", 1))
    closing = time.perf_counter()
    scorer.close()
    assert time.perf_counter() - closing < 1.0 and len(done) == 3


def test_pause_after_keeps_the_share() -> None:
    from flowship.challenger import pause_after

    assert pause_after(0.1, 0.25) == pytest.approx(0.3)
    assert pause_after(0.1, 1.0) == 0.0
