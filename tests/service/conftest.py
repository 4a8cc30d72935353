"""A champion trained in a temporary datastore, exported, built into a Bento and served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowship.bento import build_bento
from tests.helpers import REPO, TRAIN_FLOW, free_port, run_flow, small_config


@dataclass
class Served:
    url: str
    run: Any
    tag: str
    log_dir: Path
    spec: Path


@pytest.fixture(scope="session")
def champion_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from metaflow import metadata

    root = tmp_path_factory.mktemp("mf-service")
    (root / ".metaflow").mkdir()
    metadata(f"local@{root}")
    result = run_flow(root, TRAIN_FLOW, small_config())
    assert result.status == "successful", result.stdout + result.stderr
    assert result.run.data.verdict.decision == "promote"
    return result.run


@pytest.fixture(scope="session")
def spec_file(champion_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowship.bento import export_model
    from flowship.config import ServingSettings

    tag, metadata = export_model(champion_run, "churn")
    spec = {
        "model_tag": tag,
        "schema": metadata["schema"],
        "serving": ServingSettings(max_rows=50).model_dump(mode="json"),
    }
    path = tmp_path_factory.mktemp("spec") / "bento_model.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="session")
def served(champion_run: Any, spec_file: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("bento")
    spec = json.loads(spec_file.read_text())
    bento_tag = build_bento(spec, REPO, root)
    port, log_dir = free_port(), root / "predictions"
    env = {**os.environ, "FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir)}
    bentoml = Path(sys.executable).with_name("bentoml")
    proc = subprocess.Popen(
        [str(bentoml), "serve", bento_tag, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=(root / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        yield Served(url, champion_run, spec["model_tag"], log_dir, spec_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
