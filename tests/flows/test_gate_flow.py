"""The gate and the champion registry through whole TrainFlow runs; each test asserts the
champion before and after. The tests share one datastore and run in file order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from metaflow.cards import get_cards

from flowship.errors import RegistryError
from flowship.registry import find_champion, history, rollback
from flowship.runs import branch_name
from flowship.sample_data import write_sample
from tests.helpers import TRAIN_FLOW, run_flow, small_config

pytestmark = pytest.mark.slow
ONE_CANDIDATE = {
    "candidates": [{"name": "logreg", "estimator": "logistic_regression", "params": {"C": [1.0]}}]
}


def champion() -> str | None:
    run = find_champion("churn", branch_name())
    return run.pathspec if run else None


def train(datastore: Path, config: dict | None = None, **params):
    return run_flow(datastore, TRAIN_FLOW, config or small_config(training=ONE_CANDIDATE), **params)


def csv_config(tmp_path: Path, edit) -> dict:
    """A config over a CSV of the sample data, changed by `edit(frame) -> frame`."""
    path = write_sample(tmp_path / "data.csv", rows=600, seed=3)
    edit(pd.read_csv(path)).to_csv(path, index=False)
    return small_config(data={"source": str(path)}, training=ONE_CANDIDATE)


@pytest.fixture(scope="module")
def first(datastore: Path) -> str:
    assert champion() is None
    result = train(datastore)
    assert result.status == "successful", result.stdout + result.stderr
    return result.run.pathspec


def test_first_good_run_promotes(first: str) -> None:
    """With no champion, a run that passes data and model quality becomes the champion."""
    assert champion() == first
    verdict = find_champion("churn", branch_name()).data.verdict
    assert verdict.decision == "promote"
    assert "no champion yet: the decision rests on data and model quality alone" in verdict.reasons
    assert {"data_quality", "model_quality"} <= {c.group for c in verdict.checks}


def test_second_run_is_compared_with_the_champion(datastore: Path, first: str) -> None:
    """The same data again is scored against the champion on its holdout and decided by
    max_regression; the promotion is recorded in tags and history."""
    assert champion() == first
    result = train(datastore)
    verdict = result.run.data.verdict
    comparison = next(c for c in verdict.checks if c.name == "roc_auc vs champion")
    assert comparison.status == "pass" and comparison.critical
    assert comparison.threshold == pytest.approx(comparison.value - 0.05)  # same model, same data
    assert verdict.champion == first and verdict.decision == "promote"
    assert champion() == result.run.pathspec
    assert any(t.startswith("promoted:") for t in result.run.tags)
    events = [(e.event, e.run) for e in history("churn", branch_name())]
    assert events[-3:] == [
        ("promoted", first),
        ("demoted", first),
        ("promoted", result.run.pathspec),
    ] or events[-2:] == [("demoted", first), ("promoted", result.run.pathspec)]


def test_worse_challenger_is_blocked(datastore: Path, tmp_path: Path) -> None:
    """Shuffled labels give a model no better than chance: blocked, champion unchanged."""
    before = champion()
    rng = np.random.default_rng(0)

    def shuffle(frame: pd.DataFrame) -> pd.DataFrame:
        frame["churned"] = rng.permutation(frame["churned"].to_numpy())
        return frame

    result = train(datastore, csv_config(tmp_path, shuffle))
    assert result.status == "successful"  # a blocked run did its job: it decided
    verdict = result.run.data.verdict
    assert verdict.decision == "block" and not result.run.data.promoted
    failed = {c.name for c in verdict.checks if c.blocking}
    assert "roc_auc" in failed  # below [gate] min_metrics
    # on these (shuffled) labels the champion is no better: the comparison itself is honest
    assert any(c.name == "roc_auc vs champion" for c in verdict.checks)
    assert "gate:blocked" in result.run.tags
    assert champion() == before
    from flowship.score import resolve_model  # a blocked model scores no batch either

    with pytest.raises(RegistryError, match=r"did not pass its gate \(block\); score with"):
        resolve_model(result.run.pathspec, "churn", branch_name())


def test_corrupted_feature_is_blocked_naming_column_and_limit(datastore: Path, tmp_path: Path):
    """A feature 60% missing blocks the run; the reason names the column and the limit."""
    before = champion()

    def hollow(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.sample(frac=0.6, random_state=1).index, "monthly_charges"] = np.nan
        return frame

    result = train(datastore, csv_config(tmp_path, hollow))
    verdict = result.run.data.verdict
    assert verdict.decision == "block"
    assert any("monthly_charges" in r and "<= 0.2" in r for r in verdict.reasons), verdict.reasons
    assert champion() == before


def test_one_class_target_is_refused(datastore: Path, tmp_path: Path) -> None:
    """A one-class target fails the run at load with the fix in the message."""
    before = champion()

    def one_class(frame: pd.DataFrame) -> pd.DataFrame:
        frame["churned"] = 0
        return frame

    result = train(datastore, csv_config(tmp_path, one_class))
    assert result.status == "failed"
    assert "target column 'churned' has one class" in result.stdout + result.stderr
    assert champion() == before


def test_too_few_rows_is_blocked(datastore: Path) -> None:
    """Fewer rows than [gate] min_rows blocks promotion, naming the limit."""
    before = champion()
    config = small_config(data={"source": "sample:churn?rows=200&seed=3"}, training=ONE_CANDIDATE)
    verdict = train(datastore, config).run.data.verdict
    assert verdict.decision == "block"
    assert "row count failed: 200 (needs >= 300)" in verdict.reasons
    assert champion() == before


def test_dry_run_never_promotes(datastore: Path) -> None:
    """A dry run computes the verdict, says what would happen, and changes nothing."""
    before = champion()
    result = train(datastore, dry_run=True)
    verdict = result.run.data.verdict
    assert verdict.decision == "dry-run" and verdict.would_promote and not verdict.promote
    assert verdict.reasons[0] == "dry run: would promote; nothing changes"
    assert champion() == before


def test_override_needs_a_reason_and_is_recorded(datastore: Path, tmp_path: Path) -> None:
    """--force-promote without --reason is refused at start; with one it promotes a blocked
    challenger and records who, why and which checks failed."""
    before = champion()
    refused = train(datastore, force_promote=True)
    assert refused.status == "failed"
    assert "an override without a reason is refused" in refused.stdout + refused.stderr
    assert champion() == before

    def shuffle(frame: pd.DataFrame) -> pd.DataFrame:
        frame["churned"] = np.random.default_rng(1).permutation(frame["churned"].to_numpy())
        return frame

    forced = train(
        datastore, csv_config(tmp_path, shuffle), force_promote=True, reason="incident 42 hotfix"
    )
    verdict = forced.run.data.verdict
    assert verdict.decision == "override" and verdict.promote and not verdict.passed
    assert verdict.override.reason == "incident 42 hotfix"
    assert verdict.override.user == os.environ["USERNAME"]
    assert "roc_auc" in verdict.override.failing_checks
    assert "decision:override" in forced.run.tags
    assert champion() == forced.run.pathspec


def test_rollback_restores_a_passed_run_only(datastore: Path, first: str) -> None:
    """Rollback re-tags an earlier passed run; a run that never passed is refused."""
    forced = champion()
    rollback(first, "churn", branch_name())
    assert champion() == first
    with pytest.raises(RegistryError, match="never passed a gate"):
        rollback(forced, "churn", branch_name())
    assert champion() == first
    assert history("churn", branch_name())[-1].how == "rollback"


def test_gate_card_lists_every_check(first: str) -> None:
    """The gate step's HTML card has the decision and one row per check with its status."""
    from metaflow import Run

    run = Run(first)
    cards = get_cards(run["gate"].task)
    html = cards[0].get()
    verdict = run.data.verdict
    assert "PROMOTED" in html
    assert html.count("<tr><td") == len(verdict.checks)
    for check in verdict.checks:
        assert check.name in html
    assert "srcdoc=" in html  # the Evidently reports are embedded below the table
