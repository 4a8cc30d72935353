"""Card components: the training card's parts and the importance chart's Vega-Lite spec."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from metaflow.cards import Markdown, Table, VegaChart

from flowship.cards import importance_chart, training_card
from tests.unit.conftest import Prepared


def _importances(features: list[str]) -> pd.DataFrame:
    n = len(features)
    return pd.DataFrame(
        {
            "feature": features,
            "importance": [0.1 * (n - i) for i in range(n)],
            "std": [0.01] * n,
        }
    )


def _card(churn: Prepared, **overrides: Any) -> list[Any]:
    """The training card of hand-made evaluate-step artifacts; `overrides` replace some."""
    results: dict[str, Any] = {
        "best_candidate": "hgb[max_iter=40,max_leaf_nodes=7]",
        "settings": churn.settings,  # SMALL_CONFIG: chosen by roc_auc
        "leaderboard": pd.DataFrame(
            {
                "rank": [1, 2],
                "candidate": ["hgb[max_iter=40,max_leaf_nodes=7]", "logreg[C=1.0]"],
                "val_roc_auc": [0.83456, 0.8],
            }
        ),
        "metrics": {"roc_auc": 0.81234, "accuracy": 0.79},
        "baseline_metrics": {"roc_auc": 0.5, "accuracy": 0.74},
        "importances": _importances(churn.schema.features),
        "schema": churn.schema,
        "data_fingerprint": "f" * 16,
        "lineage": {"git_sha": "0123456789abcdef0123", "git_dirty": False, "config_hash": "c" * 16},
    }
    return training_card(SimpleNamespace(**{**results, **overrides}), rows=(4500, 1500))


def test_training_card_components(churn: Prepared) -> None:
    """It is a title, the holdout metrics table, the leaderboard table and the chart."""
    components = _card(churn)
    assert [type(c) for c in components] == [
        Markdown,
        Markdown,
        Table,
        Markdown,
        Table,
        Markdown,
        VegaChart,
    ]
    title = components[0].render()["source"]
    assert title.startswith("# Training: **hgb[max_iter=40,max_leaf_nodes=7]**")
    assert "among 2 candidates" in title
    assert "task `binary` with classes `[0, 1]`" in title
    assert "Train rows 4,500, holdout rows 1,500" in title
    assert "commit `0123456789ab`;" in title
    assert "uncommitted" not in title


def test_training_card_tables(churn: Prepared) -> None:
    """Metrics sit next to the baseline, sorted by name, with floats to four places."""
    components = _card(churn)
    metrics = components[2].render()
    assert metrics["columns"] == ["metric", "model", "majority baseline"]
    assert metrics["data"] == [["accuracy", "0.7900", "0.7400"], ["roc_auc", "0.8123", "0.5000"]]
    board = components[4].render()
    assert board["columns"] == ["rank", "candidate", "val_roc_auc"]
    assert board["data"][0] == ["1", "hgb[max_iter=40,max_leaf_nodes=7]", "0.8346"]


def test_training_card_chart_lists_every_feature(churn: Prepared) -> None:
    """The chart's data has one bar per feature of the schema."""
    spec = _card(churn)[-1].render()["spec"]
    assert [v["feature"] for v in spec["data"]["values"]] == churn.schema.features


def test_training_card_flags_uncommitted_changes(churn: Prepared) -> None:
    """A dirty work tree is said so in the title."""
    lineage = {"git_sha": "abc", "git_dirty": True, "config_hash": "c"}
    title = _card(churn, lineage=lineage)[0].render()["source"]
    assert "commit `abc` (uncommitted changes)" in title


def test_training_card_without_importance_column(churn: Prepared) -> None:
    """Importances without an `importance` column cannot be charted."""
    broken = _importances(churn.schema.features).drop(columns=["importance"])
    with pytest.raises(AttributeError, match="importance"):
        _card(churn, importances=broken)


def test_importance_chart_spec() -> None:
    """Bars per feature, sorted by importance, titled with the metric."""
    spec = importance_chart(_importances(["age", "region"]), "log_loss").render()["spec"]
    assert spec["data"]["values"] == [
        {"feature": "age", "importance": 0.2, "std": 0.01},
        {"feature": "region", "importance": 0.1, "std": 0.01},
    ]
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["y"]["sort"] == "-x"
    assert spec["encoding"]["x"]["title"] == "drop in log_loss when the column is shuffled"


