"""The champion survives GitHub Actions: the real workflows' cache steps, replayed through a
model of the cache and of concurrency (actions_model.py) in every order GitHub may run them,
always leave a state whose champion is the newest promotion, and the workflows of commit
603a500 (before issue 18) are shown to lose one."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowship import ci_state
from tests.helpers import REPO
from tests.workflows.actions_model import (
    Cache,
    ModelError,
    Node,
    StepResult,
    World,
    condition,
    explore,
    lines,
    load_workflows,
    substitute,
)

FIXTURES = Path(__file__).parent / "fixtures" / "603a500"
CURRENT = load_workflows(REPO / ".github" / "workflows")
BEFORE = load_workflows(FIXTURES)
STATE, MANIFEST = "metaflow-state-", "metaflow-manifest-"
OWN, NEWEST = str(ci_state.DEFAULT_MANIFEST), str(ci_state.DEFAULT_NEWEST)
PROJECT, BRANCH = "churn", "prod"
EPOCH = datetime(2025, 12, 1, tzinfo=UTC)


# ---- what flowship's make targets do to a runner's workspace --------------------------------


@dataclass(frozen=True)
class Datastore:
    """A runner's `.metaflow/`, reduced to what a lost save would lose: runs and promotions."""

    runs: frozenset[str] = frozenset()
    promotions: tuple[tuple[str, str], ...] = ()  # (run, promoted stamp), oldest first

    def champion(self) -> ci_state.Champion | None:
        if not self.promotions:
            return None
        run, stamp = self.promotions[-1]
        return ci_state.Champion(run=run, promoted_at=stamp, verdict=f"v{run.rpartition('/')[2]}")


def stamp(tick: int) -> str:
    return (EPOCH + timedelta(minutes=tick)).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class Flowship:
    """The effect of each make target a workflow step calls, on that job's own workspace.

    `train` with PRODUCTION set adds a run to the prod branch and promotes it (the gate passes)
    unless the run is `blocked` or a dry run; without PRODUCTION it trains another branch and
    leaves the production state alone. `monitor-outputs` says retrain when `retrain`;
    `changed-model` says the pull request touches the model; a target listed in `failures` as
    (run label, attempt, target) fails there. `state-check` and `state-manifest` run the real
    `flowship.ci_state` logic.
    """

    retrain: bool = True
    blocked: frozenset[str] = frozenset()
    failures: frozenset[tuple[str, int, str]] = frozenset()
    promotions: list[tuple[str, str, str]] = field(default_factory=list)  # (run, stamp, by job)
    monitor_runs: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    def fingerprint(self) -> tuple[Any, ...]:
        return tuple(self.promotions), tuple(self.monitor_runs), tuple(self.alarms)

    def __call__(self, node: Node, target: str, env: Mapping[str, str]) -> StepResult:
        world, workspace = node.run.world, node.workspace
        store: Datastore = workspace.get(".metaflow", Datastore())
        if (node.run.label, node.run.attempt, target) in self.failures:
            return StepResult("failure")
        if target == "train":
            if not env.get("PRODUCTION"):
                return StepResult()
            tick = world.tick()
            run = f"TrainFlow/{tick}"
            store = replace(store, runs=store.runs | {run})
            if node.run.label not in self.blocked and "--dry-run True" not in env["__run__"]:
                store = replace(store, promotions=(*store.promotions, (run, stamp(tick))))
                self.promotions.append((run, stamp(tick), node.label))
                node.memo["promoted"] = run
            workspace[".metaflow"] = store
        elif target == "promoted-outputs":
            promoted = "promoted" in node.memo
            return StepResult(outputs={"promoted": str(promoted).lower(), "image": "img:1"})
        elif target == "monitor-only":
            run = f"MonitorFlow/{world.tick()}"
            workspace[".metaflow"] = replace(store, runs=store.runs | {run})
            workspace["monitoring"] = (*workspace.get("monitoring", ()), run)
            self.monitor_runs.append(run)
        elif target == "simulate-day":
            workspace["logs"] = (*workspace.get("logs", ()), world.tick())
        elif target == "monitor-outputs":
            return StepResult(outputs={"retrain": str(self.retrain).lower(), "status": "drift"})
        elif target == "changed-model":
            return StepResult(outputs={"model": "true"})
        elif target == "state-check":
            problem = state_check(workspace, env.get("STATE_RESTORED_KEY", ""))
            if problem is not None:
                self.alarms.append(f"{node.label}: {problem}")
                return StepResult("failure")
        elif target == "state-manifest":
            writer = ci_state.writer_from_env(github_env(world.github(node, node.run)))
            manifest = ci_state.new_manifest(
                PROJECT, BRANCH, store.champion(), writer, EPOCH + timedelta(minutes=world.tick())
            )
            workspace[OWN] = workspace[NEWEST] = ci_state.manifest_to_json(manifest)
        return StepResult()


