"""A champion trained in a temporary datastore, exported, built into a Bento and served."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
def bento_tag(spec_file: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_bento(json.loads(spec_file.read_text()), REPO, tmp_path_factory.mktemp("bento"))


@pytest.fixture(scope="session")
def served(champion_run: Any, spec_file: Path, bento_tag: str, tmp_path_factory):
    from flowship.processes import served_bento

    log_dir = tmp_path_factory.mktemp("served") / "predictions"
    env = {"FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir)}
    with served_bento(bento_tag, "127.0.0.1", free_port(), env) as url:
        model_tag = json.loads(spec_file.read_text())["model_tag"]
        yield Served(url, champion_run, model_tag, log_dir, spec_file)
