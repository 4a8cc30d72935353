"""The monitor's decision and the event it publishes on Argo when a retrain is due."""

from __future__ import annotations

import pandas as pd
import pytest

from flowship.checks import DATA_MISSING, DRIFT_SHARE, CheckResult, QualityReport
from flowship.monitoring import Window, decide_retrain, retrain_event_payload


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
