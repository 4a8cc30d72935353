"""Scaling out against local stand-ins: both flows, the champion registry and the monitor's
reference lookup on Metaflow's S3 datastore (moto's S3 server on 127.0.0.1), and the Argo
WorkflowTemplates `make argo` compiles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowship.sample_data import generate_churn, write_sample
from flowship.scale import local_s3
from tests.helpers import REPO, small_config, write_config

pytestmark = pytest.mark.slow
ONE_CANDIDATE = {
    "candidates": [
        {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {"max_iter": [60]}}
    ]
}


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """The local S3 server (a free port on 127.0.0.1), stopped after the module."""
    with local_s3() as env:
        yield env


def _env(root: Path, extra: dict[str, str]) -> dict[str, str]:
    """A child's environment: this datastore root and user, nothing inherited from Metaflow."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "AWS_"))}
    return {**base, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root), **extra}


def _python(code: str, env: dict[str, str], cwd: Path) -> Any:
    """Run Python in a fresh process (Metaflow reads its datastore settings at import) and
    return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _flow(flow: str, args: list[str], env: dict[str, str], cwd: Path) -> str:
    cmd = [sys.executable, str(REPO / "flows" / flow), "--no-pylint", *args]
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


def _client(s3: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3["METAFLOW_S3_ENDPOINT_URL"],
        aws_access_key_id=s3["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3["AWS_SECRET_ACCESS_KEY"],
        region_name=s3["AWS_DEFAULT_REGION"],
    )


def _s3_keys(s3: dict[str, str], prefix: str) -> list[str]:
    pages = _client(s3).get_paginator("list_objects_v2").paginate(Bucket="flowship", Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _upload(s3: dict[str, str], path: Path, key: str) -> str:
    _client(s3).upload_file(str(path), "flowship", key)
    return f"s3://flowship/{key}"


CHAMPION = """
import json
from flowship.registry import find_champion, load_champion
from flowship.runs import branch_name
run = find_champion("churn", branch_name())
ref = load_champion(run.pathspec)
print(json.dumps({
    "champion": run.pathspec,
    "decision": run["gate"].task.data.verdict.decision,
    "model": type(ref.model).__name__,
    "holdout_rows": len(ref.holdout),
    "metric": ref.metric,
    "ds_type": run["end"].task.metadata_dict.get("ds-type"),
}))
"""

MONITOR = """
import json
from metaflow import Flow
run = Flow("MonitorFlow").latest_run
verdict = run.data.verdict
print(json.dumps({"pathspec": run.pathspec, "successful": run.successful,
                  "status": verdict.status, "champion": verdict.champion,
                  "reasons": verdict.reasons}))
"""


def test_flows_registry_and_monitor_on_the_s3_datastore(s3: dict[str, str], tmp_path: Path) -> None:
    """TrainFlow and MonitorFlow run unchanged with METAFLOW_DEFAULT_DATASTORE=s3: artifacts
    and cards land in the bucket (only metadata stays local), the registry finds and loads
    the champion from S3, and the monitor reads its reference from the champion's artifacts."""
    (tmp_path / ".metaflow").mkdir()
    env = _env(tmp_path, s3)
    table = generate_churn(6000, seed=3)
    for part, rows in enumerate((table.iloc[:4000], table.iloc[4000:])):
        rows.to_parquet(tmp_path / f"part-{part}.parquet")
        _upload(s3, tmp_path / f"part-{part}.parquet", f"tables/churn/part-{part}.parquet")
    config = small_config(
        data={"source": "s3://flowship/tables/churn/part-*.parquet"},  # the data in S3, too
        training=ONE_CANDIDATE,
        serving={"prediction_log_dir": str(tmp_path / "predictions")},
        monitor={"feedback_dir": str(tmp_path / "feedback"), "workspace": str(tmp_path / "ws")},
    )
    cfg = write_config(tmp_path / "project.toml", config)
    out = _flow("train_flow.py", ["--config", "config", str(cfg), "run"], env, tmp_path)
    assert "verdict" in out and "promote" in out

    champion = _python(CHAMPION, env, tmp_path)
    run_id = champion["champion"].split("/")[1]
    assert champion["decision"] == "promote"
    assert champion["ds_type"] == "s3"
    assert champion["model"] == "Pipeline"
    assert champion["holdout_rows"] == 1500  # test_size 0.25 of the two files' 6000 rows
    assert any(k.startswith("metaflow/TrainFlow/data/") for k in _s3_keys(s3, "metaflow/"))
    assert _s3_keys(s3, f"metaflow/mf.cards/TrainFlow/runs/{run_id}/")  # the cards, too
    local = [p for p in (tmp_path / ".metaflow").rglob("*") if p.is_file()]
    assert local and all("_meta" in p.parts or p.name == "latest_run" for p in local)

    window = write_sample(tmp_path / "window.parquet", rows=3000, seed=5, scenario="price_increase")
    window_url = _upload(s3, window, "windows/today.parquet")
    _flow(
        "monitor_flow.py",
        ["--config", "config", str(cfg), "run", "--current", window_url],
        env,
        tmp_path,
    )
    monitor = _python(MONITOR, env, tmp_path)
    assert monitor["successful"]
    assert monitor["champion"] == champion["champion"]
    assert monitor["status"] == "retrain"
    assert any("monthly_charges" in r for r in monitor["reasons"])
    monitor_id = monitor["pathspec"].split("/")[1]
    assert _s3_keys(s3, f"metaflow/MonitorFlow/{monitor_id}/")  # its code package
    assert _python(CHAMPION, env, tmp_path)["champion"] == champion["champion"]  # unchanged


