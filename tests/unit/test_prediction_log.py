"""The prediction log when things go wrong: unwritable folders, retention, bad lines."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowship.predict import PredictionLog, Predictions, scan_prediction_log

ROWS = [{"x": 1.0}, {"x": 2.0}]
TWO = Predictions([0, 1], [[0.9, 0.1], [0.2, 0.8]], ["0", "1"])


def test_an_unwritable_folder_loses_lines_but_never_raises(tmp_path: Path) -> None:
    """A folder that cannot be created (a file is in the way) costs the log, not the answer:
    write says False and counts the rows; once the folder works again, lines are written."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file")
    log = PredictionLog(blocked / "predictions", "m:1", rotate_mb=64)
    assert log.write("r1", ROWS, TWO) is False
    assert log.write("r2", ROWS, TWO) is False
    assert log.lost_rows == 4
    log.flush()
    blocked.unlink()
    assert log.write("r3", ROWS, TWO) is True
    log.close()
    assert len(scan_prediction_log(blocked / "predictions").frame) == 2


def test_a_folder_lost_at_a_rotation_loses_lines_but_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The folder goes away after the first file is written (a volume unmounted, a file in
    its place: refused even to root) and the next write must rotate: the lines written stay
    in the first file, later ones are lost and counted with one loud log line, never raised;
    once the folder can be made again, the log resumes in a new file."""
    folder = tmp_path / "predictions"
    log = PredictionLog(folder, "m:1", rotate_mb=1e-6)  # 1 byte: every write rotates
    assert log.write("r1", ROWS, TWO) is True
    log.flush()
    assert len(list(folder.glob("predictions-*.jsonl"))) == 1
    folder.rename(tmp_path / "unmounted")
    folder.write_text("a file where the folder was")
    with caplog.at_level(logging.ERROR, logger="flowship.predict"):
        assert log.write("r2", ROWS, TWO) is False
        assert log.write("r3", ROWS, TWO) is False
        log.flush()
    assert log.lost_rows == 4
    (loud,) = caplog.records  # one line a minute, not one per request
    assert f"prediction log {folder} is not writable" in loud.getMessage()
    assert "answers go on, but 2 rows were not logged" in loud.getMessage()
    kept = scan_prediction_log(tmp_path / "unmounted")
    assert kept.skipped == [] and list(kept.frame["request_id"]) == ["r1", "r1"]
    folder.unlink()
    assert log.write("r4", ROWS, TWO) is True
    log.close()
    assert list(scan_prediction_log(folder).frame["request_id"]) == ["r4", "r4"]


def test_retention_deletes_the_oldest_files_past_the_limit(tmp_path: Path) -> None:
    """Past `retain_mb` in all, the oldest files go; files written in the last minute stay."""
    for i in range(4):
        old = tmp_path / f"predictions-2026010{i}T000000000000Z-1.jsonl"
        old.write_text("x" * 400_000)
        os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / "predictions-20260109T000000000000Z-2.jsonl"
    fresh.write_text("x" * 400_000)
    log = PredictionLog(tmp_path, "m:1", rotate_mb=64, retain_mb=1.0)
    log.write("r1", ROWS, TWO)
    log.close()
    left = sorted(p.name for p in tmp_path.glob("predictions-*.jsonl"))
    assert "predictions-20260100T000000000000Z-1.jsonl" not in left
    assert "predictions-20260101T000000000000Z-1.jsonl" not in left
    assert fresh.name in left
    assert sum(p.stat().st_size for p in tmp_path.glob("*.jsonl")) <= 1.0 * 1024 * 1024


def _line(request_id: str, **changes: object) -> str:
    record = {
        "ts": "2026-12-01T10:00:00.000+00:00",
        "request_id": request_id,
        "model_version": "m:1",
        "run": "TrainFlow/1",
        "classes": ["0", "1"],
        "rows": ROWS,
        "predictions": [0, 1],
        "probabilities": [[0.9, 0.1], [0.2, 0.8]],
        **changes,
    }
    return json.dumps(record)


def test_bad_lines_are_skipped_and_named(tmp_path: Path) -> None:
    """A truncated last line, garbage, a line without rows and another model's classes are
    skipped, each named by file and line; the good lines are read."""
    lines = [
        _line("a"),
        "garbage{",
        json.dumps({"ts": "2026-12-01T10:00:01.000+00:00", "request_id": "b"}),
        _line("c", classes=["0", "1", "2"]),
        _line("d"),
        _line("e")[:40],  # a worker killed mid-line
    ]
    (tmp_path / "predictions-1.jsonl").write_text("\n".join(lines))
    scan = scan_prediction_log(tmp_path)
    assert sorted(scan.frame["request_id"].unique()) == ["a", "d"]
    assert scan.lines == 6
    assert [s.split(":")[1] for s in scan.skipped] == ["2", "3", "4", "6"]
    assert scan.skipped[0] == "predictions-1.jsonl:2: not JSON (a truncated or corrupted line)"
    assert "no 'rows' field" in scan.skipped[1]
    assert scan.skipped_share == pytest.approx(4 / 6)


def test_scan_keeps_the_newest_rows_and_skips_old_files(tmp_path: Path) -> None:
    """`max_rows` bounds what is kept (the newest); files older than `since` are not read."""
    old = tmp_path / "predictions-0.jsonl"
    old.write_text(_line("old", ts="2026-11-01T00:00:00.000+00:00") + "\n")
    os.utime(old, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    new = tmp_path / "predictions-1.jsonl"
    new.write_text(
        "\n".join(_line(f"n{i}", ts=f"2026-12-01T10:00:0{i}.000+00:00") for i in range(5))
    )
    newest = scan_prediction_log(tmp_path, max_rows=3).frame
    assert list(zip(newest["request_id"], newest["row"], strict=True)) == [
        ("n3", 1),
        ("n4", 0),
        ("n4", 1),
    ]
    since = datetime.now(UTC) - timedelta(days=1)
    assert "old" not in set(scan_prediction_log(tmp_path, since=since).frame["request_id"])
