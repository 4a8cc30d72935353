"""The contract between runs: a table that changes under the same project is a blocked
verdict naming what changed (never a crash), until the change is accepted on purpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowship.bento import export_model
from flowship.registry import find_champion
from flowship.runs import branch_name
from tests.helpers import TRAIN_FLOW, run_flow, small_config

pytestmark = pytest.mark.slow
ONE_CANDIDATE = {
    "candidates": [{"name": "logreg", "estimator": "logistic_regression", "params": {"C": [1.0]}}]
}


def champion() -> str | None:
    run = find_champion("churn", branch_name())
    return run.pathspec if run else None


def weather_table(path: Path, rows: int = 900) -> Path:
    """A 5-class weather table that shares no column with the churn data."""
    rng = np.random.default_rng(4)
    temperature = rng.normal(12, 9, rows)
    humidity = rng.uniform(20, 100, rows)
    wind = rng.gamma(2.0, 4.0, rows)
    score = 0.08 * temperature - 0.04 * humidity + 0.1 * wind + rng.normal(0, 0.6, rows)
    weather = np.digitize(score, np.quantile(score, [0.2, 0.4, 0.6, 0.8]))
    names = np.array(["snow", "rain", "cloudy", "windy", "sunny"])[weather]
    frame = pd.DataFrame(
        {"temperature": temperature, "humidity": humidity, "wind": wind, "weather": names}
    )
    frame.to_csv(path, index=False)
    return path


def weather_config(path: Path) -> dict:
    config = small_config(
        data={"source": str(path), "target": "weather"},
        training={**ONE_CANDIDATE, "metric": "f1"},
        gate={"min_metrics": {"f1": 0.3}},
    )
    del config["data"]["id_column"]
    return config


def test_churn_then_weather_is_blocked_naming_the_change_then_accepted(
    datastore: Path, tmp_path: Path
) -> None:
    """The weather table under the churn project ends in a blocked verdict whose contract
    check names the target change; drift and the comparison are skipped, not crashed. With
    --accept-new-contract and a reason it is promoted, audited, and exported with the new
    contract."""
    churn = run_flow(datastore, TRAIN_FLOW, small_config(training=ONE_CANDIDATE))
    assert churn.status == "successful", churn.stdout + churn.stderr
    assert champion() == churn.run.pathspec

    config = weather_config(weather_table(tmp_path / "weather.csv"))
    blocked = run_flow(datastore, TRAIN_FLOW, config)
    assert blocked.status == "successful", blocked.stdout + blocked.stderr
    verdict = blocked.run.data.verdict
    assert verdict.decision == "block"
    (contract,) = [c for c in verdict.checks if c.id == "contract.unchanged"]
    assert contract.blocking and contract.group == "contract"
    assert "target renamed 'churned' → 'weather'" in contract.description
    assert "task binary → multiclass" in contract.description
    assert "features removed: tenure_months" in contract.description
    skipped = {c.name: c.status for c in verdict.checks if c.group in {"drift", "champion"}}
    assert skipped == {"drift vs champion": "skipped", "f1 vs champion": "skipped"}
    assert champion() == churn.run.pathspec

    refused = run_flow(datastore, TRAIN_FLOW, config, accept_new_contract=True)
    assert refused.status == "failed"  # no reason: refused before any training
    assert "--accept-new-contract True needs --reason" in refused.stdout + refused.stderr

    accepted = run_flow(
        datastore, TRAIN_FLOW, config, accept_new_contract=True, reason="weather now"
    )
    assert accepted.status == "successful", accepted.stdout + accepted.stderr
    verdict = accepted.run.data.verdict
    assert verdict.decision == "promote", verdict.reasons
    assert verdict.accepted_contract is not None
    assert verdict.accepted_contract.reason == "weather now"
    assert any("target renamed" in c for c in verdict.accepted_contract.failing_checks)
    assert "new contract accepted by" in " ".join(verdict.reasons)
    assert champion() == accepted.run.pathspec
    _, metadata = export_model(accepted.run, "churn")
    assert metadata["contract"]["target"] == "weather"
    assert metadata["contract"]["classes"] == ["cloudy", "rain", "snow", "sunny", "windy"]
    assert set(metadata["contract"]["features"]) == {"temperature", "humidity", "wind"}