def test_importance_chart_without_std() -> None:
    """Importances without a `std` column cannot be charted."""
    with pytest.raises(AttributeError, match="std"):
        importance_chart(_importances(["age"]).drop(columns=["std"]), "roc_auc")


def test_score_card_shows_counts_distribution_and_refusals() -> None:
    """The scoring card: rows, shards, throughput, missing and unseen shares, the predicted
    classes, a histogram of the scores, and why rows were refused."""
    from flowship.cards import score_card
    from flowship.score import ScoreSummary

    summary = ScoreSummary(
        source="data/*.parquet", output="/scores/today", model_run="TrainFlow/7",
        model_version="TrainFlow/7", verdict="abc", scoring_run="ScoreFlow/9", task="binary",
        rows=1000, scored=998, rejected=2, shards=3, missing=100, unknown=10,
        labels={"0": 700, "1": 298}, scores=[0.1, 0.2, 0.9], rejected_by_column={"age": 2},
        examples=["row 3: age: 'old' is not a number"], seconds=4.0, shard_seconds=6.0,
        fast_path=True, log_files=0, log_dir=None, resumed_from=None,
    )  # fmt: skip
    parts = score_card(summary)
    text = "\n".join(str(p.render()) for p in parts)
    assert "Scoring: **998** of 1,000 rows" in text and "3 shard(s)" in text
    assert "250 rows/s" in text and "10.02%" in text and "1.00%" in text  # missing, unseen
    assert "0.7014" in text  # the share of class 0 among scored rows
    chart = next(p for p in parts if isinstance(p, VegaChart))
    assert chart.render()["spec"]["encoding"]["x"]["title"] == "probability of the positive class"
    assert "row 3: age: 'old' is not a number" in text
    assert summary.lines()[1] == "4.0 s, 250 rows/s"


def test_a_regression_card_says_why_and_shows_predicted_vs_actual() -> None:
    """For a regression run the card names the task and why it was chosen, the rows left out
    for an unusable target, the mean baseline, and ends with predicted-vs-actual (with the
    ideal line) and the residuals (actual − predicted) of every holdout row."""
    from flowship.config import load_settings
    from flowship.sample_data import generate_delivery
    from tests.helpers import small_config
    from tests.unit.conftest import prepare

    config = small_config(
        data={
            "source": "sample:delivery?rows=300&seed=3",
            "target": "delivery_minutes",
            "id_column": "order_id",
        },
        training={
            "metric": "rmse",
            "candidates": [{"name": "ridge", "estimator": "ridge", "params": {"alpha": [1.0]}}],
        },
        gate={"min_metrics": {"r2": 0.1}},
    )
    delivery = prepare(generate_delivery(300, seed=3), load_settings(config))
    target = delivery.schema.target
    predictions = delivery.holdout[[target]].assign(prediction=delivery.holdout[target] + 2.0)
    results = SimpleNamespace(
        best_candidate="ridge[alpha=1.0]",
        settings=delivery.settings,
        leaderboard=pd.DataFrame(
            {"rank": [1], "candidate": ["ridge[alpha=1.0]"], "val_rmse": [2.0]}
        ),
        metrics={"rmse": 2.0, "mae": 2.0},
        baseline_metrics={"rmse": 9.0, "mae": 7.0},
        importances=_importances(delivery.schema.features),
        schema=delivery.schema,
        data_fingerprint="f" * 16,
        lineage={"git_sha": "abc", "git_dirty": False, "config_hash": "c"},
        holdout_predictions=predictions,
        dropped_rows=3,
    )
    components = training_card(results, rows=(len(delivery.train), len(delivery.holdout)))
    title = components[0].render()["source"]
    assert f"task `regression` ({delivery.schema.task_reason})" in title
    assert "auto" in delivery.schema.task_reason
    assert "3 rows without a usable target" in title
    assert components[2].render()["columns"] == ["metric", "model", "mean baseline"]
    heading, scatter, histogram = components[-3:]
    assert "Predicted vs actual" in heading.render()["source"]
    points = scatter.render()["spec"]["layer"][0]["data"]["values"]
    assert len(points) == len(delivery.holdout)
    assert [p["residual"] for p in points] == pytest.approx([-2.0] * len(points))
    assert histogram.render()["spec"]["encoding"]["x"]["field"] == "residual"
