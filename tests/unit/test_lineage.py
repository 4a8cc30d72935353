"""Lineage: the git commit and dirty flag, package versions, and the combined record."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from flowship.lineage import TRACKED_PACKAGES, collect_lineage, git_state, package_versions


@pytest.fixture(autouse=True)
def _no_ci_sha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI: no GITHUB_SHA, and git never looks above the test's directory."""
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Tester", "-c", "user.email=t@example.com"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, "-c", "commit.gpgsign=false", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one committed file."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print('v1')\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_git_state_of_a_clean_repo(repo: Path) -> None:
    """A clean work tree reports its HEAD commit and not dirty."""
    assert git_state(repo) == {"git_sha": _git(repo, "rev-parse", "HEAD"), "git_dirty": False}


def test_git_state_is_dirty_after_editing_a_tracked_file(repo: Path) -> None:
    """Editing a committed file marks the state dirty; an untracked file alone does not."""
    (repo / "notes.txt").write_text("scratch\n")
    assert git_state(repo)["git_dirty"] is False
    (repo / "train.py").write_text("print('v2')\n")
    assert git_state(repo)["git_dirty"] is True


def test_git_state_from_a_subdirectory(repo: Path) -> None:
    """A folder inside the work tree (like flows/) reports the repository's commit."""
    (repo / "flows").mkdir()
    assert git_state(repo / "flows")["git_sha"] == _git(repo, "rev-parse", "HEAD")


def test_github_sha_overrides_the_commit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In GitHub Actions, GITHUB_SHA names the commit."""
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    assert git_state(repo)["git_sha"] == "abc123"
    assert git_state(repo)["git_dirty"] is False


def test_git_state_outside_a_repository(tmp_path: Path) -> None:
    """A folder outside git gives an 'unknown' commit and an unknown dirty flag."""
    assert git_state(tmp_path) == {"git_sha": "unknown", "git_dirty": None}


def test_git_state_of_a_missing_folder(tmp_path: Path) -> None:
    """A folder that does not exist is treated like one outside git."""
    assert git_state(tmp_path / "nope") == {"git_sha": "unknown", "git_dirty": None}


def test_package_versions_reads_installed_versions() -> None:
    """Each tracked package maps to its installed version."""
    versions = package_versions()
    assert list(versions) == list(TRACKED_PACKAGES)
    assert versions["pandas"] == metadata.version("pandas")
    assert versions["flowship"] == metadata.version("flowship")


def test_package_versions_marks_a_missing_package() -> None:
    """A package that is not installed is marked, not an error."""
    versions = package_versions(("numpy", "flowship-no-such-package"))
    assert versions == {
        "numpy": metadata.version("numpy"),
        "flowship-no-such-package": "not installed",
    }


def test_collect_lineage_combines_everything(repo: Path) -> None:
    """The record has the commit, dirty flag, config hash, Python, platform and packages."""
    lineage = collect_lineage(repo, config_hash="0123456789abcdef")
    assert set(lineage) == {
        "git_sha",
        "git_dirty",
        "config_hash",
        "python",
        "platform",
        "packages",
    }
    assert lineage["git_sha"] == _git(repo, "rev-parse", "HEAD")
    assert lineage["config_hash"] == "0123456789abcdef"
    assert lineage["python"] == platform.python_version()
    assert lineage["packages"] == package_versions()


def test_collect_lineage_outside_git(tmp_path: Path) -> None:
    """Outside git the record still forms, with an unknown commit."""
    lineage = collect_lineage(tmp_path, config_hash="x")
    assert (lineage["git_sha"], lineage["git_dirty"]) == ("unknown", None)
