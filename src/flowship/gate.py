"""The promotion decision: a pure function of check results, the mode and an audited override."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["pass", "fail", "warn", "skipped"]
Group = Literal["data_quality", "drift", "model_quality", "champion"]
Mode = Literal["enforce", "dry-run"]


class GateError(ValueError):
    """A request the gate refuses (e.g. an override without a reason)."""


class CheckResult(BaseModel):
    """One check, as read from Evidently's test results."""

    model_config = ConfigDict(frozen=True)

    name: str
    group: Group
    status: Status
    critical: bool
    value: float | None = None
    threshold: float | None = None
    condition: str = ""
    column: str | None = None
    description: str = ""

    @property
    def blocking(self) -> bool:
        """A failed critical check blocks promotion; anything else only informs."""
        return self.critical and self.status == "fail"


class Override(BaseModel):
    """An audited decision to promote despite failing checks."""

    model_config = ConfigDict(frozen=True)

    user: str
    reason: str
    failing_checks: list[str] = Field(default_factory=list)


class Verdict(BaseModel):
    """The gate's decision with every check it was based on."""

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: str
    mode: Mode
    decision: Literal["promote", "block", "dry-run", "override"]
    promote: bool
    would_promote: bool
    reasons: list[str]
    checks: list[CheckResult]
    champion: str | None
    challenger: str | None
    override: Override | None = None

    @property
    def passed(self) -> bool:
        """Whether every critical check passed (independent of mode and override)."""
        return self.would_promote

    def summary(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "warn": 0, "skipped": 0}
        for check in self.checks:
            counts[check.status] += 1
        return counts

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


def decide_promotion(
    checks: list[CheckResult],
    *,
    mode: Mode = "enforce",
    champion: str | None = None,
    challenger: str | None = None,
    force_reason: str | None = None,
    force: bool = False,
    user: str = "unknown",
    now: datetime | None = None,
) -> Verdict:
    """Decide whether the challenger becomes the champion.

    It promotes when no critical check fails, in `enforce` mode. `dry-run` computes the same
    decision but never promotes. An override (`force=True`) promotes despite failing checks
    and records who, why and which checks failed; it needs a non-empty reason.

    Args:
        checks: every check result (data quality, drift, model quality, champion comparison).
        mode: `enforce` or `dry-run`.
        champion: pathspec of the current champion, None when there is none yet.
        challenger: pathspec of the run being decided.
        force_reason: why the override is needed (required with `force`).
        force: promote despite failing checks.
        user: who asked (recorded on an override).
        now: the decision time (for reproducible tests).

    Raises:
        GateError: an override without a reason, or an override in dry-run mode.
    """
    if force and not (force_reason or "").strip():
        raise GateError(
            '--force-promote needs --reason "why": an override without a reason is refused'
        )
    if force and mode == "dry-run":
        raise GateError("--force-promote cannot be combined with dry-run mode")
    if not checks:
        raise GateError("no checks were run: refusing to decide on nothing")

    blocking = [c for c in checks if c.blocking]
    warnings = [c for c in checks if c.status == "warn" or (c.status == "fail" and not c.critical)]
    would_promote = not blocking
    reasons = [f"{_label(c)} failed: {_observed(c)}" for c in blocking]
    reasons += [f"{_label(c)} warns: {_observed(c)}" for c in warnings]
    if champion is None:
        reasons.append("no champion yet: the decision rests on data and model quality alone")

    override = None
    if force:
        decision, promote = "override", True
        override = Override(
            user=user, reason=force_reason or "", failing_checks=[_label(c) for c in blocking]
        )
        reasons.insert(0, f"override by {user}: {force_reason}")
    elif mode == "dry-run":
        decision, promote = "dry-run", False
        verb = "would promote" if would_promote else "would block"
        reasons.insert(0, f"dry run: {verb}; nothing changes")
    elif would_promote:
        decision, promote = "promote", True
        reasons.insert(0, "every critical check passed")
    else:
        decision, promote = "block", False

    created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    body = {
        "checks": [c.model_dump() for c in checks],
        "mode": mode,
        "champion": champion,
        "challenger": challenger,
        "decision": decision,
        "created_at": created,
    }
    verdict_id = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    return Verdict(
        id=verdict_id,
        created_at=created,
        mode=mode,
        decision=decision,
        promote=promote,
        would_promote=would_promote,
        reasons=reasons,
        checks=checks,
        champion=champion,
        challenger=challenger,
        override=override,
    )


def _label(check: CheckResult) -> str:
    return f"{check.name} [{check.column}]" if check.column else check.name


def _observed(check: CheckResult) -> str:
    if check.value is None:
        return check.description or check.condition
    value = f"{check.value:.4g}"
    return f"{value} (needs {check.condition})" if check.condition else value
