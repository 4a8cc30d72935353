"""The champion registry: Metaflow run tags within one project branch.

The champion is, among the runs tagged `champion` whose gate step finished (so every artifact
a reader needs exists), the one promoted last (`promoted:<UTC time>:<how>`; ties go to the
newer run). Promotion tags the new run, then demotes every other champion-tagged run: a run
stopped midway, or two promotions at the same instant, still leave one champion, the same for
every reader. `promoted:`/`demoted:` tags stay on the runs for the history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from metaflow import Run

from flowship.errors import RegistryError
from flowship.runs import flow_of, gate_task, get_run, in_branch, model_artifacts, project_runs

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
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def _last_promotion(run: Run) -> tuple[str, int]:
    """When the run was last promoted (its newest `promoted:` stamp), then its run id."""
    stamps = [t.split(":", 2)[1] for t in run.tags if t.startswith("promoted:")]
    return max(stamps, default=""), int(run.id) if str(run.id).isdigit() else 0


@dataclass(frozen=True)
class Standing:
    """The champion-tagged runs of a branch: the champion, and those that cannot be (their
    gate step never finished), which readers skip."""

    champion: Run | None
    others: list[Run]  # complete, champion-tagged, promoted before the champion
    incomplete: list[Run]


def champion_standing(project: str, branch: str, flow: str = "TrainFlow") -> Standing:
    """Every champion-tagged run of the branch, sorted into champion, others and incomplete."""
    tagged = project_runs(flow, project, branch, CHAMPION_TAG)
    complete = [r for r in tagged if gate_task(r) is not None]
    incomplete = [r for r in tagged if r not in complete]
    ranked = sorted(complete, key=_last_promotion, reverse=True)
    return Standing(ranked[0] if ranked else None, ranked[1:], incomplete)


def find_champion(project: str, branch: str, flow: str = "TrainFlow") -> Run | None:
    """The champion of the branch (the complete champion-tagged run promoted last), or None."""
    return champion_standing(project, branch, flow).champion


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
        return model_artifacts(get_run(self.pathspec))

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

    The new run is tagged first, then every other champion-tagged run is demoted, so a reader
    always finds a champion. Each promotion leaves `promoted:<UTC time>:<how>` on the run for
    good. Two promotions at the same instant both tag; the one promoted last wins for every
    reader, and the other promotion finds that and fails.

    Raises:
        RegistryError: the champion changed since the run compared itself with it, another
            promotion won the race, the run never finished its gate, or it is of another
            project branch.
    """
    run = get_run(pathspec)
    if not in_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    model_artifacts(run)  # a champion must have everything its readers need
    flow = flow_of(run)
    current = find_champion(project, branch, flow)
    current_spec = current.pathspec if current else None
    if current_spec != expected_champion:
        raise RegistryError(
            f"the champion changed to {current_spec} after this run compared itself with "
            f"{expected_champion}; re-run training to compare with the new champion"
        )
    run.add_tags([CHAMPION_TAG, f"promoted:{_stamp(now)}:{how}"])
    winner = settle_champion(project, branch, flow)
    if winner is None or winner.pathspec != pathspec:
        raise RegistryError(
            f"{pathspec} was not promoted: a promotion of "
            f"{winner.pathspec if winner else 'another run'} at the same time won"
        )
    return current_spec


def settle_champion(project: str, branch: str, flow: str = "TrainFlow") -> Run | None:
    """Demote every champion-tagged run but the champion (the one promoted last); returns the
    champion. Readers never need this (they pick the same run); it keeps one tag per branch."""
    # Two processes settling at once may both rewrite one run's tags (the local metadata
    # store has no transactions), and one rewrite can undo the other: read again until no
    # other champion tag is left. Readers never depend on this: they pick the same run.
    for attempt in range(10):
        standing = champion_standing(project, branch, flow)
        winner = standing.champion
        if winner is None or not standing.others:
            return winner
        when, _ = _last_promotion(winner)
        for run in standing.others:
            run.add_tag(f"demoted:{when}:{winner.id}")
            run.remove_tag(CHAMPION_TAG)
        time.sleep(0.05 * (attempt + 1))
    return champion_standing(project, branch, flow).champion


