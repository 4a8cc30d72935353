"""Monitor snapshots into the Evidently workspace that `make dashboard` opens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowship.checks import QualityReport
from flowship.tasks import METRICS


def save_to_workspace(
    path: str, project: str, reports: Sequence[QualityReport], metrics: Sequence[str]
) -> str:
    """Add each report's snapshot to an Evidently workspace project (created the first time
    with two dashboard panels: the share of drifted columns, and model quality on labelled
    rows as the first three of `metrics`, the monitored metric first)."""
    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Workspace

    workspace = Workspace(path) if Path(path).is_dir() else Workspace.create(path)
    found = list(workspace.search_project(project))
    panel = list(dict.fromkeys(metrics))[:3]
    target = found[0] if found else _create_monitoring_project(workspace, project, panel)
    for report in reports:
        if not report.snapshot:
            continue
        workspace.add_run(target.id, Snapshot.loads(report.snapshot), include_data=False)
    return str(target.id)


def _create_monitoring_project(workspace: Any, name: str, metrics: Sequence[str]) -> Any:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel

    project = workspace.create_project(name, description="flowship production monitoring")
    board = project.dashboard
    board.add_panel(
        line_plot_panel(
            title="Share of drifted columns",
            size="half",
            values=[
                PanelMetric(
                    legend="share",
                    metric="DriftedColumnsCount",
                    metric_labels={"value_type": "share"},
                )
            ],
        ),
        tab="Monitoring",
    )
    board.add_panel(
        line_plot_panel(
            title="Model quality on labelled production rows",
            size="half",
            values=[PanelMetric(legend=m, metric=METRICS[m].evidently) for m in metrics],
        ),
        tab="Monitoring",
    )
    return project