def github_env(github: Mapping[str, Any]) -> dict[str, str]:
    """The GITHUB_* variables a runner sets from the github context."""
    names = {
        "GITHUB_WORKFLOW": "workflow",
        "GITHUB_JOB": "job",
        "GITHUB_RUN_ID": "run_id",
        "GITHUB_RUN_ATTEMPT": "run_attempt",
        "GITHUB_REPOSITORY": "repository",
        "GITHUB_SERVER_URL": "server_url",
    }
    return {env: str(github[key]) for env, key in names.items()}


def state_check(workspace: Mapping[str, Any], key: str) -> str | None:
    """What `make state-check` says is lost in a restored workspace, or None."""
    store: Datastore = workspace.get(".metaflow", Datastore())
    own, newest = (
        ci_state.parse_manifest(workspace[name]) if name in workspace else None
        for name in (OWN, NEWEST)
    )
    try:
        ci_state.check_state(PROJECT, BRANCH, store.champion(), own, newest, key)
    except ci_state.StateError as exc:
        return str(exc)
    return None


# ---- the orders GitHub can run things in ----------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Runs after a seeding training run; `runs(world, seed)` adds them."""

    runs: Callable[[World, Any], None]
    flowship: Callable[[], Flowship] = Flowship


def _overlap(*specs: tuple[str, str] | tuple[str, str, str]) -> Callable[[World, Any], None]:
    """Runs (file, label[, event]) that start in any order once the seed run is done."""

    def add(world: World, seed: Any) -> None:
        for file, label, *event in specs:
            world.run(file, label=label, event=event[0] if event else "schedule", after=[seed])

    return add


def _rerun(file: str, label: str, every_job: bool = False) -> Callable[[World, Any], None]:
    def add(world: World, seed: Any) -> None:
        first = world.run(file, label=label, after=[seed])
        world.rerun(first, every_job=every_job)

    return add


SCENARIOS: dict[str, Scenario] = {
    "train, then monitor": Scenario(
        lambda world, seed: world.run(
            "monitor.yml", label="M", after=[world.run("train.yml", label="T", after=[seed])]
        ),
        lambda: Flowship(retrain=False),
    ),
    "monitor retrains in the same run": Scenario(_overlap(("monitor.yml", "M"))),
    "train and monitor overlap": Scenario(
        _overlap(("train.yml", "T"), ("monitor.yml", "M")), lambda: Flowship(retrain=False)
    ),
    "train and a retraining monitor overlap": Scenario(
        _overlap(("train.yml", "T"), ("monitor.yml", "M"))
    ),
    "two trainings overlap": Scenario(_overlap(("train.yml", "T1"), ("train.yml", "T2"))),
    "a pull request's gate preview overlaps a training": Scenario(
        _overlap(("train.yml", "T"), ("ci.yml", "PR", "pull_request"))
    ),
    "three runs queue for the state": Scenario(
        _overlap(("train.yml", "T1"), ("monitor.yml", "M"), ("train.yml", "T2"))
    ),
    "re-run of a training that failed after promoting": Scenario(
        _rerun("train.yml", "T"), lambda: Flowship(failures=frozenset({("T", 1, "push")}))
    ),
    "re-run of a monitor whose retraining failed": Scenario(
        _rerun("monitor.yml", "M"), lambda: Flowship(failures=frozenset({("M", 1, "train")}))
    ),
    "re-run of every job of a monitor run": Scenario(_rerun("monitor.yml", "M", every_job=True)),
}