def rollback(pathspec: str, project: str, branch: str, now: datetime | None = None) -> str | None:
    """Make an earlier run whose gate passed the champion again; returns the one it replaces.

    A run of a dry run (its gate never meant to promote) or with another contract than the
    current champion's is refused: a rollback restores a model the project's callers can
    still send their rows to.

    Raises:
        RegistryError: the run is unknown, of another branch, never passed a gate in enforce
            mode, has another contract, or did not become the champion.
    """
    from flowship.schema import contract_changes

    run = get_run(pathspec)
    if not in_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    data = model_artifacts(run)
    verdict = getattr(data, "verdict", None)
    if verdict is None or not verdict.passed or verdict.mode != "enforce":
        what = "none" if verdict is None else f"{verdict.decision}, mode {verdict.mode}"
        raise RegistryError(
            f"{pathspec} never passed a gate in enforce mode (its verdict: {what}); rollback "
            "accepts only runs whose gate passed (see `make history`)"
        )
    current = find_champion(project, branch, flow_of(run))
    if current is not None and current.pathspec == pathspec:
        raise RegistryError(f"{pathspec} is already the champion")
    if current is not None:
        changes = contract_changes(model_artifacts(current).schema, data.schema)
        if changes:
            raise RegistryError(
                f"{pathspec} has another contract than the champion {current.pathspec} ("
                + "; ".join(changes)
                + "): train it again with --accept-new-contract to serve that contract"
            )
    replaced = promote(
        pathspec, project, branch, "rollback", current.pathspec if current else None, now
    )
    after = find_champion(project, branch, flow_of(run))
    if after is None or after.pathspec != pathspec:
        raise RegistryError(f"rollback to {pathspec} did not hold: the champion is {after}")
    return replaced


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
    data = model_artifacts(run)
    lineage = data.lineage
    metric = data.settings.training.metric
    promoted = sorted(t.split(":", 2)[1:] for t in run.tags if t.startswith("promoted:"))
    finished = (
        run.finished_at or f"gate finished {gate_task(run).finished_at}; promote or end did not"
    )
    lines = [
        f"champion   {run.pathspec}  (finished {finished})",
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


def newest_passed_run(project: str, branch: str, other_than: str | None = None) -> Run:
    """The newest complete run of the branch whose gate passed, other than `other_than`.

    Raises:
        RegistryError: there is none.
    """
    for run in project_runs("TrainFlow", project, branch, GATE_PASSED_TAG):
        if run.pathspec != other_than and gate_task(run) is not None:
            return run
    raise RegistryError(
        f"no run of project '{project}', branch '{branch}' passed its gate besides "
        f'{other_than}: train a challenger with `make train TRAIN_ARGS="--dry-run True"`'
    )


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


def released_artifacts(run: Run, fix: str) -> Any:
    """The model artifacts of `run`, which must have passed its gate (what may serve).

    Raises:
        RegistryError: naming the run's decision, then `fix`.
    """
    from flowship.gate import releasable

    data = model_artifacts(run)
    verdict = getattr(data, "verdict", None)
    if not releasable(verdict):
        decision = verdict.decision if verdict else "no verdict"
        raise RegistryError(f"{run.pathspec} did not pass its gate ({decision}); {fix}")
    return data


def check_challenger(champion: Run, challenger: Run) -> None:
    """A challenger must be another run, have passed its gate (a passed dry run counts: that
    is how a challenger is trained without replacing the champion) and take the champion's
    contract, so one request serves both.

    Raises:
        RegistryError: saying which of these fails and what to do.
    """
    from flowship.schema import contract_changes

    if challenger.pathspec == champion.pathspec:
        raise RegistryError(
            f"{challenger.pathspec} is the champion itself; name another run as the challenger "
            "(CHALLENGER=latest takes the newest passed run that is not the champion)"
        )
    theirs = released_artifacts(
        challenger,
        "a challenger must pass the gate (train it with TRAIN_ARGS='--dry-run True' to keep "
        "the champion)",
    )
    changes = contract_changes(model_artifacts(champion).schema, theirs.schema)
    if changes:
        raise RegistryError(
            f"{challenger.pathspec} has another contract than the champion {champion.pathspec} "
            f"({'; '.join(changes)}): one Bento serves one request schema"
        )


def promote_challenger(comparison: Any, project: str, branch: str) -> str | None:
    """Make the challenger of a live comparison (`flowship.compare.LiveComparison`) the
    champion, when the comparison favours it and the champion is still the one it was compared
    with; returns the champion it replaces. The promotion is tagged like every other
    (`promoted:<time>:live-<comparison id>`), and the run also carries `live:<comparison id>`.

    Raises:
        RegistryError: the comparison does not favour the challenger, the champion changed
            since, or the challenger cannot be served in its place.
    """
    if not comparison.favours_challenger:
        raise RegistryError(
            f"the live comparison {comparison.id} does not favour {comparison.challenger_run}: "
            + "; ".join(comparison.reasons)
        )
    current = find_champion(project, branch)
    if current is None or current.pathspec != comparison.champion_run:
        raise RegistryError(
            f"the champion is {current.pathspec if current else 'none'}, not "
            f"{comparison.champion_run} the challenger was compared with; compare again"
        )
    challenger = get_run(comparison.challenger_run)
    check_challenger(current, challenger)
    record_tags(challenger.pathspec, [f"live:{comparison.id}"])
    return promote(
        challenger.pathspec,
        project,
        branch,
        f"live-{comparison.id}",
        expected_champion=comparison.champion_run,
    )
