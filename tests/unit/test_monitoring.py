"""The monitor's decision and the event it publishes on Argo when a retrain is due."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flowship.checks import DATA_MISSING, DRIFT_SHARE, CheckResult, QualityReport
from flowship.config import MonitorSettings
from flowship.errors import MonitorError
from flowship.monitoring import (
    Window,
    decide_retrain,
    load_window,
    read_feedback,
    retrain_event_payload,
)
from flowship.predict import PredictionLog, Predictions


def _report(group: str, status: str) -> QualityReport:
    check = CheckResult(
        id=DRIFT_SHARE if group == "drift" else DATA_MISSING,
        name="drifted share" if group == "drift" else "missing share",
        group=group,
        status=status,
        critical=True,
        value=0.5,
        condition="<= 0.2",
    )
    return QualityReport("checks", [check], "")


@pytest.mark.parametrize(
    ("group", "status", "decision"),
    [("drift", "fail", "retrain"), ("data_quality", "fail", "alarm"), ("drift", "pass", "ok")],
)
def test_retrain_event_payload_only_when_retraining(group: str, status: str, decision: str) -> None:
    """RETRAIN publishes an event asking for --with-feedback, naming the monitor run, its
    verdict and the champion; ALARM and OK publish nothing."""
    window = Window(pd.DataFrame({"x": range(2000)}), "test", labelled=0)
    verdict = decide_retrain([_report(group, status)], "TrainFlow/7", window)
    assert verdict.status == decision
    payload = retrain_event_payload(verdict, "MonitorFlow/9")
    if decision != "retrain":
        assert payload is None
        return
    assert payload == {
        "with_feedback": "true",
        "monitor_run": "MonitorFlow/9",
        "monitor_verdict": verdict.id,
        "champion": "TrainFlow/7",
        "reasons": "; ".join(verdict.reasons),
    }
    assert all(isinstance(v, str) for v in payload.values())  # Argo parameters are strings


def _feedback(tmp_path: Path, name: str, text: str | bytes) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _binary_schema():
    from flowship.schema import Schema

    return Schema(
        task="binary",
        target="churned",
        numeric=["x"],
        categorical=[],
        classes=[0, 1],
        positive_class=1,
        categories={},
        numeric_ranges={"x": (0.0, 1.0)},
    )


def test_contradicting_and_foreign_labels_are_kept_out_and_said(tmp_path: Path) -> None:
    """The same prediction labelled 0 and 1 (across files), labels that are not classes
    (yes/no for a 0/1 target, 'maybe'): all kept out, each reported."""
    _feedback(tmp_path, "a.csv", "request_id,row,churned\nr1,0,1\nr1,1,0\nr2,0,1\nr3,0,yes\n")
    _feedback(tmp_path, "b.csv", "request_id,row,churned\nr1,0,0\nr2,0,1\nr4,0,maybe\n")
    feedback = read_feedback(tmp_path, "churned", _binary_schema())
    kept = sorted(
        zip(
            feedback.frame["request_id"],
            feedback.frame["row"],
            feedback.frame["churned"],
            strict=True,
        )
    )
    assert kept == [("r1", 1, 0), ("r2", 0, 1)]
    assert any(
        "2 feedback label(s) are not classes of the champion [0, 1]" in n for n in feedback.notes
    )
    assert any("1 prediction(s) have contradicting feedback labels" in n for n in feedback.notes)


def test_empty_and_unreadable_feedback_files_are_named(tmp_path: Path) -> None:
    _feedback(tmp_path, "empty.csv", "")
    assert read_feedback(tmp_path, "churned").notes == ["feedback file empty.csv is empty: skipped"]
    _feedback(tmp_path, "latin.csv", "request_id,row,churned\n\xff\xfe,0,1\n".encode("latin-1"))
    with pytest.raises(MonitorError, match=r"feedback file .*latin\.csv is not a readable UTF-8"):
        read_feedback(tmp_path, "churned")


def _log_with_bad_lines(directory: Path, good: int, bad: int) -> Path:
    """A prediction log of `good` requests (one row each) written by the service's writer,
    then `bad` unreadable lines (a worker killed mid-line) appended to its file."""
    log = PredictionLog(directory, "m:1", rotate_mb=64, run="TrainFlow/1")
    for i in range(good):
        log.write(f"r{i}", [{"x": i / good}], Predictions([0], [[0.9, 0.1]], ["0", "1"]))
    log.close()
    (path,) = directory.glob("predictions-*.jsonl")
    with path.open("a") as handle:
        handle.writelines('{"ts": "2026-12-01T10:00\n' for _ in range(bad))
    return path


@pytest.mark.parametrize(("bad", "fails"), [(1, False), (2, True)])
def test_unreadable_log_lines_are_skipped_up_to_max_bad_log_share(
    tmp_path: Path, bad: int, fails: bool
) -> None:
    """1 unreadable line in 100 (= [monitor] max_bad_log_share, 1%) is skipped and named by
    file and line in the window's notes; 2 in 100 fail the window, naming the lines and the
    setting."""
    path = _log_with_bad_lines(tmp_path / "log", good=100 - bad, bad=bad)
    monitor = MonitorSettings(min_rows=1, feedback_dir=str(tmp_path / "feedback"))
    assert monitor.max_bad_log_share == 0.01
    first_bad = f"{path.name}:{100 - bad + 1}: not JSON"
    if fails:
        with pytest.raises(MonitorError) as refused:
            load_window(monitor, _binary_schema(), "TrainFlow/1", tmp_path / "log")
        message = str(refused.value)
        assert message.startswith("2 of 100 lines of the prediction log in ")
        assert "(2.0%, more than [monitor] max_bad_log_share = 1.0%)" in message
        assert first_bad in message and f"{path.name}:100: not JSON" in message
        return
    window = load_window(monitor, _binary_schema(), "TrainFlow/1", tmp_path / "log")
    assert len(window.frame) == 99
    assert [n for n in window.notes if "unreadable" in n] == [
        f"skipped 1 unreadable log line(s): {first_bad} (a truncated or corrupted line)"
    ]
