"""Card components built from results; flows only append them to `current.card`."""

from __future__ import annotations

from typing import Any

import pandas as pd
from metaflow.cards import Markdown, Table, VegaChart

from flowship.data import Schema


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(frame: pd.DataFrame) -> Table:
    return Table(
        [[_fmt(v) for v in row] for row in frame.itertuples(index=False)],
        headers=[str(c) for c in frame.columns],
    )


def importance_chart(importances: pd.DataFrame, metric: str) -> VegaChart:
    """A horizontal bar chart of permutation importances with their spread."""
    values = [
        {"feature": r.feature, "importance": float(r.importance), "std": float(r.std)}
        for r in importances.itertuples(index=False)
    ]
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 480,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "feature", "type": "nominal", "sort": "-x", "title": None},
            "x": {
                "field": "importance",
                "type": "quantitative",
                "title": f"drop in {metric} when the column is shuffled",
            },
        },
    }
    return VegaChart(spec)


def training_card(
    *,
    best_name: str,
    metric: str,
    leaderboard: pd.DataFrame,
    metrics: dict[str, float],
    baseline_metrics: dict[str, float],
    importances: pd.DataFrame,
    schema: Schema,
    fingerprint: str,
    lineage: dict[str, Any],
    rows: tuple[int, int],
) -> list[Any]:
    """The training card: the choice, holdout metrics vs a baseline, leaderboard, importances."""
    comparison = pd.DataFrame(
        [
            {"metric": k, "model": metrics[k], "majority baseline": baseline_metrics.get(k)}
            for k in sorted(metrics)
        ]
    )
    dirty = " (uncommitted changes)" if lineage.get("git_dirty") else ""
    return [
        Markdown(
            f"# Training: **{best_name}**\n"
            f"Chosen by validation `{metric}` among {len(leaderboard)} candidates; "
            f"task `{schema.task}` with classes `{schema.classes}`.\n\n"
            f"Train rows {rows[0]:,}, holdout rows {rows[1]:,}; data fingerprint "
            f"`{fingerprint}`; commit `{str(lineage.get('git_sha'))[:12]}`{dirty}; "
            f"config `{lineage.get('config_hash')}`."
        ),
        Markdown("## Holdout metrics"),
        _table(comparison),
        Markdown("## Leaderboard (validation split of the training part)"),
        _table(leaderboard),
        Markdown("## Permutation importance on the holdout"),
        importance_chart(importances, metric),
    ]
