"""Check results, the declared checks, and seeded samples with their stated margin."""

from __future__ import annotations

import typing

import numpy as np
import pandas as pd
import pytest

from flowship.checks import (
    CHECKS,
    DATA_MISSING,
    DRIFT_VS_CHAMPION,
    SPECS,
    CheckResult,
    Group,
    drifted_columns,
    make_check,
    sample_rows,
    skipped_check,
)

# CheckResult and skipped_check


def test_check_result_blocking_and_label() -> None:
    """Only a failed critical check blocks; the label names the column when there is one."""
    check = CheckResult(
        id=DATA_MISSING, name="missing share", group="data_quality", status="fail", critical=True
    )
    assert check.blocking
    assert check.label == "missing share"
    assert not check.model_copy(update={"critical": False}).blocking
    assert not check.model_copy(update={"status": "warn"}).blocking
    assert check.model_copy(update={"column": "age"}).label == "missing share [age]"


def test_skipped_check_is_informative() -> None:
    """A check that could not run is skipped, non-critical and says why."""
    check = skipped_check(DRIFT_VS_CHAMPION, "no champion yet")
    assert (check.status, check.critical, check.blocking) == ("skipped", False, False)
    assert (check.value, check.threshold, check.description) == (None, None, "no champion yet")


# sample_rows


def test_sample_rows_is_seeded_and_keeps_small_tables_whole() -> None:
    frame = pd.DataFrame({"x": np.arange(5000)})
    small = sample_rows(frame, 10_000, seed=0)
    assert small.frame is frame
    assert (small.rows, small.of_rows, small.share_error) == (5000, 5000, 0.0)
    assert small.describe("Window") == "Window: all 5,000 rows"
    one, again, other = (sample_rows(frame, 1000, seed) for seed in (3, 3, 4))
    assert one.frame.index.equals(again.frame.index)
    assert not one.frame.index.equals(other.frame.index)
    assert (one.rows, one.of_rows) == (1000, 5000)


def test_sample_rows_margin_holds_for_a_share() -> None:
    """The stated 95% margin covers the sampling error of a share (here 30% missing) for
    19 of 20 seeds or better, and matches the textbook value at 50,000 of 1,000,000."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": np.where(rng.random(200_000) < 0.3, np.nan, 1.0)})
    truth = frame["x"].isna().mean()
    errors = []
    for seed in range(20):
        sample = sample_rows(frame, 5000, seed)
        errors.append(abs(sample.frame["x"].isna().mean() - truth) <= sample.share_error)
    assert sum(errors) >= 19
    big = sample_rows(pd.DataFrame({"x": np.zeros(1_000_000)}), 50_000, seed=0)
    assert big.share_error == pytest.approx(0.00427, abs=1e-5)
    assert "±0.43 percentage points" in big.describe("Window")


# the declared checks


def test_check_ids_are_unique_and_grouped() -> None:
    """Every declared check has its own id, prefixed like its kind, in a known group."""
    assert len(SPECS) == len(CHECKS)
    groups = {"data_quality", "contract", "drift", "model_quality", "champion", "latency", "live"}
    assert {s.group for s in CHECKS} <= groups == set(typing.get_args(Group))
    assert all("." in s.id for s in CHECKS)


def test_make_check_fills_the_spec_and_turns_a_non_critical_failure_into_a_warning() -> None:
    """A result takes its name and group from its spec; a failure that does not block warns."""
    check = make_check("model.metric", "fail", metric="roc_auc", value=0.6)
    assert (check.id, check.name, check.group, check.status) == (
        "model.metric",
        "roc_auc",
        "model_quality",
        "fail",
    )
    assert check.blocking
    column = make_check("drift.column", "fail", column="age")
    assert (column.status, column.critical, column.blocking) == ("warn", False, False)
    assert make_check("drift.share", "fail", critical=False).status == "warn"


def test_make_check_refuses_an_undeclared_check() -> None:
    """A check must be declared before it can have results."""
    with pytest.raises(KeyError):
        make_check("drift.made_up", "pass")


def test_drifted_columns_reads_column_drift_by_id() -> None:
    """The drifted columns are the column-drift checks that did not pass, found by id."""
    checks = [
        make_check("drift.column", "pass", column="age"),
        make_check("drift.column", "fail", column="monthly_charges"),
        make_check("drift.share", "fail", value=0.5),
        make_check("data.missing_share", "fail", column="region"),
    ]
    assert drifted_columns(checks) == ["monthly_charges"]


def test_every_task_names_declared_target_checks() -> None:
    """The target checks a task asks for are declared checks."""
    from flowship.tasks import TASKS

    for task in TASKS.values():
        assert set(task.target_checks) <= set(SPECS), task.name
