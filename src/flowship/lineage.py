"""Where a run came from: git commit, package versions, platform; recorded on every run."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = (
    "flowship",
    "metaflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "pydantic",
    "evidently",
    "bentoml",
)


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_state(repo: Path) -> dict[str, Any]:
    """The commit of `repo` and whether its work tree has uncommitted changes.

    In GitHub Actions `GITHUB_SHA` names the commit even where `.git` is absent.
    """
    sha = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return {
        "git_sha": os.environ.get("GITHUB_SHA") or sha or "unknown",
        "git_dirty": bool(status) if status is not None else None,
    }


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a model's behaviour depends on."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def collect_lineage(repo: Path, config_hash: str) -> dict[str, Any]:
    """Everything needed to trace a run back to its code and environment.

    Args:
        repo: a directory inside the project's git work tree (e.g. the flow's folder).
        config_hash: the fingerprint of the effective settings.
    """
    return {
        **git_state(repo),
        "config_hash": config_hash,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": package_versions(),
    }


def lineage_tags(lineage: dict[str, Any], data_fingerprint: str) -> list[str]:
    """Run tags that make a run findable by commit, data and config."""
    tags = [f"data:{data_fingerprint}", f"config:{lineage['config_hash']}"]
    sha = str(lineage.get("git_sha", "unknown"))
    tags.append(f"git:{sha[:12]}{'-dirty' if lineage.get('git_dirty') else ''}")
    return tags
