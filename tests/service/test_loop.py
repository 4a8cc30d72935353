"""The whole loop in one test: a served Bento gets traffic, the monitor catches a concept
shift from delayed labels, retraining promotes a new champion, and the rebuilt Bento says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from flowship.bento import build_bento, export_model
from flowship.cli import main
from flowship.config import ServingSettings
from flowship.registry import find_champion
from flowship.runs import branch_name
from tests.helpers import AUTH, REPO, TRAIN_FLOW, free_port, run_flow, small_config, write_config

pytestmark = pytest.mark.slow
MONITOR_FLOW = REPO / "flows" / "monitor_flow.py"


def _serve(tag: str, port: int, log_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    bentoml = Path(sys.executable).with_name("bentoml")
    proc = subprocess.Popen(
        [str(bentoml), "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(log.read_text()[-3000:])


def _bento_for(run, root: Path) -> str:
    tag, metadata = export_model(run, "churn")
    spec = {
        "model_tag": tag,
        "schema": metadata["schema"],
        "serving": ServingSettings().model_dump(),
    }
    work = root / f"bento-{run.id}"
    work.mkdir()
    return build_bento(spec, REPO, work)


def test_serve_simulate_monitor_retrain_rebuild(tmp_path_factory: pytest.TempPathFactory):
    from metaflow import metadata

    root = tmp_path_factory.mktemp("loop")
    (root / ".metaflow").mkdir()
    metadata(f"local@{root}")
    log_dir = root / "predictions"
    config = small_config(
        data={"source": "sample:churn?rows=6000&seed=3"},
        training={
            "candidates": [
                {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {"max_iter": [60]}}
            ]
        },
        serving={"prediction_log_dir": str(log_dir)},
        monitor={"feedback_dir": str(root / "feedback"), "workspace": str(root / "ws")},
    )
    cfg = write_config(root / "loop.toml", config)
    first = run_flow(root, TRAIN_FLOW, config)
    assert first.status == "successful", first.stdout + first.stderr

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(_bento_for(first.run, root), port, log_dir, root / "serve1.log")
    try:
        since = datetime.now(UTC).isoformat(timespec="seconds")
        assert main(["simulate", "--config", str(cfg), "--url", url, "--rows", "800"]) == 0
        calm = run_flow(root, MONITOR_FLOW, config, since=since)
        assert calm.run.data.verdict.status == "ok", calm.run.data.verdict.reasons
        time.sleep(1.1)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        args = ["--scenario", "concept_shift", "--rows", "5000", "--seed", "77"]
        assert main(["simulate", "--config", str(cfg), "--url", url, *args]) == 0
        shifted = run_flow(root, MONITOR_FLOW, config, since=since)
        assert shifted.run.data.verdict.retrain, shifted.run.data.verdict.reasons
    finally:
        server.terminate()
        server.wait(timeout=30)

    retrained = run_flow(root, TRAIN_FLOW, config, with_feedback=True)
    assert retrained.run.data.verdict.decision == "promote", retrained.run.data.verdict.reasons
    assert find_champion("churn", branch_name()).pathspec == retrained.run.pathspec

    server = _serve(_bento_for(retrained.run, root), port, log_dir, root / "serve2.log")
    try:
        meta = httpx.get(f"{url}/metadata", headers=AUTH, timeout=10).json()
        assert meta["run"] == retrained.run.pathspec
    finally:
        server.terminate()
        server.wait(timeout=30)