def _argo(root: Path, cfg: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`python -m flowship argo` (what `make argo` runs) with no S3 configured."""
    cmd = [sys.executable, "-m", "flowship", "argo", "--config", str(cfg), *options]
    done = subprocess.run(cmd, env=_env(root, {}), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """`python -m flowship argo` (what `make argo` runs) with a config of our own sizes; no S3
    configured, so the command starts its own local stand-in."""
    root = tmp_path_factory.mktemp("argo")
    config = small_config(
        project={"name": "fraud"},
        scale={
            "data_steps": {"cpu": 3, "memory_mb": 12000},
            "candidate_steps": {"cpu": 6, "memory_mb": 30000},
            "score_steps": {"cpu": 2, "memory_mb": 6000},
            "train_schedule": "15 2 * * 0",
            "monitor_schedule": "0 */6 * * *",
            "score_schedule": "30 1 * * *",
        },
        score={"input": "s3://data/customers/*.parquet", "output": "s3://data/scores/{date}"},
    )
    cfg = write_config(root / "project.toml", config)
    done = _argo(root, cfg, "--production", "--out", str(root / "argo"))
    assert "local S3 stand-in" in done.stderr
    assert sorted(p.name for p in (root / "argo").iterdir()) == [
        "monitorflow.json",
        "scoreflow.json",
        "trainflow.json",
    ]
    return {
        name: json.loads((root / "argo" / f"{name.lower()}.json").read_text())
        for name in ("TrainFlow", "MonitorFlow", "ScoreFlow")
    }


def _steps(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Step name → its container template (Argo names use '-' for '_')."""
    return {
        t["name"]: t
        for t in template["spec"]["templates"]
        if "container" in t and not t["name"].startswith(("error-", "capture-"))
    }


def _requests(step: dict[str, Any]) -> tuple[float, str]:
    requests = step["container"]["resources"]["requests"]
    return float(requests["cpu"]), requests["memory"]


def test_argo_train_template(templates: dict[str, dict[str, Any]]) -> None:
    """One template per TrainFlow step, the foreach over candidates, @resources sized from
    [scale], the weekly schedule and the retrain-event trigger, on the production branch."""
    template = templates["TrainFlow"]
    assert template["kind"] == "WorkflowTemplate"
    assert template["metadata"]["name"] == "fraud.prod.trainflow"
    steps = _steps(template)
    assert set(steps) == {
        "start", "load", "train", "select", "evaluate", "gate", "promote", "end"
    }  # fmt: skip
    for name in ("load", "select", "evaluate", "gate"):
        assert _requests(steps[name]) == (3.0, "12000.0M"), name
    assert _requests(steps["train"]) == (6.0, "30000.0M")
    assert _requests(steps["start"])[0] < 3  # light steps keep Metaflow's defaults
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "TrainFlow")["dag"]
    foreach = next(t for t in dag["tasks"] if t["name"] == "load-foreach-candidates")
    assert "withParam" in foreach  # one train task per candidate, in parallel
    inner = next(t for t in template["spec"]["templates"] if t["name"] == foreach["template"])
    assert [t["template"] for t in inner["dag"]["tasks"]] == ["train"]
    annotations = template["metadata"]["annotations"]
    assert json.loads(annotations["metaflow/cron"]) == {"schedule": "15 2 * * 0", "tz": ""}
    assert json.loads(annotations["metaflow/triggers"]) == [
        {"name": "fraud.retrain", "type": "event"}
    ]
    graph = json.loads(annotations["metaflow/dag"])["graph_structure"]
    assert graph == ["start", "load", [["train"]], "select", "evaluate", "gate", "promote",
                     "end"]  # fmt: skip
    env = {e["name"]: e.get("value") for e in steps["train"]["container"]["env"]}
    assert env["METAFLOW_DEFAULT_DATASTORE"] == "s3"
    assert env["METAFLOW_DATASTORE_SYSROOT_S3"] == "s3://flowship/metaflow"
    assert env["METAFLOW_DEFAULT_METADATA"] == "service"


