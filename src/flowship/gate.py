"""The promotion decision: a pure function of check results, the mode and an audited override."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeIs

from flowship.checks import CONTRACT, CheckResult
from flowship.config import GateSettings
from flowship.errors import GateError

Mode = Literal["enforce", "dry-run"]


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
    accepted_contract: Override | None = None  # who accepted a new contract, why, what changed

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


def check_override(
    gate: GateSettings, dry_run: bool, force: bool, reason: str, accept_contract: bool = False
) -> Mode:
    """The gate mode for this run, refusing a bad override before any training is done.

    Raises:
        GateError: `--force-promote` or `--accept-new-contract` without `--reason`, or
            `--force-promote` combined with a dry run.
    """
    mode: Mode = "dry-run" if dry_run or gate.mode == "dry-run" else "enforce"
    if force and not reason.strip():
        raise GateError(
            '--force-promote True needs --reason "why": an override without a reason is refused'
        )
    if accept_contract and not reason.strip():
        raise GateError(
            '--accept-new-contract True needs --reason "why": a new contract is accepted only '
            "with a recorded reason"
        )
    if force and mode == "dry-run":
        raise GateError("--force-promote cannot be combined with a dry run")
    return mode


def decide_promotion(
    checks: list[CheckResult],
    *,
    mode: Mode = "enforce",
    champion: str | None = None,
    challenger: str | None = None,
    force_reason: str | None = None,
    force: bool = False,
    accept_contract: bool = False,
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
        accept_contract: a changed contract (the `contract` check) does not block; who
            accepted it, why and what changed are recorded.
        user: who asked (recorded on an override or an accepted contract).
        now: the decision time (for reproducible tests).

    Raises:
        GateError: an override without a reason, or an override in dry-run mode.
    """
    if force or accept_contract:
        check_override(GateSettings(mode=mode), False, force, force_reason or "", accept_contract)
    if not checks:
        raise GateError("no checks were run: refusing to decide on nothing")

    changed = [c for c in checks if c.id == CONTRACT and c.blocking]
    accepted = None
    if accept_contract and changed:
        accepted = Override(
            user=user, reason=force_reason or "", failing_checks=[c.description for c in changed]
        )
    blocking = [c for c in checks if c.blocking and not (accepted and c.id == CONTRACT)]
    warnings = [c for c in checks if c.status == "warn" or (c.status == "fail" and not c.critical)]
    would_promote = not blocking
    reasons = [f"{c.label} failed: {_observed(c)}" for c in blocking]
    reasons += [f"{c.label} warns: {_observed(c)}" for c in warnings]
    if champion is None:
        reasons.append("no champion yet: the decision rests on data and model quality alone")
    if accepted is not None:
        reasons.append(f"new contract accepted by {user}: {force_reason}")

    override = None
    if force:
        decision, promote = "override", True
        override = Override(
            user=user, reason=force_reason or "", failing_checks=[c.label for c in blocking]
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
        "override": [user, force_reason] if force else None,
    }
    if accepted is not None:
        body["accepted_contract"] = [user, force_reason]
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
        accepted_contract=accepted,
    )


def _observed(check: CheckResult) -> str:
    if check.value is None:
        return check.description or check.condition
    value = f"{check.value:.4g}"
    return f"{value} (needs {check.condition})" if check.condition else value


_ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skipped": "⏭️"}


def format_verdict(verdict: Verdict, markdown: bool = False) -> str:
    """The verdict as text for a terminal, or as Markdown for a CI job summary / PR comment."""
    head = f"verdict {verdict.id}: {verdict.decision.upper()} (mode {verdict.mode})"
    lines = [f"### Gate {head}" if markdown else head]
    lines.append(f"challenger {verdict.challenger}, champion before {verdict.champion or 'none'}")
    lines += [f"- {reason}" for reason in verdict.reasons]
    if markdown:
        lines += [
            "",
            "| | check | column | value | condition | critical |",
            "|---|---|---|---|---|---|",
        ]
    for c in verdict.checks:
        value = "" if c.value is None else f"{c.value:.4g}"
        critical = "yes" if c.critical else "no"
        if markdown:
            lines.append(
                f"| {_ICONS[c.status]} | {c.name} | {c.column or ''} | {value} | "
                f"{c.condition} | {critical} |"
            )
        else:
            lines.append(
                f"  {c.status.upper():7} {c.label:40} {value:>10} {c.condition:>12}"
                f"{'' if c.critical else '  (informative)'}"
            )
    return "\n".join(lines)


def releasable(verdict: Verdict | None) -> TypeIs[Verdict]:
    """Whether a run with this verdict may serve or score: its gate passed, or an audited
    override promoted it."""
    return verdict is not None and (verdict.passed or verdict.decision == "override")
