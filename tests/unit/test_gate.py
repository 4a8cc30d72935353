"""The promotion decision from check results, the mode and an audited override."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowship.checks import CheckResult, QualityReport, all_checks
from flowship.config import GateSettings
from flowship.gate import (
    GateError,
    Override,
    Verdict,
    check_override,
    decide_promotion,
    format_verdict,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CHAMPION, CHALLENGER = "TrainFlow/1", "TrainFlow/2"


def _check(
    name: str,
    status: str = "pass",
    critical: bool = True,
    group: str = "data_quality",
    **fields: Any,
) -> CheckResult:
    """A hand-made check result, critical and in the data-quality group unless told."""
    check_id = f"test.{name.replace(' ', '_')}"
    return CheckResult(
        id=check_id, name=name, group=group, status=status, critical=critical, **fields
    )


ROWS = _check("row count", value=600, threshold=300, condition=">= 300")
AUC = _check("roc_auc", group="model_quality", value=0.83, threshold=0.7, condition=">= 0.7")
MISSING_AGE = _check(
    "missing share", "fail", column="age", value=0.6, threshold=0.2, condition="<= 0.2"
)
LOW_AUC = AUC.model_copy(update={"status": "fail", "value": 0.61})
COLUMN_DRIFT = _check(
    "column drift", "warn", critical=False, group="drift", column="monthly_charges", value=0.001
)
DRIFTED_SHARE = _check(
    "drifted share", "fail", critical=False, group="drift", value=0.4, condition="<= 0.05"
)
NO_CHAMPION = _check(
    "roc_auc vs champion", "skipped", critical=False, group="champion", description="no champion"
)


def _decide(checks: list[CheckResult], **kwargs: Any) -> Verdict:
    """decide_promotion at a fixed time, for TrainFlow/2 against champion TrainFlow/1."""
    kwargs.setdefault("champion", CHAMPION)
    return decide_promotion(checks, challenger=CHALLENGER, now=NOW, **kwargs)


# decide_promotion


def test_decide_promotion_promotes_when_critical_checks_pass() -> None:
    """Every critical check passing promotes in enforce mode."""
    verdict = _decide([ROWS, AUC])
    assert (verdict.decision, verdict.promote, verdict.would_promote) == ("promote", True, True)
    assert verdict.passed
    assert verdict.reasons == ["every critical check passed"]
    assert (verdict.mode, verdict.champion, verdict.challenger) == ("enforce", CHAMPION, CHALLENGER)
    assert verdict.override is None
    assert verdict.created_at == "2026-01-02T03:04:05+00:00"


def test_decide_promotion_blocks_on_a_failed_critical_check() -> None:
    """One failed critical check blocks; the reasons name the check, column and limit."""
    verdict = _decide([ROWS, MISSING_AGE, LOW_AUC, AUC.model_copy(update={"name": "f1"})])
    assert (verdict.decision, verdict.promote, verdict.would_promote) == ("block", False, False)
    assert not verdict.passed
    assert verdict.reasons == [
        "missing share [age] failed: 0.6 (needs <= 0.2)",
        "roc_auc failed: 0.61 (needs >= 0.7)",
    ]


def test_decide_promotion_warnings_do_not_block() -> None:
    """Warnings, non-critical failures and skipped checks inform but never block."""
    verdict = _decide([ROWS, AUC, COLUMN_DRIFT, DRIFTED_SHARE, NO_CHAMPION])
    assert (verdict.decision, verdict.promote) == ("promote", True)
    assert verdict.reasons == [
        "every critical check passed",
        "column drift [monthly_charges] warns: 0.001",
        "drifted share warns: 0.4 (needs <= 0.05)",
    ]
    assert verdict.summary() == {"pass": 2, "fail": 1, "warn": 1, "skipped": 1}


@pytest.mark.parametrize(
    ("checks", "would", "verb"),
    [([ROWS, AUC], True, "would promote"), ([ROWS, MISSING_AGE], False, "would block")],
    ids=["passing", "failing"],
)
def test_decide_promotion_dry_run_never_promotes(
    checks: list[CheckResult], would: bool, verb: str
) -> None:
    """A dry run decides as enforce would but never promotes."""
    verdict = _decide(checks, mode="dry-run")
    assert (verdict.decision, verdict.promote, verdict.would_promote) == ("dry-run", False, would)
    assert verdict.reasons[0] == f"dry run: {verb}; nothing changes"


def test_decide_promotion_override_is_recorded() -> None:
    """An override promotes despite failures and records who, why and what failed."""
    verdict = _decide(
        [ROWS, MISSING_AGE, LOW_AUC, COLUMN_DRIFT],
        force=True,
        force_reason="hotfix for the outage",
        user="ana",
    )
    assert (verdict.decision, verdict.promote, verdict.would_promote) == ("override", True, False)
    assert verdict.override == Override(
        user="ana",
        reason="hotfix for the outage",
        failing_checks=["missing share [age]", "roc_auc"],
    )
    assert verdict.reasons[0] == "override by ana: hotfix for the outage"
    assert "missing share [age] failed: 0.6 (needs <= 0.2)" in verdict.reasons


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_decide_promotion_override_needs_a_reason(reason: str | None) -> None:
    """An override without a reason, or with a blank one, is refused."""
    with pytest.raises(GateError, match=r'--force-promote True needs --reason "why"'):
        _decide([ROWS, MISSING_AGE], force=True, force_reason=reason)


def test_decide_promotion_override_in_dry_run() -> None:
    """An override cannot be combined with a dry run."""
    with pytest.raises(GateError, match="cannot be combined with a dry run"):
        _decide([ROWS], mode="dry-run", force=True, force_reason="why not")


def test_decide_promotion_without_checks() -> None:
    """No checks at all is not a basis for a decision."""
    with pytest.raises(GateError, match="no checks were run: refusing to decide on nothing"):
        _decide([])


def test_decide_promotion_without_champion() -> None:
    """The first champion is decided on data and model quality alone, and says so."""
    verdict = _decide([ROWS, AUC, NO_CHAMPION], champion=None)
    assert verdict.promote
    assert verdict.reasons == [
        "every critical check passed",
        "no champion yet: the decision rests on data and model quality alone",
    ]
    assert verdict.champion is None


def test_decide_promotion_verdict_id_is_deterministic() -> None:
    """The same checks, mode, runs and time give the same id; any change gives another."""
    verdict = _decide([ROWS, AUC])
    assert re.fullmatch(r"[0-9a-f]{12}", verdict.id) is not None
    assert _decide([ROWS, AUC]).id == verdict.id
    others = {
        decide_promotion(
            [ROWS, AUC], champion=CHAMPION, challenger=CHALLENGER, now=NOW.replace(second=6)
        ).id,
        _decide([ROWS, AUC], mode="dry-run").id,
        _decide([ROWS, AUC], champion=None).id,
        _decide([ROWS, AUC.model_copy(update={"value": 0.84})]).id,
        _decide([AUC, ROWS]).id,
    }
    assert verdict.id not in others
    assert len(others) == 5


def test_verdict_round_trips_through_json() -> None:
    """A verdict stored as JSON reads back equal, override included."""
    verdict = _decide([ROWS, MISSING_AGE], force=True, force_reason="known issue", user="ana")
    assert Verdict.model_validate_json(verdict.to_json()) == verdict


# all_checks


def test_all_checks_keeps_report_order() -> None:
    """The checks of every report, report by report."""
    reports = [
        QualityReport("data", [ROWS, MISSING_AGE], ""),
        QualityReport("none", [], ""),
        QualityReport("model", [AUC], ""),
    ]
    assert all_checks(reports) == [ROWS, MISSING_AGE, AUC]
    assert all_checks([]) == []


# format_verdict


def test_format_verdict_text() -> None:
    """The terminal text has the decision, the reasons and one line per check."""
    verdict = _decide([ROWS, MISSING_AGE, COLUMN_DRIFT, NO_CHAMPION], champion=None)
    lines = format_verdict(verdict).splitlines()
    assert lines[:5] == [
        f"verdict {verdict.id}: BLOCK (mode enforce)",
        "challenger TrainFlow/2, champion before none",
        "- missing share [age] failed: 0.6 (needs <= 0.2)",
        "- column drift [monthly_charges] warns: 0.001",
        "- no champion yet: the decision rests on data and model quality alone",
    ]
    checks = lines[5:]
    assert len(checks) == len(verdict.checks)
    assert [line.split()[0] for line in checks] == ["PASS", "FAIL", "WARN", "SKIPPED"]
    for line, check in zip(checks, verdict.checks, strict=True):
        assert check.label in line
        assert line.endswith("(informative)") == (not check.critical)
    assert checks[1].split() == ["FAIL", "missing", "share", "[age]", "0.6", "<=", "0.2"]


def test_format_verdict_markdown() -> None:
    """The Markdown has a heading and a table row per check, for a CI summary."""
    verdict = _decide([ROWS, MISSING_AGE, COLUMN_DRIFT, NO_CHAMPION])
    text = format_verdict(verdict, markdown=True)
    lines = text.splitlines()
    assert lines[0] == f"### Gate verdict {verdict.id}: BLOCK (mode enforce)"
    assert lines[1] == "challenger TrainFlow/2, champion before TrainFlow/1"
    table = lines[lines.index("| | check | column | value | condition | critical |") + 2 :]
    assert table == [
        "| ✅ | row count |  | 600 | >= 300 | yes |",
        "| ❌ | missing share | age | 0.6 | <= 0.2 | yes |",
        "| ⚠️ | column drift | monthly_charges | 0.001 |  | no |",
        "| ⏭️ | roc_auc vs champion |  |  |  | no |",
    ]


# check_override


@pytest.mark.parametrize(
    ("config_mode", "dry_run", "expected"),
    [
        ("enforce", False, "enforce"),
        ("enforce", True, "dry-run"),
        ("dry-run", False, "dry-run"),
        ("dry-run", True, "dry-run"),
    ],
)
def test_check_override_mode(config_mode: str, dry_run: bool, expected: str) -> None:
    """The config's mode or the --dry-run flag makes a dry run."""
    assert check_override(GateSettings(mode=config_mode), dry_run, False, "") == expected


