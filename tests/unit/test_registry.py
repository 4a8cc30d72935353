"""Which runs may stand beside the champion as its challenger, and be promoted on live
evidence (the registry's reads are stubbed; tests/flows cover it on real runs)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from flowship import registry
from flowship.errors import RegistryError
from flowship.schema import Schema


def _schema(**changes: Any) -> Schema:
    base = dict(
        task="binary",
        target="churned",
        numeric=["age"],
        categorical=["region"],
        classes=[0, 1],
        categories={"region": ["east"]},
        numeric_ranges={"age": (18.0, 90.0)},
    )
    return Schema(**{**base, **changes})


@dataclass
class _Run:
    pathspec: str


def _artifacts(monkeypatch: pytest.MonkeyPatch, table: dict[str, Any]) -> None:
    monkeypatch.setattr(registry, "model_artifacts", lambda run: table[run.pathspec])


def _data(passed: bool, schema: Schema, decision: str = "dry-run") -> Any:
    return SimpleNamespace(verdict=SimpleNamespace(passed=passed, decision=decision), schema=schema)


def test_a_passed_run_with_the_same_contract_may_challenge(monkeypatch) -> None:
    _artifacts(monkeypatch, {"T/1": _data(True, _schema()), "T/2": _data(True, _schema())})
    registry.check_challenger(_Run("T/1"), _Run("T/2"))


@pytest.mark.parametrize(
    ("challenger", "message"),
    [
        ("T/1", "is the champion itself"),
        ("T/3", r"did not pass its gate \(block\)"),
        ("T/4", r"another contract .*features added: tenure"),
    ],
)
def test_what_cannot_challenge_is_refused_saying_why(monkeypatch, challenger, message) -> None:
    _artifacts(
        monkeypatch,
        {
            "T/1": _data(True, _schema()),
            "T/3": _data(False, _schema(), "block"),
            "T/4": _data(True, _schema(numeric=["age", "tenure"])),
        },
    )
    with pytest.raises(RegistryError, match=message):
        registry.check_challenger(_Run("T/1"), _Run(challenger))


def test_promotion_needs_live_evidence_for_the_champion_it_was_compared_with(monkeypatch) -> None:
    """Not favoured: refused with the comparison's reasons. Favoured but the champion changed
    since: refused. Nothing is promoted either way."""
    promoted: list[Any] = []
    monkeypatch.setattr(registry, "promote", lambda *a, **k: promoted.append(a))
    monkeypatch.setattr(registry, "find_champion", lambda *a: _Run("T/9"))
    comparison = SimpleNamespace(
        id="abc",
        favours_challenger=False,
        challenger_run="T/2",
        champion_run="T/1",
        reasons=["the challenger is not better on roc_auc on these rows"],
    )
    with pytest.raises(RegistryError, match="does not favour T/2: the challenger is not better"):
        registry.promote_challenger(comparison, "churn", "user.me")
    comparison.favours_challenger = True
    with pytest.raises(RegistryError, match="the champion is T/9, not T/1"):
        registry.promote_challenger(comparison, "churn", "user.me")
    assert promoted == []


def _rollback_world(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Runs of project churn (champion T/1) and one of another project; `promote` records
    its calls and makes the run the champion."""
    enforce = SimpleNamespace(passed=True, decision="promote", mode="enforce")
    table = {
        "T/1": SimpleNamespace(verdict=enforce, schema=_schema()),
        "T/2": SimpleNamespace(verdict=enforce, schema=_schema()),
        "T/3": SimpleNamespace(
            verdict=SimpleNamespace(passed=True, decision="dry-run", mode="dry-run"),
            schema=_schema(),
        ),
        "T/4": SimpleNamespace(verdict=enforce, schema=_schema(numeric=["age", "tenure"])),
        "T/5": SimpleNamespace(verdict=enforce, schema=_schema()),
    }
    champion = ["T/1"]
    promoted: list[tuple[Any, ...]] = []

    def promote(pathspec: str, *args: Any) -> str:
        promoted.append((pathspec, *args))
        replaced, champion[0] = champion[0], pathspec
        return replaced

    _artifacts(monkeypatch, table)
    monkeypatch.setattr(registry, "get_run", _Run)
    monkeypatch.setattr(registry, "in_branch", lambda run, *a: run.pathspec != "T/5")
    monkeypatch.setattr(registry, "find_champion", lambda *a: _Run(champion[0]))
    monkeypatch.setattr(registry, "promote", promote)
    return promoted


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("T/5", r"T/5 is not a run of project 'churn', branch 'main'"),
        ("T/3", r"never passed a gate in enforce mode \(its verdict: dry-run, mode dry-run\)"),
        (
            "T/4",
            r"T/4 has another contract than the champion T/1 \(features added: tenure\): train "
            "it again with --accept-new-contract",
        ),
        ("T/1", "T/1 is already the champion"),
    ],
    ids=["another project", "a dry run", "another contract", "the champion"],
)
def test_rollback_refuses_what_the_callers_cannot_use(monkeypatch, target, message) -> None:
    """Another project's run, a dry run, a run of another contract (a run from another
    config) and the champion itself are refused saying why; nothing is promoted."""
    promoted = _rollback_world(monkeypatch)
    with pytest.raises(RegistryError, match=message):
        registry.rollback(target, "churn", "main")
    assert promoted == []


def test_rollback_to_a_passed_run_of_the_same_contract(monkeypatch) -> None:
    promoted = _rollback_world(monkeypatch)
    assert registry.rollback("T/2", "churn", "main") == "T/1"
    assert promoted == [("T/2", "churn", "main", "rollback", "T/1", None)]
