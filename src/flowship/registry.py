"""Runs of the project's flows, read through Metaflow's client, within one project branch."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from metaflow import Flow, Run, namespace
from metaflow.cards import get_cards
from metaflow.exception import MetaflowNotFound


class RegistryError(LookupError):
    """A run, card or champion that was asked for does not exist; the message says what to do."""


def branch_name(branch: str | None = None, production: bool = False) -> str:
    """The Metaflow project branch, as `@project` names it.

    No option → `user.<USERNAME>`; `--branch x` → `test.x`; `--production` → `prod`
    (`prod.x` with both).
    """
    if production:
        return f"prod.{branch}" if branch else "prod"
    if branch:
        return f"test.{branch}"
    user = os.environ.get("METAFLOW_OWNER") or os.environ.get("USERNAME") or getpass.getuser()
    return f"user.{user}"


def project_runs(flow: str, project: str, branch: str, *tags: str) -> list[Run]:
    """Runs of `flow` in `project`/`branch` carrying every tag in `tags`, newest first."""
    namespace(None)
    try:
        runs = Flow(flow).runs(f"project:{project}", f"project_branch:{branch}", *tags)
        return list(runs)
    except MetaflowNotFound:
        return []


def latest_successful_run(flow: str, project: str, branch: str) -> Run:
    """The newest run of `flow` in the branch that finished successfully.

    Raises:
        RegistryError: there is none yet.
    """
    for run in project_runs(flow, project, branch):
        if run.successful:
            return run
    raise RegistryError(
        f"no successful {flow} run in project '{project}', branch '{branch}' yet; "
        "run `make train` first"
    )


def write_card(run: Run, step: str, path: Path) -> Path:
    """Write the first card of `run`'s `step` to an HTML file.

    Raises:
        RegistryError: the step or its card does not exist.
    """
    try:
        task = run[step].task
        cards = get_cards(task)
    except (KeyError, MetaflowNotFound) as exc:
        raise RegistryError(f"{run.pathspec} has no card for step '{step}': {exc}") from None
    if len(cards) == 0:
        raise RegistryError(f"{run.pathspec} step '{step}' produced no card")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cards[0].get())
    return path
