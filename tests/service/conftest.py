"""Trained runs, their Bentos and served instances for the HTTP tests.

The runs are trained once per test session, whichever test process asks first (the others
wait for it and read the same datastore): the champion of SMALL_CONFIG; and its rivals, both
dry runs so the champion stays, trained at once: a challenger trained on concept-shifted data
with a random forest (slow next to the champion), and the same forest with `[gate]
latency_blocks` and a limit it cannot meet, which the gate blocks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from flowship.bento import bento_spec, build_bento, export_model
from flowship.config import ServingSettings
from tests.helpers import REPO, TRAIN_FLOW, free_port, run_flow, small_config

SLOW_FOREST = {
    "name": "forest",
    "estimator": "random_forest",
    "params": {"n_estimators": [120], "min_samples_leaf": [2]},
}
SHIFTED = {"source": "sample:churn?rows=900&seed=5&scenario=concept_shift"}


@dataclass
class Served:
    url: str
    run: Any
    tag: str
    log_dir: Path
    spec: Path
    process_log: str  # the server's own output


@dataclass(frozen=True)
class Runs:
    root: Path
    champion: str
    challenger: str
    blocked: str


def _shared(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, train) -> dict:
    """What `train(root)` returns (JSON), made once per test session by the first test process
    that asks, in one datastore all of them read."""
    from metaflow import metadata

    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # one folder per session
    root = shared / "service-runs"
    (root / ".metaflow").mkdir(parents=True, exist_ok=True)
    marker = shared / f"service-{name}.json"
    with FileLock(str(shared / f"service-{name}.lock")):
        if not marker.is_file():
            marker.write_text(json.dumps(train(root)))
    metadata(f"local@{root}")
    return {**json.loads(marker.read_text()), "root": str(root)}


def _train_champion(root: Path) -> dict[str, str]:
    first = run_flow(root, TRAIN_FLOW, small_config())
    assert first.status == "successful", first.stdout + first.stderr
    assert first.run.data.verdict.decision == "promote"
    return {"champion": first.run.pathspec}


def _train_rivals(root: Path) -> dict[str, str]:
    """Both at once (as dry runs, neither becomes the champion): the slow forest that passes
    its gate, and the same forest with a latency limit it cannot meet."""
    forest = {"candidates": [SLOW_FOREST]}
    passing = small_config(data=SHIFTED, training=forest)
    blocking = small_config(
        data=SHIFTED, training=forest, gate={"latency_blocks": True, "max_latency_ms": 0.5}
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = list(
            pool.map(
                lambda config: run_flow(root, TRAIN_FLOW, config, dry_run=True), [passing, blocking]
            )
        )
    for result in done:
        assert result.status == "successful", result.stdout + result.stderr
    challenger, blocked = done
    assert challenger.run.data.verdict.passed, challenger.run.data.verdict.reasons
    return {"challenger": challenger.run.pathspec, "blocked": blocked.run.pathspec}


@pytest.fixture(scope="session")
def champion_pathspec(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    return _shared(tmp_path_factory, worker_id, "champion", _train_champion)["champion"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str, champion_pathspec: str) -> Runs:
    """The champion and its two rivals (the rivals may be trained while another test process
    trains the champion)."""
    rivals = _shared(tmp_path_factory, worker_id, "rivals", _train_rivals)
    return Runs(Path(rivals["root"]), champion_pathspec, rivals["challenger"], rivals["blocked"])


@pytest.fixture(scope="session")
def champion_run(champion_pathspec: str) -> Any:
    from flowship.runs import get_run

    return get_run(champion_pathspec)


@pytest.fixture(scope="session")
def challenger_run(runs: Runs) -> Any:
    from flowship.runs import get_run

    return get_run(runs.challenger)


def _spec(model: tuple[str, dict[str, Any]], serving: ServingSettings, challenger=None) -> dict:
    return bento_spec(model[0], model[1], serving, challenger)


@pytest.fixture(scope="session")
def exported_champion(champion_run: Any) -> tuple[str, dict[str, Any]]:
    """The champion in this process's BentoML store."""
    return export_model(champion_run, "churn")


@pytest.fixture(scope="session")
def exported(
    exported_champion: tuple[str, dict[str, Any]], challenger_run: Any
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Both models in this process's BentoML store."""
    return {"champion": exported_champion, "challenger": export_model(challenger_run, "churn")}


@pytest.fixture(scope="session")
def spec_file(exported_champion, tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = _spec(exported_champion, ServingSettings(max_rows=50, explain_max_rows=20))
    path = tmp_path_factory.mktemp("spec") / "bento_model.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="session")
def bento_tag(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_bento(json.loads(spec_file.read_text()), REPO, tmp_path_factory.mktemp("bento"))


@contextlib.contextmanager
def serve(
    bento: str, spec: dict[str, Any], workdir: Path, run: Any, **env: str
) -> Iterator[Served]:
    """Serve `bento` with `spec` (its models and [serving] settings) for a `with` block."""
    from flowship.processes import start_bento, stop, wait_ready

    spec_path = workdir / "bento_model.json"
    spec_path.write_text(json.dumps(spec))
    log_dir = workdir / "predictions"
    variables = {
        "FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir),
        "FLOWSHIP_BENTO_SPEC": str(spec_path),
        **env,
    }
    port = free_port()
    proc = start_bento(bento, "127.0.0.1", port, variables)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        yield Served(url, run, spec["model_tag"], log_dir, spec_path, proc.log_path)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def served(champion_run: Any, spec_file: Path, bento_tag: str, tmp_path_factory):
    with serve(
        bento_tag,
        json.loads(spec_file.read_text()),
        tmp_path_factory.mktemp("served"),
        champion_run,
    ) as running:
        yield running


@pytest.fixture(scope="session")
def challenger_bento(exported, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A Bento with the champion and the challenger (shadow mode in its spec)."""
    spec = _spec(exported["champion"], ServingSettings(), exported["challenger"])
    return build_bento(spec, REPO, tmp_path_factory.mktemp("bento-challenger")), spec