def build(
    workflows: Mapping[str, dict[str, Any]],
    scenario: Scenario,
    job_context: str = "callee",
    failing_saves: frozenset[tuple[str, int, str, str]] = frozenset(),
) -> Callable[[], World]:
    def make() -> World:
        world = World(
            workflows, scenario.flowship(), job_context=job_context, failing_saves=failing_saves
        )
        seed = world.run("train.yml", label="seed")
        scenario.runs(world, seed)
        return world

    return make


def losses(world: World) -> list[str]:
    """What the state the next run restores lacks, against what the runs did, and any alarm
    raised on the way or by the next run's own check."""
    flowship = world.effect
    assert isinstance(flowship, Flowship)
    restored = world.restore_as("train.yml", "train")
    store: Datastore = restored.get(".metaflow", Datastore())
    problems = []
    if flowship.promotions:
        newest = max(flowship.promotions, key=lambda p: p[1])
        champion = store.champion()
        if champion is None or champion.run != newest[0]:
            problems.append(
                f"the next run restores champion {champion.run if champion else None}, "
                f"not {newest[0]} (promoted last, by {newest[2]})"
            )
    kept = {run for run, _ in store.promotions}
    problems += [
        f"promotion of {run} by {job} is not in the restored state"
        for run, _, job in flowship.promotions
        if run not in kept
    ]
    problems += [
        f"{run} is not in the restored state"
        for run in flowship.monitor_runs
        if run not in store.runs
    ]
    problems += [f"false alarm: {alarm}" for alarm in flowship.alarms]
    if (alarm := state_check(restored, "")) is not None:
        problems.append(f"the next run's check fails: {alarm}")
    problems += [f"cancelled midway: {label}" for label in world.cancelled_midway]
    return problems


def first_loss(worlds: Any) -> tuple[list[str], list[str]] | None:
    for world in worlds:
        if problems := losses(world):
            return problems, world.trace
    return None


# ---- the workflows as they are --------------------------------------------------------------


