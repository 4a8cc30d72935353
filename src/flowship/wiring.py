"""What every flow declares the same way: the project's `config` and the `[scale]`-sized
`@resources`. Flows call these when they are defined; nothing else does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowship.config import DEFAULT_CONFIG_PATH

FLOWS_DIR = Path(__file__).resolve().parents[2] / "flows"
FLOW_FILES = {
    "TrainFlow": "train_flow.py",
    "MonitorFlow": "monitor_flow.py",
    "ScoreFlow": "score_flow.py",
}


def flow_path(flow: str) -> Path:
    """The file of one of the project's flows (`TrainFlow` → `flows/train_flow.py`)."""
    return FLOWS_DIR / FLOW_FILES[flow]


def project_config() -> Any:
    """The flow's `config`: the project's TOML, parsed and completed by `flowship.config`.

    Every process that defines the flow calls this (the runtime, each task, the card
    renderer), so it is also where Metaflow's cards are fixed (`flowship.metaflow_patches`):
    local cards follow the datastore, and a finished task renders each card once.
    """
    from metaflow import Config

    from flowship.metaflow_patches import patch_card_root, patch_final_card_refresh

    patch_card_root()
    patch_final_card_refresh()

    return Config(
        "config",
        default=str(DEFAULT_CONFIG_PATH),
        parser="flowship.config.parse_config",
        help="The project's TOML configuration (data, features, candidates, gate, monitor).",
    )


def step_resources(kind: str) -> Any:
    """`@resources` sized by `[scale] <kind>` (`data_steps`, `candidate_steps`, `score_steps`)
    of the flow's `config`, read when the flow is defined. Kubernetes / Argo use it; local runs
    ignore it."""
    from metaflow import config_expr, resources  # type: ignore[attr-defined]  # added at import

    return resources(
        cpu=config_expr(f"config.scale.{kind}.cpu"),
        memory=config_expr(f"config.scale.{kind}.memory_mb"),
    )
