"""Replay, locally, every workflow step that needs neither Docker nor GitHub: the make targets
run for real, in a copy of the repository with its own Metaflow datastore and model store."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tomli_w

from tests.helpers import REPO, free_port
from tests.workflows.test_workflows import WORKFLOWS, _jobs, _steps, make_calls

pytestmark = pytest.mark.slow
# Steps that need a cluster, GitHub's API or the live index, or that .ci/run runs itself.
NEEDS_OUTSIDE = {
    "lint": "recursion: make lint runs this suite's checks itself",
    "test": "recursion: this test is part of make test",
    "actionlint": "its PyPI wrapper downloads the binary (GitHub runners only)",
    "changed-model": "asks GitHub for the pull request's files (gh)",
    "containerize": ".ci/run builds the image after make test (~2-4 min); not twice",
    "smoke-container": ".ci/run proves the image after make test; not twice",
    "push": "needs a Docker engine and a registry",
    "drift-issue": "opens a GitHub issue (gh)",
}
# The order a production day takes: train.yml, then monitor.yml (each job checks the state it
# starts from and writes the manifest of the state it leaves).
ORDER = [
    "state-check",
    "train",
    "verdict-summary",
    "promoted-outputs",
    "bento",
    "deploy",
    "state-manifest",
    "state-check",
    "simulate-day",
    "monitor-only",
    "monitor-summary",
    "monitor-outputs",
    "state-manifest",
    "canary-report",
]


def workflow_targets() -> set[str]:
    return {
        call[0]
        for path in WORKFLOWS
        for job in _jobs(path).values()
        for step in _steps(job)
        for call in make_calls(step.get("run", ""))
    }


def test_every_workflow_target_is_replayed_or_excused() -> None:
    """A new workflow step must be added to the replay or say why it cannot run here."""
    assert workflow_targets() == set(ORDER) | set(NEEDS_OUTSIDE)


# Each task's project as the workflows would run it: its config file, a small table, one
# cheap candidate and a floor it must pass, so the promoted-only steps run too.
HGB = {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {"max_iter": [50]}}
RIDGE = {"name": "ridge", "estimator": "ridge", "params": {"alpha": [1.0]}}
PROJECTS = {
    "binary": ("project.toml", "churn", HGB, {"roc_auc": 0.7}),
    "regression": ("delivery.toml", "delivery", RIDGE, {"r2": 0.3}),
}


@pytest.mark.parametrize("task", sorted(PROJECTS))
def test_replay_workflow_steps(tmp_path: Path, task: str) -> None:
    """train.yml's and monitor.yml's local steps succeed in order, as CI would run them, for a
    classification and a regression project."""
    config_file, table, candidate, floor = PROJECTS[task]
    work = tmp_path / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, work / name)
    (work / ".venv").symlink_to(REPO / ".venv")
    config = (REPO / "config" / config_file).read_text()
    import tomllib

    small = tomllib.loads(config)
    small["data"]["source"] = f"sample:{table}?rows=4000&seed=7"
    small["training"]["candidates"] = [candidate]
    small["gate"]["min_metrics"] = floor
    (work / "ci.toml").write_text(tomli_w.dumps(small))
    env = {
        **os.environ,
        "USERNAME": "github-actions",
        "PRODUCTION": "1",
        "CONFIG": "ci.toml",
        "ROWS": "400",
        "PORT": str(free_port()),
        "IMAGE_REPO": "ghcr.io/example/flowship",
    }
    env.pop("METAFLOW_DATASTORE_SYSROOT_LOCAL", None)
    outputs = {}
    transcript = []
    for target in ORDER:
        done = subprocess.run(
            ["make", "--no-print-directory", "-o", ".venv/.installed", target],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"make {target} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        outputs[target] = done.stdout
        transcript.append((target, done.stdout))
    assert "promoted=true" in outputs["promoted-outputs"]
    assert "image=ghcr.io/example/flowship:" in outputs["promoted-outputs"]
    assert "deploy skipped: no KUBECONFIG secret" in outputs["deploy"]
    assert "retrain=" in outputs["monitor-outputs"]
    assert (work / "reports" / "gate" / "summary.md").is_file()
    assert (work / "reports" / "monitor_card.html").is_file()
    checks = [out for target, out in transcript if target == "state-check"]
    manifests = [out for target, out in transcript if target == "state-manifest"]
    assert "no champion, no cache restored; no manifest saved yet" in checks[0]
    assert manifests[0].startswith("**State out:** champion `TrainFlow/")
    assert "branch prod" in manifests[0]
    assert "agrees" in checks[1]
    champion = manifests[0].split("`")[1]
    assert f"champion `{champion}`" in checks[1] and f"champion `{champion}`" in manifests[1]
