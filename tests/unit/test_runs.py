"""Project branches, finding the newest successful run, and writing a run's card."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flowship import runs as registry
from flowship.runs import (
    RegistryError,
    branch_name,
    latest_successful_run,
    project_runs,
    write_card,
)


@pytest.mark.parametrize(
    ("branch", "production", "expected"),
    [
        (None, False, "user.alice"),
        ("x", False, "test.x"),
        (None, True, "prod"),
        ("x", True, "prod.x"),
    ],
)
def test_branch_name(
    branch: str | None, production: bool, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No option is the user's branch; --branch is test.x; --production is prod (prod.x)."""
    monkeypatch.delenv("METAFLOW_OWNER", raising=False)
    monkeypatch.setenv("USERNAME", "alice")
    assert branch_name(branch, production) == expected


def test_branch_name_prefers_metaflow_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    """METAFLOW_OWNER names the user before USERNAME does, as in Metaflow."""
    monkeypatch.setenv("METAFLOW_OWNER", "ci-bot")
    monkeypatch.setenv("USERNAME", "alice")
    assert branch_name() == "user.ci-bot"


def test_project_runs_of_an_unknown_flow(empty_datastore: Path) -> None:
    """A flow that never ran has no runs rather than an error."""
    assert project_runs("TrainFlow", "churn", "user.alice") == []


def test_latest_successful_run_in_an_empty_datastore(empty_datastore: Path) -> None:
    """With no runs at all it says which run is missing and to run `make train`."""
    with pytest.raises(
        RegistryError,
        match=r"no successful TrainFlow run in project 'churn', branch 'user\.alice' yet; "
        r"run `make train` first",
    ):
        latest_successful_run("TrainFlow", "churn", "user.alice")


@dataclass
class _FakeRun:
    pathspec: str
    successful: bool = True
    steps: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, step: str) -> Any:
        return self.steps[step]


@dataclass
class _FakeStep:
    task: str


class _FakeCard:
    def get(self) -> str:
        return "<html>card</html>"


def test_latest_successful_run_skips_failed_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest run that succeeded is returned, past newer failures."""
    runs = [_FakeRun("TrainFlow/3", False), _FakeRun("TrainFlow/2"), _FakeRun("TrainFlow/1")]
    monkeypatch.setattr(registry, "project_runs", lambda *args: runs)
    assert latest_successful_run("TrainFlow", "churn", "prod").pathspec == "TrainFlow/2"


def test_latest_successful_run_when_every_run_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only failed runs count as none."""
    monkeypatch.setattr(registry, "project_runs", lambda *args: [_FakeRun("TrainFlow/1", False)])
    with pytest.raises(RegistryError, match=r"no successful TrainFlow run .* branch 'prod'"):
        latest_successful_run("TrainFlow", "churn", "prod")


def test_write_card_writes_the_first_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The step's first card is written as HTML, creating the folder."""
    monkeypatch.setattr(registry, "get_cards", lambda task: [_FakeCard(), None])
    run = _FakeRun("TrainFlow/1", steps={"evaluate": _FakeStep("task")})
    path = write_card(run, "evaluate", tmp_path / "reports" / "card.html")  # type: ignore[arg-type]
    assert path.read_text() == "<html>card</html>"


def test_write_card_unknown_step(tmp_path: Path) -> None:
    """A step the run does not have is named in the error."""
    run = _FakeRun("TrainFlow/1", steps={"evaluate": _FakeStep("task")})
    with pytest.raises(RegistryError, match="TrainFlow/1 has no card for step 'gate'"):
        write_card(run, "gate", tmp_path / "card.html")  # type: ignore[arg-type]
    assert not (tmp_path / "card.html").exists()


def test_write_card_step_without_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that rendered no card says so."""
    monkeypatch.setattr(registry, "get_cards", lambda task: [])
    run = _FakeRun("TrainFlow/1", steps={"start": _FakeStep("task")})
    with pytest.raises(RegistryError, match="TrainFlow/1 step 'start' produced no card"):
        write_card(run, "start", tmp_path / "card.html")  # type: ignore[arg-type]


@pytest.mark.parametrize("pathspec", ["garbage", "TrainFlow/abc/def/ghi/jkl", "NoSuchFlow/1"])
def test_get_run_of_a_bad_pathspec_is_one_clear_error(empty_datastore, pathspec: str) -> None:
    """`make rollback RUN=garbage` says what a run is called, never Metaflow's traceback."""
    from flowship.runs import get_run

    with pytest.raises(RegistryError, match=r"no run .*; a run is named like TrainFlow/"):
        get_run(pathspec)
