"""The CI state manifest: what it records, how it reads back, and the check at restore."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowship import ci_state, registry
from flowship.ci_state import (
    Champion,
    Manifest,
    StateError,
    Writer,
    champion_from_tags,
    check_state,
    load_manifest,
    lost_promotion,
    main,
    manifest_to_json,
    new_manifest,
    parse_manifest,
    summary_line,
    writer_from_env,
)
from tests.helpers import small_config, write_config

GITHUB_ENV = {
    "GITHUB_WORKFLOW": "monitor",
    "GITHUB_JOB": "train",
    "GITHUB_RUN_ID": "123",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/churn",
}
OLD = Champion("TrainFlow/5", "20251201T030000Z", "v5")
NEW = Champion("TrainFlow/9", "20251202T030000Z", "v9")


def _manifest(champion: Champion | None, branch: str = "prod") -> Manifest:
    writer = writer_from_env(GITHUB_ENV)
    return new_manifest("churn", branch, champion, writer, datetime(2025, 12, 2, 5, 41, tzinfo=UTC))


def test_champion_from_tags_takes_the_newest_promotion_and_the_verdict() -> None:
    """A run promoted twice (a rollback) is stamped with its last promotion."""
    tags = [
        "gate:passed",
        "verdict:v9",
        "promoted:20251201T0000Z:pass-v9",
        "promoted:20251203T0000Z:rollback",
    ]
    assert champion_from_tags("TrainFlow/9", tags) == Champion(
        "TrainFlow/9", "20251203T0000Z", "v9"
    )
    assert champion_from_tags("TrainFlow/9", []) == Champion("TrainFlow/9", "", None)


def test_champion_order_follows_promotion_time_not_run_id() -> None:
    """An older run rolled back to after a newer one's promotion is the newer champion."""
    rolled_back = Champion("TrainFlow/5", "20251203T000000Z", "v5")
    assert rolled_back.order() > NEW.order() > OLD.order()


def test_writer_from_env_names_the_run_and_links_the_attempt() -> None:
    """Inside Actions the writer is workflow, run, attempt and job, with the attempt's URL."""
    writer = writer_from_env(GITHUB_ENV)
    assert writer.describe() == "monitor run 123 attempt 2, job train"
    assert writer.url == "https://github.com/acme/churn/actions/runs/123/attempts/2"


def test_writer_from_env_outside_actions() -> None:
    """Outside Actions the writer is `local`, with no run and no link."""
    writer = writer_from_env({})
    assert writer == Writer("local", "", "", "", None)
    assert writer.describe() == "local (outside GitHub Actions)"


def test_manifest_round_trips_through_json() -> None:
    """What write stores, parse reads back unchanged, with the format number."""
    manifest = _manifest(NEW)
    text = manifest_to_json(manifest)
    assert json.loads(text)["format"] == ci_state.MANIFEST_FORMAT
    assert json.loads(text)["champion"]["verdict"] == "v9"
    assert parse_manifest(text) == manifest
    assert parse_manifest(manifest_to_json(_manifest(None))).champion is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "Expecting value"),
        ('{"format": 7}', "format 7, expected 1"),
        ('{"format": 1, "project": "churn"}', "no 'champion' key"),
        ("[1]", "'list' object has no attribute 'get'"),
    ],
)
def test_parse_manifest_refuses_what_is_not_a_manifest(text: str, problem: str) -> None:
    """A damaged file is a clear one-line error naming the file and how to go on."""
    with pytest.raises(StateError, match=r"x\.json is not a flowship state manifest") as error:
        parse_manifest(text, "x.json")
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_load_manifest_of_a_missing_file(tmp_path: Path) -> None:
    """No file: no manifest yet, not an error."""
    assert load_manifest(tmp_path / "state.json") is None


@pytest.mark.parametrize(
    ("restored", "recorded"),
    [(NEW, NEW), (NEW, OLD), (None, None), (OLD, None)],
    ids=["same", "restored-newer", "nothing-anywhere", "none-recorded"],
)
def test_lost_promotion_accepts_a_state_as_new_as_the_manifest(
    restored: Champion | None, recorded: Champion | None
) -> None:
    """The restored champion may equal, or be newer than, the one the manifest records."""
    assert lost_promotion(restored, _manifest(recorded)) is None


def test_lost_promotion_names_an_older_champion() -> None:
    """An older restored champion: the message names both, the writer, and the way out."""
    lost = lost_promotion(OLD, _manifest(NEW))
    assert lost is not None
    assert "champion TrainFlow/5 (promoted 20251201T030000Z) is older" in lost
    assert "monitor run 123 attempt 2, job train left TrainFlow/9 (verdict v9" in lost
    assert "gh cache delete" in lost and "\n" not in lost