@pytest.mark.parametrize("job_context", ["callee", "caller"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_no_schedule_loses_state(name: str, job_context: str) -> None:
    """In every order GitHub may run them, the next run restores the newest champion, every
    promotion and every monitor run, with no job cancelled midway and no false alarm (with
    `github.job` read as the called job's id, and as the calling job's)."""
    found = first_loss(explore(build(CURRENT, SCENARIOS[name], job_context)))
    assert found is None, "\n".join([*found[0], "schedule:", *found[1]])


def test_the_scenarios_cover_concurrency() -> None:
    """The overlapping scenarios explore many orders, and queueing does cancel a pending one."""
    schedules = list(explore(build(CURRENT, SCENARIOS["three runs queue for the state"])))
    assert len(schedules) > 10
    assert any(world.cancelled_pending for world in schedules)


def test_a_failed_state_save_stops_the_next_run_loudly() -> None:
    """When a job's state save fails after its manifest save, the next run's check fails
    naming the promotion that is missing, instead of training against an older champion."""
    scenario = SCENARIOS["train, then monitor"]
    faults = frozenset({("T", 1, "train", STATE)})
    for world in explore(build(CURRENT, scenario, failing_saves=faults)):
        flowship = world.effect
        assert isinstance(flowship, Flowship)
        lost = flowship.promotions[-1][0]  # T's promotion, the newest
        assert len(flowship.alarms) == 1, flowship.alarms
        assert f"left {lost}" in flowship.alarms[0] and "M#1:monitor" in flowship.alarms[0]
        restored = world.restore_as("train.yml", "train")
        problem = state_check(restored, "")
        assert problem is not None and f"left {lost}" in problem


def test_state_restores_match_the_saves() -> None:
    """Every restore of the state lists the paths its saves list, in order (the cache
    version), so it can find them; and each job saves its state under its own key."""
    assert not state_path_mismatches(CURRENT)
    keys = [key for key in state_save_keys(CURRENT) if key.startswith(STATE)]
    assert keys and all(
        "${{ github.run_id }}-${{ github.run_attempt }}-${{ github.job }}" in key for key in keys
    )


def test_state_writers_share_one_group_never_cancelled() -> None:
    """Every job that saves the state queues in the same job-level group, never cancelled, and
    no workflow holds a top-level group a job it calls could need."""
    groups = set()
    for name, doc in CURRENT.items():
        for job_id, job in doc["jobs"].items():
            if any(
                "cache/save" in str(step.get("uses", "")) and step["with"]["key"].startswith(STATE)
                for step in job.get("steps") or []
            ):
                concurrency = job.get("concurrency")
                assert concurrency, f"{name} job {job_id} saves state outside a concurrency group"
                assert concurrency.get("cancel-in-progress") is False, f"{name} job {job_id}"
                groups.add(concurrency["group"])
        if any("uses" in job for job in doc["jobs"].values()):
            assert "concurrency" not in doc, f"{name} calls a workflow under a top-level group"
    assert len(groups) == 1


def test_the_documented_deadlock_is_caught() -> None:
    """The model refuses what GitHub cancels: monitor.yml holding, at its top, the group the
    train job it calls needs."""
    group = CURRENT["train.yml"]["jobs"]["train"]["concurrency"]["group"]
    deadlocked = copy.deepcopy(CURRENT)
    deadlocked["monitor.yml"]["concurrency"] = {"group": group, "cancel-in-progress": False}
    deadlocked["monitor.yml"]["jobs"]["monitor"].pop("concurrency")
    with pytest.raises(ModelError, match=r"deadlock.*top level workflow monitor\.yml"):
        list(explore(build(deadlocked, SCENARIOS["monitor retrains in the same run"])))


# ---- the workflows of 603a500 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("monitor retrains in the same run", "REFUSED"),
        ("train and monitor overlap", "not in the restored state"),
        ("train and a retraining monitor overlap", "not in the restored state"),
        ("three runs queue for the state", "not in the restored state"),
        ("re-run of a training that failed after promoting", "REFUSED"),
        ("re-run of a monitor whose retraining failed", "REFUSED"),
        ("re-run of every job of a monitor run", "REFUSED"),
    ],
)
def test_the_603a500_workflows_lose_a_promotion(name: str, expected: str) -> None:
    """The model finds the losses issue 18 describes in the workflows as they were."""
    found = first_loss(explore(build(BEFORE, SCENARIOS[name])))
    assert found is not None, f"{name}: no schedule loses anything"
    problems, trace = found
    assert any("promotion" in problem or "champion" in problem for problem in problems)
    assert any(expected in line for line in [*problems, *trace]), "\n".join([*problems, *trace])


def test_the_603a500_workflows_keep_two_trainings_apart() -> None:
    """Not everything was broken: two train.yml runs shared one top-level group."""
    assert first_loss(explore(build(BEFORE, SCENARIOS["two trainings overlap"]))) is None


def test_the_603a500_gate_preview_could_never_restore() -> None:
    """ci.yml restored `.metaflow` alone: another cache version than the saves', never a hit."""
    assert state_path_mismatches(BEFORE) == [
        "ci.yml job gate-preview restores ['.metaflow'], saves have "
        "[['.metaflow', 'logs', 'monitoring']]"
    ]


