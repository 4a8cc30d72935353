"""A champion trained in a temporary datastore, exported, built into a Bento and served."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.helpers import REPO, TRAIN_FLOW, run_flow, small_config


@dataclass
class Served:
    url: str
    run: Any
    tag: str
    log_dir: Path
    spec: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_bento(build_root: Path, spec: dict[str, Any]) -> str:
    """Copy what bentofile.yaml includes into a fresh build context and build the Bento."""
    bentofile = yaml.safe_load((REPO / "bentofile.yaml").read_text())
    src = build_root / "src"
    for pattern in bentofile["include"]:
        for path in (REPO / "src").glob(pattern):
            target = src / path.relative_to(REPO / "src")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    (src / "flowship" / "bento_model.json").write_text(json.dumps(spec))
    shutil.copy(REPO / "bentofile.yaml", build_root / "bentofile.yaml")
    bentoml = Path(sys.executable).with_name("bentoml")
    done = subprocess.run(
        [str(bentoml), "build", "-f", str(build_root / "bentofile.yaml"), "-o", "tag", str(src)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


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
    from flowship.config import ServingSettings
    from flowship.registry import export_model

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
    bento_tag = build_bento(root, spec)
    port, log_dir = _free_port(), root / "predictions"
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
