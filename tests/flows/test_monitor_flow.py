"""MonitorFlow and the retraining loop on generated scenarios; the champion is asserted
before and after wherever a run could change it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flowship.config import load_settings
from flowship.data import validate_dataset
from flowship.evaluate import compute_metrics
from flowship.monitoring import (
    SCORE,
    Window,
    decide_retrain,
    prepare_window,
    reference_frame,
)
from flowship.predict import PredictionLog, predict_rows
from flowship.quality.production import check_window
from flowship.registry import find_champion, load_champion
from flowship.runs import branch_name
from flowship.sample_data import generate_churn, write_sample
from tests.helpers import REPO, TRAIN_FLOW, run_flow, small_config

pytestmark = pytest.mark.slow
MONITOR_FLOW = REPO / "flows" / "monitor_flow.py"
ONE_CANDIDATE = {
    "candidates": [
        {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {"max_iter": [60]}}
    ]
}


def monitor_config(root: Path, **data) -> dict:
    return small_config(
        data={"source": "sample:churn?rows=6000&seed=3", **data},
        training=ONE_CANDIDATE,
        serving={"prediction_log_dir": str(root / "predictions")},
        monitor={
            "feedback_dir": str(root / "feedback"),
            "workspace": str(root / "workspace"),
            "min_labels": 200,
        },
    )


def champion() -> str | None:
    run = find_champion("churn", branch_name())
    return run.pathspec if run else None


@pytest.fixture(scope="module")
def trained(datastore: Path) -> str:
    result = run_flow(datastore, TRAIN_FLOW, monitor_config(datastore))
    assert result.status == "successful", result.stdout + result.stderr
    assert champion() == result.run.pathspec
    return result.run.pathspec


def library_verdict(pathspec: str, frame: pd.DataFrame):
    """The monitor's checks and decision in-process (what the flow's steps call)."""
    ref = load_champion(pathspec)
    settings = load_settings(monitor_config(Path("/nonexistent")))
    window = Window(frame, "test", int(frame["churned"].notna().sum()) if "churned" in frame else 0)
    current = prepare_window(window, ref.schema, ref.model)
    reference = reference_frame(ref.holdout, ref.holdout_predictions, ref.schema)
    reports = check_window(
        current, reference, ref.schema, settings.monitor, ref.metrics, ref.metric, SCORE
    )
    return decide_retrain(reports, pathspec, window)


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_baseline_traffic_raises_no_retrain(trained: str, seed: int) -> None:
    """Traffic like the training data, over 5 seeds: no retrain, no alarm."""
    frame = generate_churn(2000, seed=seed).drop(columns=["churned"])
    verdict = library_verdict(trained, frame)
    assert verdict.status == "ok", verdict.reasons


@pytest.mark.parametrize(
    ("scenario", "column"), [("new_region", "region"), ("missing_surge", "monthly_charges")]
)
def test_data_quality_scenarios_raise_alarms(trained: str, scenario: str, column: str) -> None:
    """A region never seen in training, or a surge of missing values: a data-quality alarm
    naming the column (an alarm, not a retrain: broken inputs need a look first)."""
    frame = generate_churn(2000, seed=21, scenario=scenario).drop(columns=["churned"])
    verdict = library_verdict(trained, frame)
    assert verdict.status == "alarm", verdict.reasons
    failing = {c.column for c in verdict.checks if c.blocking}
    assert column in failing


def test_price_increase_is_detected_naming_the_charges(datastore: Path, trained: str) -> None:
    """MonitorFlow on a price-increase window says retrain and names monthly_charges."""
    path = write_sample(datastore / "price.parquet", rows=2000, seed=31, scenario="price_increase")
    result = run_flow(datastore, MONITOR_FLOW, monitor_config(datastore), current=str(path))
    assert result.status == "successful", result.stdout + result.stderr
    verdict = result.run.data.verdict
    assert verdict.retrain and verdict.status == "retrain"
    drifted = [c.column for c in verdict.checks if c.name == "column drift" and c.status != "pass"]
    assert "monthly_charges" in drifted
    assert any("monthly_charges" in r for r in verdict.reasons)
    assert (datastore / "workspace").is_dir()  # the snapshots went to the Evidently workspace
    assert champion() == trained  # monitoring never changes the champion


def _log_traffic(root: Path, pathspec: str, frame: pd.DataFrame, label_share: float = 1.0):
    """Write a prediction log and delayed labels as the service and simulate would."""
    ref = load_champion(pathspec)
    log = PredictionLog(root / "predictions", "churn:test", 64, run=pathspec)
    features = [*ref.schema.features, "customer_id"]
    labels = []
    for start in range(0, len(frame), 20):
        chunk = frame.iloc[start : start + 20]
        rows = json.loads(chunk[features].to_json(orient="records"))
        request_id = f"req{start:06d}"
        log.write(request_id, rows, predict_rows(ref.model, ref.schema, rows))
        for i, label in enumerate(chunk["churned"]):
            labels.append({"request_id": request_id, "row": i, "churned": label})
    log.close()
    (root / "feedback").mkdir(exist_ok=True)
    feedback = pd.DataFrame(labels).sample(frac=label_share, random_state=0)
    feedback.to_csv(root / "feedback" / "labels.csv", index=False)


def test_concept_shift_is_decay_and_retraining_promotes_a_better_model(
    datastore: Path, trained: str
) -> None:
    """With delayed labels a concept shift is caught as decay; TrainFlow --with-feedback
    promotes a new champion that scores better than the old one on shifted data."""
    shifted = generate_churn(6000, seed=41, scenario="concept_shift")
    _log_traffic(datastore, trained, shifted)
    config = monitor_config(datastore)
    monitored = run_flow(datastore, MONITOR_FLOW, config)
    assert monitored.status == "successful", monitored.stdout + monitored.stderr
    verdict = monitored.run.data.verdict
    assert verdict.retrain
    assert any(c.group == "model_quality" and c.blocking for c in verdict.checks)
    assert champion() == trained

    retrained = run_flow(datastore, TRAIN_FLOW, config, with_feedback=True)
    assert retrained.status == "successful", retrained.stdout + retrained.stderr
    assert retrained.run.data.feedback_rows == 6000
    assert retrained.run.data.verdict.decision == "promote", retrained.run.data.verdict.reasons
    assert champion() == retrained.run.pathspec

    fresh = generate_churn(3000, seed=42, scenario="concept_shift")
    old, new = load_champion(trained), load_champion(retrained.run.pathspec)
    scores = {}
    for name, ref in (("old", old), ("new", new)):
        typed = validate_dataset(fresh, ref.schema)
        proba = ref.model.predict_proba(typed[ref.schema.features])
        scores[name] = compute_metrics(typed["churned"], proba, ref.schema.classes, 1)["roc_auc"]
    assert scores["new"] > scores["old"] + 0.02, scores


def test_bad_inputs_fail_with_clear_messages(tmp_path: Path, datastore: Path, trained: str):
    """An empty window, logs of another model and feedback with wrong columns each fail the
    run with a message saying what to do; none changes the champion."""
    del trained  # (ensures a champion exists) the retraining test may have crowned a new one
    current = champion()
    empty = run_flow(datastore, MONITOR_FLOW, monitor_config(tmp_path))
    assert empty.status == "failed"
    assert "no predictions logged in" in empty.stdout + empty.stderr

    other = tmp_path / "other"
    frame = generate_churn(300, seed=51)
    _log_traffic(other, current, frame)
    for path in (other / "predictions").glob("*.jsonl"):
        path.write_text(path.read_text().replace(current, "TrainFlow/1"))
    wrong_model = run_flow(datastore, MONITOR_FLOW, monitor_config(other))
    assert wrong_model.status == "failed"
    assert "none of the champion" in wrong_model.stdout + wrong_model.stderr

    bad = tmp_path / "bad"
    _log_traffic(bad, current, frame)
    pd.DataFrame({"id": [1], "label": [0]}).to_csv(bad / "feedback" / "labels.csv", index=False)
    bad_feedback = run_flow(datastore, MONITOR_FLOW, monitor_config(bad))
    assert bad_feedback.status == "failed"
    assert "lacks column(s)" in bad_feedback.stdout + bad_feedback.stderr
    assert champion() == current


def test_no_champion_is_a_clear_failure(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Monitoring before any champion exists fails at start, saying to train first."""
    root = tmp_path_factory.mktemp("empty-mf")
    (root / ".metaflow").mkdir()
    result = run_flow(root, MONITOR_FLOW, monitor_config(root))
    assert result.status == "failed"
    assert "no champion" in result.stdout + result.stderr
