"""Regression through the whole loop, with a plug-in estimator: TrainFlow promotes a LightGBM
model, blocks a worse challenger, rolls back; the served Bento answers as the pipeline
predicts; the monitor sees drift, then decay from delayed labels, and retraining promotes.
The tests share one datastore and run in file order."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from flowship.bento import export_model, package_run
from flowship.config import ServingSettings, load_settings
from flowship.data import validate_dataset
from flowship.monitoring import SCORE, Window, decide_retrain, prepare_window, reference_frame
from flowship.predict import PredictionLog, predict_rows
from flowship.processes import free_port, served_bento
from flowship.quality.production import check_window
from flowship.registry import find_champion, load_champion, rollback
from flowship.runs import branch_name, get_run
from flowship.sample_data import generate_delivery
from tests.helpers import AUTH, REPO, TRAIN_FLOW, run_flow

pytestmark = pytest.mark.slow
MONITOR_FLOW = REPO / "flows" / "monitor_flow.py"
LGBM = {
    "name": "lgbm",
    "estimator": "lightgbm:LGBMRegressor",
    "params": {"n_estimators": [80], "num_leaves": [15], "verbose": [-1]},
}
DUMMY = {"name": "mean", "estimator": "sklearn.dummy:DummyRegressor"}


def delivery_config(root: Path, candidates: list[dict], rows: int = 2500) -> dict:
    """A small delivery-time project (auto task: regression) in `root`."""
    return {
        "project": {"name": "delivery"},
        "data": {
            "source": f"sample:delivery?rows={rows}&seed=5",
            "target": "delivery_minutes",
            "id_column": "order_id",
            "test_size": 0.25,
        },
        "training": {"seed": 0, "importance_rows": 200, "candidates": candidates},
        "gate": {"min_rows": 300, "min_metrics": {"r2": 0.5}, "max_regression": 0.1},
        "serving": {"prediction_log_dir": str(root / "predictions")},
        "monitor": {
            "feedback_dir": str(root / "feedback"),
            "workspace": str(root / "workspace"),
            "min_labels": 200,
            "max_metric_drop": 1.0,
        },
    }


def champion() -> str | None:
    run = find_champion("delivery", branch_name())
    return run.pathspec if run else None


@pytest.fixture(scope="module")
def first(datastore: Path) -> str:
    assert champion() is None
    result = run_flow(datastore, TRAIN_FLOW, delivery_config(datastore, [LGBM]))
    assert result.status == "successful", result.stdout + result.stderr
    return result.run.pathspec


def test_a_regression_plugin_model_is_chosen_gated_and_promoted(first: str) -> None:
    """auto picks regression (and says why); rmse ranks; the gate checks r2 through
    Evidently; the card shows predicted vs actual."""
    run = get_run(first)
    data = run.data
    assert champion() == first
    assert data.schema.task == "regression" and data.schema.classes == []
    assert data.schema.task_reason.startswith("auto: numeric target")
    assert data.settings.training.metric == "rmse"
    assert set(data.metrics) == {"rmse", "mae", "r2", "mape"}
    assert data.metrics["rmse"] < data.baseline_metrics["rmse"]  # beats the training mean
    assert type(data.model.named_steps["model"]).__name__ == "LGBMRegressor"
    assert data.model.named_steps["model"].n_jobs == 1  # one thread when serving
    r2 = next(c for c in data.verdict.checks if c.name == "r2")
    assert r2.status == "pass" and r2.condition == ">= 0.5"
    assert set(data.holdout_predictions.columns) >= {"order_id", "prediction", "delivery_minutes"}


def test_a_worse_challenger_is_blocked_then_rollback(datastore: Path, first: str) -> None:
    """A mean predictor loses on rmse (lower is better) against the champion: blocked; a run
    as good as the champion promotes; rollback makes the first champion again."""
    worse = run_flow(datastore, TRAIN_FLOW, delivery_config(datastore, [DUMMY]))
    assert worse.status == "successful", worse.stdout + worse.stderr
    verdict = worse.run.data.verdict
    assert verdict.decision == "block"
    comparison = next(c for c in verdict.checks if c.name == "rmse vs champion")
    assert comparison.blocking and comparison.condition.startswith("<= ")
    assert comparison.value > comparison.threshold
    assert champion() == first

    again = run_flow(datastore, TRAIN_FLOW, delivery_config(datastore, [LGBM]))
    assert again.run.data.verdict.decision == "promote", again.run.data.verdict.reasons
    assert champion() == again.run.pathspec
    assert rollback(first, "delivery", branch_name()) == again.run.pathspec
    assert champion() == first


def test_the_served_regression_bento_answers_as_the_pipeline_predicts(
    datastore: Path, first: str, tmp_path: Path
) -> None:
    """The Bento ships LightGBM, documents a numeric prediction, and answers each row with
    the pipeline's own `predict`."""
    run = get_run(first)
    _, metadata = export_model(run, "delivery")
    assert metadata["requirements"] == [f"lightgbm=={__import__('lightgbm').__version__}"]
    assert metadata["contract"]["task"] == "regression"
    _, bento = package_run(run, "delivery", ServingSettings(), REPO)
    frame = generate_delivery(40, seed=77)
    schema = run.data.schema
    rows = json.loads(frame[[schema.id_column, *schema.features]].to_json(orient="records"))
    env = {"FLOWSHIP_PREDICTION_LOG_DIR": str(tmp_path / "log")}
    with served_bento(bento, "127.0.0.1", free_port(), env) as url:
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, headers=AUTH, timeout=30).json()
        docs = httpx.get(f"{url}/docs.json", headers=AUTH, timeout=30).json()
    served = [p["prediction"] for p in answer["predictions"]]
    assert all(set(p) == {"prediction"} for p in answer["predictions"])
    typed = validate_dataset(frame, schema)
    expected = run.data.model.predict(typed[schema.features])
    np.testing.assert_allclose(served, expected, rtol=1e-9)
    answer_schema = docs["components"]["schemas"]["ValuePrediction"]
    assert answer_schema["properties"]["prediction"]["type"] == "number"


