"""Start from your own table, and text features: `flowship init` writes a config that trains
and promotes with no edit (a binary, a regression and a text table), and the review-sentiment
model is served, answers as its pipeline, and its monitor catches a new product line. The
tests share one datastore and run in file order."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import httpx
import numpy as np
import pytest

from flowship.bento import package_run
from flowship.cli import main
from flowship.config import ServingSettings
from flowship.data import validate_dataset
from flowship.processes import free_port, served_bento
from flowship.registry import find_champion
from flowship.runs import branch_name, get_run
from flowship.sample_data import generate_reviews, sample_table
from tests.helpers import AUTH, REPO, TRAIN_FLOW, run_flow

pytestmark = pytest.mark.slow
MONITOR_FLOW = REPO / "flows" / "monitor_flow.py"
TABLES = {
    "churn": ("churned", 1500),
    "delivery": ("delivery_minutes", 1500),
    "reviews": ("sentiment", 1500),
}


@pytest.fixture(scope="module")
def initialised(datastore: Path) -> dict[str, dict]:
    """`flowship init` on a CSV of each embedded table; each config trained as written."""
    configs = {}
    for name, (target, rows) in TABLES.items():
        table = datastore / f"{name}.csv"
        sample_table(name).generate(rows, 5, "baseline").to_csv(table, index=False)
        out = datastore / f"{name}.toml"
        assert main(["init", str(table), "--target", target, "--out", str(out)]) == 0
        config = tomllib.loads(out.read_text())
        result = run_flow(datastore, TRAIN_FLOW, config)
        assert result.status == "successful", result.stdout + result.stderr
        configs[name] = {"config": config, "run": result.run.pathspec}
    return configs


@pytest.mark.parametrize("name", list(TABLES))
def test_an_initialised_config_trains_and_promotes(initialised: dict, name: str) -> None:
    """No edit: the written config trains, passes its own gate and is promoted."""
    run = get_run(initialised[name]["run"])
    verdict = run["gate"].task.data.verdict
    assert verdict.decision == "promote", verdict.reasons
    champion = find_champion(initialised[name]["config"]["project"]["name"], branch_name())
    assert champion is not None and champion.pathspec == run.pathspec


def test_the_review_model_uses_its_text(initialised: dict) -> None:
    """TF-IDF of the review reaches the model: the text column is the most important."""
    data = get_run(initialised["reviews"]["run"])["gate"].task.data
    assert data.schema.text == ["review"]
    assert data.importances["feature"].iloc[0] == "review"
    assert data.metrics["f1"] > 0.8


def test_the_served_text_model_answers_as_its_pipeline_and_is_monitored(
    datastore: Path, initialised: dict, tmp_path: Path
) -> None:
    """The Bento's probabilities equal the pipeline's on the same rows; a number for a text
    field is a 400 naming it; a new product line in the traffic is caught by MonitorFlow."""
    run = get_run(initialised["reviews"]["run"])
    schema, model = run["gate"].task.data.schema, run["gate"].task.data.model
    _, bento = package_run(run, "reviews", ServingSettings(), REPO)
    log_dir = tmp_path / "predictions"
    columns = [schema.id_column, *schema.features] if schema.id_column else schema.features
    calm = generate_reviews(40, seed=81)
    new_line = generate_reviews(800, seed=82, scenario="new_product_line")
    with served_bento(
        bento, "127.0.0.1", free_port(), {"FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir)}
    ) as url:
        rows = json.loads(calm[columns].to_json(orient="records"))
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, headers=AUTH, timeout=30).json()
        wrong = httpx.post(
            f"{url}/predict", json={"rows": [{**rows[0], "review": 5}]}, headers=AUTH, timeout=30
        )
        for start in range(0, len(new_line), 50):
            chunk = new_line.iloc[start : start + 50]
            body = {"rows": json.loads(chunk[columns].to_json(orient="records"))}
            assert (
                httpx.post(f"{url}/predict", json=body, headers=AUTH, timeout=30).status_code == 200
            )
    served = [[p["probabilities"][str(c)] for c in schema.classes] for p in answer["predictions"]]
    expected = model.predict_proba(validate_dataset(calm, schema)[schema.features])
    np.testing.assert_allclose(served, expected, rtol=1e-9)
    assert wrong.status_code == 400 and "review" in wrong.text

    config = {
        **initialised["reviews"]["config"],
        "serving": {"prediction_log_dir": str(log_dir)},
        "monitor": {"feedback_dir": str(tmp_path / "feedback"), "workspace": str(tmp_path / "ws")},
    }
    monitored = run_flow(datastore, MONITOR_FLOW, config)
    assert monitored.status == "successful", monitored.stdout + monitored.stderr
    verdict = monitored.run.data.verdict
    assert verdict.status in {"retrain", "alarm"}, verdict.reasons
    flagged = " ".join(verdict.reasons)
    assert "review" in flagged or "category" in flagged, verdict.reasons
