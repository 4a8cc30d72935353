"""Runs of the project's flows, read through Metaflow's client, within one project branch."""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


CHAMPION_TAG = "champion"
GATE_PASSED_TAG = "gate:passed"
GATE_BLOCKED_TAG = "gate:blocked"


@dataclass(frozen=True)
class ChampionArtifacts:
    """What the gate needs from the current champion run."""

    pathspec: str
    model: Any
    schema: Any
    train_data: Any


@dataclass(frozen=True)
class Event:
    """One change of the champion, read back from run tags."""

    when: str
    event: str
    run: str
    how: str


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def get_run(pathspec: str) -> Run:
    """A run by pathspec (`TrainFlow/123`), in any namespace.

    Raises:
        RegistryError: no such run.
    """
    namespace(None)
    try:
        return Run(pathspec)
    except MetaflowNotFound:
        raise RegistryError(f"no run {pathspec!r}; list runs with `make history`") from None


def run_data(run: Run) -> Any:
    """The artifacts of a run's end step.

    Raises:
        RegistryError: the run never reached its end step.
    """
    data = run.data
    if data is None:
        raise RegistryError(f"{run.pathspec} has no artifacts: it did not reach its end step")
    return data


def find_champion(project: str, branch: str, flow: str = "TrainFlow") -> Run | None:
    """The newest run tagged `champion` in the project branch, or None."""
    runs = project_runs(flow, project, branch, CHAMPION_TAG)
    return runs[0] if runs else None


def load_champion(pathspec: str | None) -> ChampionArtifacts | None:
    """Load the champion's model, schema and training data from its run."""
    if pathspec is None:
        return None
    data = run_data(get_run(pathspec))
    return ChampionArtifacts(
        pathspec=pathspec,
        model=data.model,
        schema=data.schema,
        train_data=data.train_data,
    )


def _flow_of(run: Run) -> str:
    return str(run.pathspec).split("/", 1)[0]


def _same_branch(run: Run, project: str, branch: str) -> bool:
    tags = set(run.system_tags) | set(run.tags)
    return f"project:{project}" in tags and f"project_branch:{branch}" in tags


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
    if not _same_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    current = find_champion(project, branch, _flow_of(run))
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
    if not _same_branch(run, project, branch):
        raise RegistryError(f"{pathspec} is not a run of project {project!r}, branch {branch!r}")
    if not run.successful:
        raise RegistryError(f"{pathspec} did not finish successfully; it cannot be champion")
    verdict = getattr(run.data, "verdict", None) if run.data is not None else None
    if verdict is None or not verdict.passed:
        raise RegistryError(
            f"{pathspec} never passed a gate (its verdict: "
            f"{verdict.decision if verdict else 'none'}); rollback accepts only passed runs"
        )
    current = find_champion(project, branch, _flow_of(run))
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


def export_model(run: Run, model_name: str) -> tuple[str, dict[str, Any]]:
    """Save a run's pipeline into the BentoML model store with its lineage.

    Labels (searchable with `bentoml models list`) and metadata carry the run pathspec, git sha,
    data fingerprint, verdict id, holdout metrics, the input schema and the class labels.

    Raises:
        RegistryError: the run never passed its gate.
    """
    import bentoml

    data = run_data(run)
    verdict = getattr(data, "verdict", None)
    if verdict is None or not (verdict.passed or verdict.decision == "override"):
        raise RegistryError(
            f"{run.pathspec} did not pass its gate "
            f"({verdict.decision if verdict else 'no verdict'}); "
            "export the champion or a passed run"
        )
    lineage = data.lineage
    metadata = {
        "run": run.pathspec,
        "candidate": data.best_candidate,
        "git_sha": lineage["git_sha"],
        "git_dirty": lineage.get("git_dirty"),
        "config_hash": lineage["config_hash"],
        "data_fingerprint": data.data_fingerprint,
        "verdict": {"id": verdict.id, "decision": verdict.decision, **verdict.summary()},
        "metrics": {k: float(v) for k, v in data.metrics.items()},
        "classes": [str(c) for c in data.schema.classes],
        "schema": data.schema.model_dump(mode="json"),
        "packages": lineage.get("packages", {}),
    }
    labels = {
        "run_id": str(run.id),
        "git_sha": str(lineage["git_sha"])[:12],
        "data": data.data_fingerprint,
        "verdict": verdict.id,
    }
    model = bentoml.sklearn.save_model(
        model_name, data.model, labels=labels, metadata=_without_none(metadata)
    )
    return str(model.tag), metadata


def _without_none(value: Any) -> Any:
    """BentoML metadata refuses None: drop such keys (an unset id column, an unknown dirty flag)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value if v is not None]
    return value


def build_bento(spec: dict[str, Any], repo: Path, workdir: Path) -> str:
    """Build the Bento for an exported model; returns the Bento tag.

    The files `bentofile.yaml` includes are staged with the model spec in `workdir/src`, so
    the build never writes into the repository and `BENTOML_HOME` stays outside the context.

    Raises:
        RegistryError: `bentoml build` failed (its output is in the message).
    """
    import shutil
    import subprocess
    import sys

    import yaml

    bentofile = yaml.safe_load((repo / "bentofile.yaml").read_text())
    src = workdir / "src"
    for pattern in bentofile["include"]:
        for path in (repo / "src").glob(pattern):
            target = src / path.relative_to(repo / "src")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    (src / "flowship" / "bento_model.json").write_text(json.dumps(spec, indent=2))
    shutil.copy(repo / "bentofile.yaml", workdir / "bentofile.yaml")
    bentoml = Path(sys.executable).with_name("bentoml")
    cmd = [str(bentoml), "build", "-f", str(workdir / "bentofile.yaml"), "-o", "tag", str(src)]
    # cwd = the build context: BentoML resolves docker.dockerfile_template only inside the cwd
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if done.returncode != 0:
        raise RegistryError(f"bentoml build failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


@dataclass(frozen=True)
class MonitorReference:
    """What the monitor compares production with: the champion run's own artifacts."""

    pathspec: str
    model: Any
    schema: Any
    holdout: Any
    holdout_predictions: Any
    metrics: dict[str, float]
    metric: str


def load_monitor_reference(pathspec: str) -> MonitorReference:
    """The champion's model, schema, holdout and holdout predictions, from its run (lineage,
    not a copied file)."""
    data = run_data(get_run(pathspec))
    return MonitorReference(
        pathspec=pathspec,
        model=data.model,
        schema=data.schema,
        holdout=data.holdout,
        holdout_predictions=data.holdout_predictions,
        metrics=dict(data.metrics),
        metric=data.settings.training.metric,
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
