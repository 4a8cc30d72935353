"""TrainFlow end to end through metaflow.Runner, on a few hundred generated rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from metaflow.cards import get_cards

from flowship.sample_data import write_sample
from tests.helpers import TRAIN_FLOW, card_text, run_flow, small_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def binary_run(datastore: Path):
    result = run_flow(datastore, TRAIN_FLOW, small_config())
    assert result.status == "successful", result.stderr
    return result.run


def test_artifacts_of_a_binary_run(binary_run) -> None:
    """It stores config, schema, fingerprint, both parts, leaderboard, model, metrics, lineage."""
    data = binary_run.data
    assert data.settings.project.name == "churn"
    assert data.schema.task == "binary" and data.schema.classes == [0, 1]
    assert "signup_date" not in data.schema.features  # dates are not inferred as features
    assert len(data.data_fingerprint) == 16
    assert len(data.train_data) + len(data.holdout) == 600
    assert len(data.holdout) == 150
    assert set(data.leaderboard["candidate"]) == {
        "logreg[C=1.0]",
        "hgb[max_iter=40,max_leaf_nodes=7]",
        "hgb[max_iter=40,max_leaf_nodes=15]",
    }
    assert data.best_candidate == data.leaderboard.iloc[0]["candidate"]
    assert set(data.metrics) == {"accuracy", "f1", "roc_auc", "log_loss", "precision", "recall"}
    assert set(data.importances["feature"]) == set(data.schema.features)
    assert data.lineage["packages"]["metaflow"] == "2.19.39"
    assert len(data.holdout_predictions) == 150


def test_model_beats_majority_baseline(binary_run) -> None:
    """The chosen pipeline takes raw rows and beats predicting the majority class."""
    data = binary_run.data
    assert data.metrics["roc_auc"] > data.baseline_metrics["roc_auc"] + 0.15
    assert data.metrics["log_loss"] < data.baseline_metrics["log_loss"]
    proba = data.model.predict_proba(data.holdout[data.schema.features].head(5))
    assert proba.shape == (5, 2)


def test_card_shows_the_choice(binary_run) -> None:
    """The evaluate step has a card naming the chosen candidate."""
    cards = get_cards(binary_run["evaluate"].task)
    assert len(cards) == 1
    text = card_text(cards[0].get())
    assert binary_run.data.best_candidate in text
    assert "Holdout metrics" in text and "Permutation importance" in text


def test_same_config_same_result(datastore: Path, binary_run) -> None:
    """Two runs of one config give identical metrics and fingerprint."""
    again = run_flow(datastore, TRAIN_FLOW, small_config())
    assert again.status == "successful", again.stderr
    assert again.run.data.metrics == binary_run.data.metrics
    assert again.run.data.data_fingerprint == binary_run.data.data_fingerprint


def test_multiclass_string_labels_from_csv(datastore: Path, tmp_path: Path) -> None:
    """A CSV with a three-class string target trains and reports macro/ovr metrics."""
    path = write_sample(tmp_path / "customers.csv", rows=600, seed=11)
    import pandas as pd

    frame = pd.read_csv(path)
    frame["plan"] = pd.cut(
        frame["monthly_charges"], [0, 45, 75, 1e9], labels=["basic", "plus", "max"]
    )
    frame = frame.drop(columns=["monthly_charges", "total_charges", "churned"])
    frame.to_csv(path, index=False)
    config = small_config(data={"source": str(path), "target": "plan"})
    result = run_flow(datastore, TRAIN_FLOW, config)
    assert result.status == "successful", result.stderr
    data = result.run.data
    assert data.schema.task == "multiclass"
    assert data.schema.classes == ["basic", "max", "plus"]
    assert data.metrics["accuracy"] > data.baseline_metrics["accuracy"]
    assert list(data.holdout_predictions.columns[-4:]) == [
        "proba_basic",
        "proba_max",
        "proba_plus",
        "plan",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"training": {"candidates": []}}, "training.candidates"),
        ({"training": {"metric": "rmse"}}, "allowed: roc_auc, f1, accuracy, log_loss"),
        ({"data": {"colour": "red"}}, "unknown key 'data.colour'"),
        ({"data": {"target": "nope"}}, "[data] target names column(s) ['nope']"),
    ],
)
def test_bad_config_fails_at_start_or_load(datastore: Path, override, message) -> None:
    """A bad config fails the run early with a message naming the key."""
    result = run_flow(datastore, TRAIN_FLOW, small_config(**override))
    assert result.status == "failed"
    assert message in result.stdout + result.stderr
    assert "evaluate" not in [s.id for s in result.run]
