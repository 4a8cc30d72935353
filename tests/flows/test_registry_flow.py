"""The champion registry when things go wrong: a run killed while it promotes, two promotions
at the same instant, rollbacks to what cannot be served, cards kept with a datastore that is
elsewhere, and a failing flow's last line. The tests share one datastore, in file order."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowship.bento import export_model
from flowship.errors import RegistryError
from flowship.registry import (
    CHAMPION_TAG,
    champion_standing,
    describe_run,
    find_champion,
    load_champion,
    promote,
    rollback,
)
from flowship.runs import branch_name, get_run
from tests.helpers import REPO, TRAIN_FLOW, run_flow, small_config, write_config

pytestmark = pytest.mark.slow
FLOWSHIP = [sys.executable, "-m", "flowship"]
ONE = {"candidates": [{"name": "logreg", "estimator": "logistic_regression"}]}


def champion() -> str | None:
    run = find_champion("churn", branch_name())
    return run.pathspec if run else None


def _env(datastore: Path) -> dict[str, str]:
    env = {**os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(datastore)}
    env.pop("METAFLOW_CARD_LOCALROOT", None)
    return env


@pytest.fixture(scope="module")
def first(datastore: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The first champion, trained through the CLI from a directory that is not the
    datastore's (as `make train` does with METAFLOW_DATASTORE_SYSROOT_LOCAL elsewhere)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = write_config(elsewhere / "project.toml", small_config(training=ONE))
    done = subprocess.run(
        [sys.executable, "-m", "flowship", "train", "--config", str(config)],
        cwd=elsewhere,
        env=_env(datastore),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (elsewhere / ".metaflow").exists()  # nothing, cards included, landed here
    return str(champion())


def test_cards_are_read_where_they_were_written(datastore: Path, first: str, tmp_path: Path):
    """`make card` finds the cards of a run made with the datastore elsewhere."""
    config = write_config(tmp_path / "project.toml", small_config(training=ONE))
    out = tmp_path / "gate.html"
    done = subprocess.run(
        [*FLOWSHIP, "card", "--config", str(config), "--step", "gate", "--out", str(out)],
        cwd=tmp_path,
        env=_env(datastore),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict" in out.read_text().lower()


def test_a_run_killed_while_it_promotes_leaves_a_complete_champion(
    datastore: Path, first: str, tmp_path: Path
) -> None:
    """kill -9 of the flow's runtime once `promote` starts: whichever run the registry then
    names, every reader works (champion, bento export, the next training's comparison)."""
    config = write_config(tmp_path / "project.toml", small_config(training=ONE))
    run_id_file = tmp_path / "run-id"
    cmd = [sys.executable, str(TRAIN_FLOW), "--no-pylint", "--quiet", "--config", "config"]
    cmd += [str(config), "run", "--run-id-file", str(run_id_file)]
    proc = subprocess.Popen(
        cmd,
        cwd=datastore,
        env=_env(datastore),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not run_id_file.is_file() or not run_id_file.read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        pathspec = f"TrainFlow/{run_id_file.read_text().strip()}"
        meta = datastore / ".metaflow" / "TrainFlow" / pathspec.split("/")[1] / "_meta"
        while "champion" not in _user_tags(meta / "_self.json"):  # tagged; end not finished
            assert proc.poll() is None and time.monotonic() < deadline, "the flow ended early"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = get_run(pathspec)
    assert not killed.successful
    current = find_champion("churn", branch_name())
    assert current is not None and current.pathspec in {first, pathspec}
    assert "champion" in describe_run(current)
    export_model(current, "churn")
    assert load_champion(current.pathspec).model is not None
    shown = subprocess.run(
        [sys.executable, "-m", "flowship", "champion", "--config", str(config)],
        env=_env(datastore),
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0 and current.pathspec in shown.stdout, shown.stderr
    after = run_flow(datastore, TRAIN_FLOW, small_config(training=ONE), dry_run=True)
    assert after.status == "successful", after.stdout + after.stderr  # compares with it
    assert after.run.data.verdict.champion == current.pathspec


def _user_tags(path: Path) -> set[str]:
    """A run's user tags as the local metadata provider stores them (read directly: the
    client caches)."""
    import json

    try:
        return set(json.loads(path.read_text()).get("tags") or [])
    except (ValueError, OSError):
        return set()


def _promote(pathspec: str, expected: str | None, start, results, root: str) -> None:
    from metaflow import metadata

    metadata(f"local@{root}")
    start.wait()
    try:
        promote(pathspec, "churn", branch_name(), "race", expected)
        results.put((pathspec, "promoted"))
    except RegistryError as exc:
        results.put((pathspec, str(exc)))


def test_two_promotions_at_once_leave_one_champion(datastore: Path, first: str) -> None:
    """Two processes promote two runs at the same instant: one champion, the same for every
    reader, and at most one of them reports success."""
    runs = [
        run_flow(datastore, TRAIN_FLOW, small_config(training=ONE), dry_run=True).run.pathspec
        for _ in range(2)
    ]
    before = champion()
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_promote, args=(r, before, start, results, str(datastore)))
        for r in runs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    outcomes = dict(results.get(timeout=10) for _ in workers)
    winners = [r for r, outcome in outcomes.items() if outcome == "promoted"]
    assert len(winners) <= 1, outcomes
    standing = champion_standing("churn", branch_name())
    tagged = [
        r.pathspec for r in [standing.champion, *standing.others] if r and CHAMPION_TAG in r.tags
    ]
    assert tagged == [standing.champion.pathspec], tagged  # one champion tag left
    assert standing.champion.pathspec in runs
    if winners:
        assert winners == [standing.champion.pathspec]


def test_rollback_refuses_what_it_cannot_serve_and_says_so(datastore: Path, first: str):
    """A dry run and a garbage pathspec are refused with one clear message; a rollback that
    succeeds really makes the run the champion."""
    dry = run_flow(datastore, TRAIN_FLOW, small_config(training=ONE), dry_run=True).run.pathspec
    with pytest.raises(RegistryError, match="never passed a gate in enforce mode"):
        rollback(dry, "churn", branch_name())
    with pytest.raises(RegistryError, match="a run is named like"):
        rollback("garbage", "churn", branch_name())
    if champion() != first:
        rollback(first, "churn", branch_name())
        assert champion() == first


def test_a_failing_flow_ends_with_one_clear_line(datastore: Path, tmp_path: Path) -> None:
    """`make train` on a table without the configured target: Metaflow's traceback scrolls by,
    and the last line is our message, with exit status 2."""
    config = small_config(data={"target": "no_such_column"}, training=ONE)
    path = write_config(tmp_path / "project.toml", config)
    done = subprocess.run(
        [sys.executable, "-m", "flowship", "train", "--config", str(path)],
        cwd=REPO,
        env=_env(datastore),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: [data] target names column(s) ['no_such_column']"), last
