"""Small shared helpers for tests: tiny configs and flow runs in a temporary datastore."""

from __future__ import annotations

import base64
import copy
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

REPO = Path(__file__).resolve().parents[1]
# the key tests/conftest.py gives every served Bento
AUTH = {"authorization": f"Bearer {os.environ.get('FLOWSHIP_API_KEY', '')}"}
TRAIN_FLOW = REPO / "flows" / "train_flow.py"

SMALL_CONFIG: dict[str, Any] = {
    "project": {"name": "churn"},
    "data": {
        "source": "sample:churn?rows=600&seed=3",
        "target": "churned",
        "id_column": "customer_id",
        "test_size": 0.25,
        "split_seed": 1,
    },
    "training": {
        "metric": "roc_auc",
        "seed": 0,
        "importance_rows": 200,
        "explain_rows": 40,  # the card's mean |SHAP|: enough rows for tests, cheaper
        "candidates": [
            {"name": "logreg", "estimator": "logistic_regression", "params": {"C": [1.0]}},
            {
                "name": "hgb",
                "estimator": "hist_gradient_boosting",
                "params": {"max_iter": [40], "max_leaf_nodes": [7, 15]},
            },
        ],
    },
    "gate": {
        "min_rows": 300,
        "min_metrics": {"roc_auc": 0.7},
        "max_regression": 0.05,
        "latency_calls": 30,
    },
}


def small_config(**overrides: dict[str, Any]) -> dict[str, Any]:
    """SMALL_CONFIG with whole sections' keys replaced, e.g. `small_config(data={...})`."""
    config = copy.deepcopy(SMALL_CONFIG)
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(config))
    return path


@dataclass
class FlowResult:
    status: str
    run: Any
    stdout: str
    stderr: str


def run_flow(
    root: Path, flow: Path, config: dict[str, Any], top: dict[str, Any] | None = None, **run: Any
) -> FlowResult:
    """Run a flow with `config` in a datastore under `root` (cwd = sysroot)."""
    from metaflow import Runner

    # a name of its own: flows may be started from several threads at once
    cfg = write_config(root / f"config-{uuid.uuid4().hex[:12]}.toml", config)
    env = {"METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root), "USERNAME": os.environ["USERNAME"]}
    runner = Runner(
        str(flow),
        show_output=False,
        env=env,
        cwd=str(root),
        config=[("config", str(cfg))],
        **(top or {}),
    )
    with runner.run(max_workers=4, **run) as result:
        return FlowResult(result.status, result.run, result.stdout, result.stderr)


def card_text(html: str) -> str:
    """The JSON payload of a Metaflow card (cards embed their components base64-encoded)."""
    blobs = re.findall(r'window.__MF_DATA__\["[^"]+"\] = "([A-Za-z0-9+/=]+)"', html)
    return "\n".join(base64.b64decode(b).decode() for b in blobs)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