def test_argo_monitor_template(templates: dict[str, dict[str, Any]]) -> None:
    """MonitorFlow: its steps, heavy ones sized from [scale], its own schedule, no trigger,
    and the Argo Events webhook it publishes the retrain event to."""
    template = templates["MonitorFlow"]
    assert template["metadata"]["name"] == "fraud.prod.monitorflow"
    steps = _steps(template)
    assert set(steps) == {"start", "load", "prepare", "check", "decide", "end"}
    for name in ("load", "prepare", "check"):
        assert _requests(steps[name]) == (3.0, "12000.0M"), name
    annotations = template["metadata"]["annotations"]
    assert json.loads(annotations["metaflow/cron"])["schedule"] == "0 */6 * * *"
    assert "metaflow/triggers" not in annotations
    env = {e["name"]: e.get("value") for e in steps["end"]["container"]["env"]}
    assert env["METAFLOW_ARGO_EVENTS_WEBHOOK_URL"].endswith(":12000/metaflow-event")
    assert env["ARGO_WORKFLOW_TEMPLATE"] == "fraud.prod.monitorflow"  # safe_publish is live


def test_argo_score_template(templates: dict[str, dict[str, Any]]) -> None:
    """ScoreFlow: one pod per shard (a foreach) sized by [scale] score_steps, the nightly
    schedule; --input and --output default to [score] input and output (in the code package's
    config), so a scheduled run needs no parameters."""
    template = templates["ScoreFlow"]
    assert template["metadata"]["name"] == "fraud.prod.scoreflow"
    steps = _steps(template)
    assert set(steps) == {"start", "plan", "score", "join", "end"}
    assert _requests(steps["score"]) == (2.0, "6000.0M")
    dag = next(t for t in template["spec"]["templates"] if t["name"] == "ScoreFlow")["dag"]
    foreach = next(t for t in dag["tasks"] if t["name"] == "plan-foreach-shards")
    assert "withParam" in foreach
    annotations = template["metadata"]["annotations"]
    assert json.loads(annotations["metaflow/cron"])["schedule"] == "30 1 * * *"
    graph = json.loads(annotations["metaflow/dag"])["graph_structure"]
    assert graph == ["start", "plan", [["score"]], "join", "end"]
    parameters = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    assert parameters["input"] == parameters["output"] == '""'


def test_argo_without_a_schedule(tmp_path: Path) -> None:
    """`train_schedule = ""` compiles TrainFlow with no cron at all."""
    cfg = write_config(tmp_path / "p.toml", small_config(scale={"train_schedule": ""}))
    done = _argo(tmp_path, cfg, "--flows", "TrainFlow", "--out", str(tmp_path / "out"))
    assert "schedule none" in done.stdout
    template = json.loads((tmp_path / "out" / "trainflow.json").read_text())
    assert "metaflow/cron" not in template["metadata"]["annotations"]


def test_s3_source_errors_name_the_url(s3: dict[str, str], tmp_path: Path) -> None:
    """A missing object or an empty glob in S3 is a DataValidationError naming the source."""
    code = """
import json
from flowship.errors import DataValidationError
from flowship.sources import read_source
out = []
for source in ("s3://flowship/nothing/here.parquet", "s3://flowship/nothing/*.csv"):
    try:
        read_source(source)
    except DataValidationError as exc:
        out.append(str(exc))
print(json.dumps(out))
"""
    missing, empty = _python(code, _env(tmp_path, s3), tmp_path)
    assert missing.startswith("could not read s3://flowship/nothing/here.parquet")
    assert "METAFLOW_S3_ENDPOINT_URL" in missing
    assert empty == "no object matches [data] source = 's3://flowship/nothing/*.csv'"