def test_check_override_force_with_reason() -> None:
    """An override with a reason runs in enforce mode."""
    assert check_override(GateSettings(), False, True, "hotfix") == "enforce"


def test_check_override_force_without_reason() -> None:
    """--force-promote without a reason is refused before any training."""
    with pytest.raises(GateError, match=r'--force-promote True needs --reason "why"'):
        check_override(GateSettings(), False, True, "  ")


@pytest.mark.parametrize(
    ("config_mode", "dry_run"), [("enforce", True), ("dry-run", False)], ids=["flag", "config"]
)
def test_check_override_force_in_dry_run(config_mode: str, dry_run: bool) -> None:
    """--force-promote with a dry run, from the flag or the config, is refused."""
    with pytest.raises(GateError, match="--force-promote cannot be combined with a dry run"):
        check_override(GateSettings(mode=config_mode), dry_run, True, "hotfix")


# the decision as a property

check_results = st.builds(
    CheckResult,
    name=st.sampled_from(["row count", "missing share", "column drift", "roc_auc"]),
    group=st.sampled_from(["data_quality", "drift", "model_quality", "champion"]),
    status=st.sampled_from(["pass", "fail", "warn", "skipped"]),
    critical=st.booleans(),
    value=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    condition=st.sampled_from(["", ">= 0.7", "<= 0.2"]),
    column=st.none() | st.sampled_from(["age", "region"]),
)


