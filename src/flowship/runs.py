"""Runs of the project's flows, read through Metaflow's client, within one project branch."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from metaflow import Flow, Run, namespace
from metaflow.cards import get_cards
from metaflow.exception import (
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)

from flowship.errors import RegistryError


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
        runs = list(Flow(flow).runs(f"project:{project}", f"project_branch:{branch}", *tags))
    except MetaflowNotFound:
        return []
    # The client lists runs in storage order, and a local run's created_at moves when its tags
    # change; Metaflow's numeric run ids grow with time, so they order runs (newest first).
    return sorted(
        runs, key=lambda r: (int(r.id) if r.id.isdigit() else 0, str(r.created_at)), reverse=True
    )


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


def get_run(pathspec: str) -> Run:
    """A run by pathspec (`TrainFlow/123`), in any namespace.

    Raises:
        RegistryError: no such run.
    """
    namespace(None)
    try:
        return Run(pathspec)
    except (MetaflowNotFound, MetaflowInvalidPathspec, MetaflowNamespaceMismatch):
        raise RegistryError(
            f"no run {pathspec!r}; a run is named like TrainFlow/1796183425317629 "
            "(list them with `make history`)"
        ) from None


def run_data(run: Run) -> Any:
    """The artifacts of a run's end step.

    Raises:
        RegistryError: the run never reached its end step.
    """
    data = run.data
    if data is None:
        raise RegistryError(f"{run.pathspec} has no artifacts: it did not reach its end step")
    return data


GATE_STEP = "gate"


def model_artifacts(run: Run) -> Any:
    """A TrainFlow run's artifacts as its `gate` step stored them: the model, schema, data,
    metrics, lineage and verdict a reader of a champion needs all exist by then, so a run
    stopped during `promote` or `end` (which only tag) is still complete.

    Raises:
        RegistryError: the run never finished its gate step.
    """
    task = gate_task(run)
    if task is None:
        raise RegistryError(
            f"{run.pathspec} did not finish its gate step: it has no model to read "
            "(it failed or was stopped before; train again or pick another run)"
        )
    return task.data


def gate_task(run: Run) -> Any:
    """The run's finished gate task, or None when the gate step never finished."""
    try:
        task = run[GATE_STEP].task
    except (KeyError, MetaflowNotFound):
        return None
    return task if task is not None and task.successful else None


def flow_of(run: Run) -> str:
    """The flow name of a run (`TrainFlow` of `TrainFlow/123`)."""
    return str(run.pathspec).split("/", 1)[0]


def in_branch(run: Run, project: str, branch: str) -> bool:
    """Whether the run belongs to the project branch."""
    tags = set(run.system_tags) | set(run.tags)
    return f"project:{project}" in tags and f"project_branch:{branch}" in tags


def write_card(run: Run, step: str, path: Path) -> Path:
    """Write the first card of `run`'s `step` to an HTML file.

    Raises:
        RegistryError: the step or its card does not exist.
    """
    try:
        task = run[step].task
        if task is None:
            raise KeyError(step)
        cards = get_cards(task)
    except (KeyError, MetaflowNotFound) as exc:
        raise RegistryError(f"{run.pathspec} has no card for step '{step}': {exc}") from None
    if len(cards) == 0:
        raise RegistryError(f"{run.pathspec} step '{step}' produced no card")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cards[0].get())
    return path
