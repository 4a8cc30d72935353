"""The champion registry: Metaflow run tags within one project branch.

The champion is the newest run tagged `champion`; promotion tags the new run before untagging
the old, and leaves a `promoted:`/`demoted:` tag for the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from metaflow import Run

from flowship.errors import RegistryError
from flowship.runs import flow_of, get_run, in_branch, project_runs, run_data

if TYPE_CHECKING:
    import pandas as pd

    from flowship.schema import Schema

CHAMPION_TAG = "champion"
GATE_PASSED_TAG = "gate:passed"
GATE_BLOCKED_TAG = "gate:blocked"


@dataclass(frozen=True)
class Event:
    """One change of the champion, read back from run tags."""

    when: str
    event: str
    run: str
    how: str


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def find_champion(project: str, branch: str, flow: str = "TrainFlow") -> Run | None:
    """The newest run tagged `champion` in the project branch, or None."""
    runs = project_runs(flow, project, branch, CHAMPION_TAG)
    return runs[0] if runs else None


class ChampionArtifacts:
    """What the gate and the monitor read from a champion's run, each artifact loaded from the
    run's datastore when first read (lineage, not a copy). Stored as a step artifact it keeps
    only the pathspec and loads again where it is read."""

    def __init__(self, pathspec: str) -> None:
        self.pathspec = pathspec

    def __getstate__(self) -> dict[str, str]:
        return {"pathspec": self.pathspec}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.pathspec = state["pathspec"]

    @cached_property
    def _data(self) -> Any:
        return run_data(get_run(self.pathspec))

    @cached_property
    def model(self) -> Any:
        return self._data.model

    @cached_property
    def schema(self) -> Schema:
        return self._data.schema

    @cached_property
    def train_data(self) -> pd.DataFrame:
        return self._data.train_data

    @cached_property
    def holdout(self) -> pd.DataFrame:
        return self._data.holdout

    @cached_property
    def holdout_predictions(self) -> pd.DataFrame:
        return self._data.holdout_predictions

    @cached_property
    def metrics(self) -> dict[str, float]:
        return dict(self._data.metrics)

    @cached_property
    def metric(self) -> str:
        """The metric the champion was chosen by (`[training] metric` of its run)."""
        return str(self._data.settings.training.metric)


def load_champion(pathspec: str | None) -> ChampionArtifacts | None:
    """The artifacts of the champion run `pathspec`, or None when there is no champion.

    Raises:
        RegistryError: no such run, or it never reached its end step.
    """
    if pathspec is None:
        return None
    champion = ChampionArtifacts(pathspec)
    champion._data  # noqa: B018  (fails here, with our message, for an unknown or broken run)
    return champion


def promote(
    pathspec: str,
    project: str,
    branch: str,
    how: str,
    expected_champion: str | None,
    now: datetime | None = None,
) -> str | None:
    """Make `pathspec` the champion of the branch; returns the previous champion.

    The new run is tagged before the old one is untagged, so a reader always finds a
    champion. Each promotion leaves `promoted:<UTC time>:<how>` on the run for good.

    Raises:
        RegistryError: the champion changed since the run compared itself with it (another
            promotion won the race), or the run is of another project branch.
    """
    run = get_run(pathspec)
    if not in_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    current = find_champion(project, branch, flow_of(run))
    current_spec = current.pathspec if current else None
    if current_spec != expected_champion:
        raise RegistryError(
            f"the champion changed to {current_spec} after this run compared itself with "
            f"{expected_champion}; re-run training to compare with the new champion"
        )
    stamp = _stamp(now)
    run.add_tags([CHAMPION_TAG, f"promoted:{stamp}:{how}"])
    if current is not None and current.pathspec != pathspec:
        current.add_tag(f"demoted:{stamp}:{run.id}")
        current.remove_tag(CHAMPION_TAG)
    return current_spec


def rollback(pathspec: str, project: str, branch: str, now: datetime | None = None) -> str | None:
    """Make an earlier run whose gate passed the champion again; returns the one it replaces.

    Raises:
        RegistryError: the run is unknown, failed, of another branch, or never passed a gate.
    """
    run = get_run(pathspec)
    if not in_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    if not run.successful:
        raise RegistryError(f"{pathspec} did not finish successfully; it cannot be champion")
    verdict = getattr(run.data, "verdict", None) if run.data is not None else None
    if verdict is None or not verdict.passed:
        raise RegistryError(
            f"{pathspec} never passed a gate (its verdict: "
            f"{verdict.decision if verdict else 'none'}); rollback accepts only passed runs"
        )
    current = find_champion(project, branch, flow_of(run))
    if current is not None and current.pathspec == pathspec:
        raise RegistryError(f"{pathspec} is already the champion")
    return promote(
        pathspec, project, branch, "rollback", current.pathspec if current else None, now
    )


def history(project: str, branch: str, flow: str = "TrainFlow") -> list[Event]:
    """Every promotion and demotion in the branch, oldest first, read from run tags."""
    events = []
    for run in project_runs(flow, project, branch):
        for tag in run.tags:
            kind, _, rest = tag.partition(":")
            if kind in {"promoted", "demoted"}:
                when, _, how = rest.partition(":")
                events.append(Event(when=when, event=kind, run=run.pathspec, how=how))
    return sorted(events, key=lambda e: (e.when, e.event != "demoted", e.run))


def record_tags(pathspec: str, tags: list[str]) -> None:
    """Add tags to a run (lineage, verdicts); existing tags are kept."""
    get_run(pathspec).add_tags(tags)


def apply_verdict(pathspec: str, verdict: Any, project: str, branch: str) -> str | None:
    """Record the gate's decision on the run and promote it when the verdict says so.

    Returns the champion it replaced (None when there was none or nothing was promoted).
    """
    gate_tag = GATE_PASSED_TAG if verdict.passed else GATE_BLOCKED_TAG
    record_tags(pathspec, [gate_tag, f"verdict:{verdict.id}", f"decision:{verdict.decision}"])
    if not verdict.promote:
        return None
    how = f"{verdict.decision}-{verdict.id}"
    return promote(pathspec, project, branch, how, expected_champion=verdict.champion)


def describe_run(run: Run) -> str:
    """A readable account of a TrainFlow run: metrics, lineage, verdict, promotions."""
    data = run_data(run)
    lineage = data.lineage
    metric = data.settings.training.metric
    promoted = sorted(t.split(":", 2)[1:] for t in run.tags if t.startswith("promoted:"))
    lines = [
        f"champion   {run.pathspec}  (finished {run.finished_at})",
        f"model      {data.best_candidate}; holdout {metric} {data.metrics[metric]:.4f}",
        "metrics    " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(data.metrics.items())),
        f"data       fingerprint {data.data_fingerprint}; {len(data.train_data):,} train rows",
        f"commit     {lineage['git_sha']}{' (dirty)' if lineage.get('git_dirty') else ''}",
        f"config     {lineage['config_hash']}",
    ]
    verdict = getattr(data, "verdict", None)
    if verdict is not None:
        lines.append(f"verdict    {verdict.id}: {verdict.decision}")
    lines += [f"promoted   {when} by {how}" for when, how in promoted]
    return "\n".join(lines)


def find_champion_or_fail(project: str, branch: str) -> str:
    """The champion's pathspec.

    Raises:
        RegistryError: there is no champion yet (nothing to monitor).
    """
    run = find_champion(project, branch)
    if run is None:
        raise RegistryError(
            f"no champion in project '{project}', branch '{branch}' yet: nothing to monitor; "
            "run `make train` (and `make bento`) first"
        )
    return str(run.pathspec)