@settings(max_examples=200, deadline=None)
@given(
    checks=st.lists(check_results, min_size=1, max_size=12),
    mode=st.sampled_from(["enforce", "dry-run"]),
    champion=st.none() | st.just(CHAMPION),
)
def test_decide_promotion_never_promotes_past_a_failed_critical_check(
    checks: list[CheckResult], mode: str, champion: str | None
) -> None:
    """Without an override, a failed critical check never promotes; enforce promotes
    exactly when none failed, and dry-run never promotes."""
    verdict = decide_promotion(checks, mode=mode, champion=champion, now=NOW)
    critical_failure = any(c.critical and c.status == "fail" for c in checks)
    assert verdict.would_promote == (not critical_failure)
    if critical_failure:
        assert not verdict.promote
    if mode == "enforce":
        assert verdict.promote == (not critical_failure)
        assert verdict.decision == ("block" if critical_failure else "promote")
    else:
        assert (verdict.promote, verdict.decision) == (False, "dry-run")
    failed = [r for r in verdict.reasons if " failed: " in r]
    assert len(failed) == sum(c.critical and c.status == "fail" for c in checks)


def test_releasable_means_passed_or_overridden() -> None:
    """A run may serve or score when its gate passed (also in a dry run) or an audited
    override promoted it; a blocked run or none may not."""
    from flowship.gate import releasable

    assert releasable(_decide([ROWS, AUC]))
    assert releasable(_decide([ROWS, AUC], mode="dry-run"))
    assert releasable(_decide([ROWS, LOW_AUC], force=True, force_reason="hotfix", user="ana"))
    assert not releasable(_decide([ROWS, LOW_AUC]))
    assert not releasable(None)