def test_fixtures_are_the_603a500_files() -> None:
    """The fixtures are byte for byte what commit 603a500 had (checked when history exists)."""
    for path in sorted(FIXTURES.glob("*.yml")):
        shown = subprocess.run(
            ["git", "show", f"603a500:.github/workflows/{path.name}"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if shown.returncode != 0:
            pytest.skip("commit 603a500 is not in this clone's history")
        assert shown.stdout == path.read_text(), path.name


def state_save_keys(workflows: Mapping[str, dict[str, Any]]) -> list[str]:
    return [
        str(step["with"]["key"])
        for doc in workflows.values()
        for job in doc["jobs"].values()
        for step in job.get("steps") or []
        if "cache/save" in str(step.get("uses", ""))
    ]


def state_path_mismatches(workflows: Mapping[str, dict[str, Any]]) -> list[str]:
    """Restores of a key prefix whose path list no save of that prefix has."""
    saved: dict[str, list[list[str]]] = {}
    restores = []
    for name, doc in workflows.items():
        for job_id, job in doc["jobs"].items():
            for step in job.get("steps") or []:
                uses, inputs = str(step.get("uses", "")), step.get("with") or {}
                paths = lines(inputs.get("path"))
                if "cache/save" in uses:
                    prefix = STATE if str(inputs["key"]).startswith(STATE) else MANIFEST
                    saved.setdefault(prefix, []).append(paths)
                elif "cache/restore" in uses:
                    for prefix in lines(inputs.get("restore-keys")):
                        restores.append((f"{name} job {job_id}", prefix, paths))
    problems = []
    for where, prefix, paths in restores:
        options = saved.get(prefix, [])
        if paths not in options:
            unique = [list(p) for p in dict.fromkeys(tuple(p) for p in options)]
            problems.append(f"{where} restores {paths}, saves have {unique}")
    return problems


# ---- the model itself -----------------------------------------------------------------------


def test_cache_entries_are_immutable() -> None:
    """A second save of a key is refused and the first contents stay."""
    cache = Cache()
    assert cache.save(["a"], "k-1", {"a": 1}, now=1)
    assert not cache.save(["a"], "k-1", {"a": 2}, now=2)
    entry = cache.restore(["a"], ["k-1"])
    assert entry is not None and entry.files == {"a": 1}


def test_cache_restore_prefers_exact_then_newest_prefix_of_the_same_version() -> None:
    """`key` exact first, then the newest entry by creation for each prefix, same paths only."""
    cache = Cache()
    cache.save(["a"], "s-2", {"a": "old"}, now=1)
    cache.save(["a"], "s-1", {"a": "new"}, now=2)
    cache.save(["a", "b"], "s-3", {"a": "other version"}, now=3)
    assert cache.restore(["a"], ["s-2"]).key == "s-2"  # type: ignore[union-attr]
    assert cache.restore(["a"], ["s-9", "s-"]).key == "s-1"  # type: ignore[union-attr]
    assert cache.restore(["a"], ["s-"]).key == "s-1"  # type: ignore[union-attr]
    assert cache.restore(["b", "a"], ["s-"]) is None


def test_expressions_substitute_and_decide() -> None:
    """Keys read the github context; `if:` gets GitHub's implicit success() and loose ==."""
    context = {
        "github": {"run_id": "7", "run_attempt": "2", "job": "train"},
        "steps": {"check": {"outcome": "success"}},
        "vars": {},
        "__status__": {"success": False, "failure": True, "always": True},
    }
    key = "metaflow-state-${{ github.run_id }}-${{ github.run_attempt }}-${{ github.job }}"
    assert substitute(key, context) == "metaflow-state-7-2-train"
    assert substitute("${{ vars.X || 'local' }}", context) == "local"
    assert condition("always() && steps.check.outcome == 'SUCCESS'", context)
    assert not condition("steps.check.outcome == 'success'", context)  # a step failed before
    assert condition("${{ failure() }}", context)
    assert not condition("always() && !(steps.check.outcome == 'success')", context)