def _library_verdict(pathspec: str, frame: pd.DataFrame):
    """The monitor's checks and decision in-process (what MonitorFlow's steps call)."""
    ref = load_champion(pathspec)
    settings = load_settings(delivery_config(Path("/nonexistent"), [LGBM]))
    labelled = int(frame["delivery_minutes"].notna().sum()) if "delivery_minutes" in frame else 0
    window = Window(frame, "test", labelled)
    current = prepare_window(window, ref.schema, ref.model)
    reference = reference_frame(ref.holdout, ref.holdout_predictions, ref.schema)
    reports = check_window(
        current, reference, ref.schema, settings.monitor, ref.metrics, ref.metric, SCORE
    )
    return decide_retrain(reports, pathspec, window)


def test_baseline_traffic_is_ok_and_long_distances_are_drift(first: str) -> None:
    """Traffic like the training data raises nothing; a new far-away area drifts the
    distance, the vehicles and the predicted minutes: RETRAIN."""
    calm = _library_verdict(
        first, generate_delivery(2000, seed=61).drop(columns="delivery_minutes")
    )
    assert calm.status == "ok", calm.reasons
    far = generate_delivery(2000, seed=62, scenario="long_distance")
    verdict = _library_verdict(first, far.drop(columns="delivery_minutes"))
    assert verdict.retrain, verdict.reasons
    assert any("distance_km" in r for r in verdict.reasons)


def test_concept_shift_is_decay_and_retraining_promotes(datastore: Path, first: str) -> None:
    """Delayed labels of a concept shift show as rmse above the champion's + max_metric_drop;
    TrainFlow --with-feedback learns the new roads and is promoted."""
    ref = load_champion(first)
    shifted = generate_delivery(3000, seed=63, scenario="concept_shift")
    log = PredictionLog(datastore / "predictions", "delivery:test", 64, run=first)
    columns = [ref.schema.id_column, *ref.schema.features]
    labels = []
    for start in range(0, len(shifted), 25):
        chunk = shifted.iloc[start : start + 25]
        rows = json.loads(chunk[columns].to_json(orient="records"))
        request_id = f"req{start:06d}"
        log.write(request_id, rows, predict_rows(ref.model, ref.schema, rows))
        labels += [
            {"request_id": request_id, "row": i, "delivery_minutes": y}
            for i, y in enumerate(chunk["delivery_minutes"])
        ]
    log.close()
    (datastore / "feedback").mkdir(exist_ok=True)
    pd.DataFrame(labels).to_csv(datastore / "feedback" / "labels.csv", index=False)
    config = delivery_config(datastore, [LGBM])

    monitored = run_flow(datastore, MONITOR_FLOW, config)
    assert monitored.status == "successful", monitored.stdout + monitored.stderr
    verdict = monitored.run.data.verdict
    decay = next(c for c in verdict.checks if c.group == "model_quality" and c.name == "rmse")
    assert verdict.retrain and decay.blocking
    assert decay.threshold == pytest.approx(ref.metrics["rmse"] + 1.0)
    assert champion() == first

    retrained = run_flow(datastore, TRAIN_FLOW, config, with_feedback=True)
    assert retrained.status == "successful", retrained.stdout + retrained.stderr
    assert retrained.run.data.feedback_rows == 3000
    assert retrained.run.data.verdict.decision == "promote", retrained.run.data.verdict.reasons
    assert champion() == retrained.run.pathspec