def test_lost_promotion_names_a_missing_champion() -> None:
    """No champion at all where the manifest records one: the promotion is missing."""
    lost = lost_promotion(None, _manifest(NEW))
    assert lost is not None and lost.startswith("the restored state has no champion, but")


def test_check_state_lines() -> None:
    """The job-summary line says where the state came from and whether the manifest agrees."""
    first = check_state("churn", "prod", None, None, None, "")
    assert first == "**State in:** no champion, no cache restored; no manifest saved yet."
    agreed = check_state("churn", "prod", NEW, _manifest(NEW), _manifest(NEW), "metaflow-state-k")
    assert "champion `TrainFlow/9` (verdict `v9`" in agreed
    assert "restored from cache `metaflow-state-k` (saved by monitor run 123 attempt 2" in agreed
    assert agreed.endswith("the newest manifest (monitor run 123 attempt 2, job train) agrees.")
    other = check_state("churn", "prod", None, None, _manifest(NEW, branch="test.x"), "k")
    assert "branch 'test.x', not 'churn', 'prod': nothing to compare" in other


def test_check_state_raises_on_a_loss() -> None:
    """A lost promotion is an error, not a line: against the manifest cached on its own, or,
    when there is none, against the state's own."""
    with pytest.raises(StateError, match="is older"):
        check_state("churn", "prod", OLD, _manifest(OLD), _manifest(NEW), "k")
    with pytest.raises(StateError, match="has no champion"):
        check_state("churn", "prod", None, _manifest(NEW), None, "k")


def test_check_state_accepts_a_newer_state_than_the_newest_manifest() -> None:
    """The manifest cached apart may lag the state (its save failed): nothing is lost."""
    line = check_state("churn", "prod", NEW, _manifest(NEW), _manifest(OLD), "k")
    assert line.endswith("agrees.")


def test_summary_line_links_the_run() -> None:
    """The line a job leaves names the champion, the writer and links its attempt."""
    line = summary_line(_manifest(NEW))
    assert line.startswith("**State out:** champion `TrainFlow/9` (verdict `v9`")
    assert "written by monitor run 123 attempt 2, job train at 2025-12-02T05:41:00Z" in line
    assert line.endswith("([run](https://github.com/acme/churn/actions/runs/123/attempts/2)).")


# ---- the command line, on a real (empty) Metaflow datastore ---------------------------------


@dataclass
class _FakeRun:
    pathspec: str
    tags: frozenset[str] = field(default_factory=frozenset)


@pytest.fixture
def config(empty_datastore: Path) -> Path:
    return write_config(empty_datastore / "project.toml", small_config())


def test_main_check_fails_when_the_manifest_champion_is_missing(
    config: Path, empty_datastore: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty datastore where the newest manifest records a champion: exit 2, one error
    line, and the same words on stdout for the job summary."""
    newest = empty_datastore / ".ci-state" / "state.json"
    newest.parent.mkdir()
    newest.write_text(manifest_to_json(_manifest(NEW)))
    code = main(["check", "--config", str(config), "--production", "--newest", str(newest)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: the restored state has no champion") and err.count("\n") == 1
    assert out.startswith("**State lost:** the restored state has no champion")


def test_main_write_then_summary_then_check(
    config: Path,
    empty_datastore: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """write records the branch's champion and the GitHub run, in the state and in the copy
    cached apart; check then agrees."""
    champion = _FakeRun("TrainFlow/9", frozenset({"verdict:v9", "promoted:20251202T030000Z:x"}))
    monkeypatch.setattr(registry, "find_champion", lambda project, branch: champion)
    for name, value in GITHUB_ENV.items():
        monkeypatch.setenv(name, value)
    manifest, newest = empty_datastore / ".metaflow" / "state.json", empty_datastore / "n.json"
    common = ["--config", str(config), "--production", "--manifest", str(manifest)]
    common += ["--newest", str(newest)]
    assert main(["write", *common]) == 0
    written = load_manifest(manifest)
    assert written is not None and written.champion == NEW and written.branch == "prod"
    assert newest.read_text() == manifest.read_text()
    assert main(["summary", "--manifest", str(manifest)]) == 0
    assert main(["check", *common, "--restored-key", "metaflow-state-123-2-train"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("**State out:** champion `TrainFlow/9`")
    assert out[1].endswith("agrees.")


def test_main_summary_without_a_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary of a missing manifest: exit 2, saying how to write one."""
    assert main(["summary", "--manifest", str(tmp_path / "state.json")]) == 2
    assert "write one with `make state-manifest`" in capsys.readouterr().err


def test_main_with_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing configuration file is the config's own one-line error."""
    assert main(["check", "--config", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.startswith("error: no configuration file at")
