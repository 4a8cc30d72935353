"""Card components built from results; flows only append them to `current.card`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from metaflow.cards import Markdown, Table, VegaChart

from flowship.checks import CheckResult, QualityReport
from flowship.compare import LiveComparison
from flowship.config import Settings
from flowship.gate import Verdict
from flowship.monitoring import MonitorVerdict
from flowship.schema import Schema

if TYPE_CHECKING:
    from flowship.score import ScoreSummary


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _num(value: float) -> str:
    """A check's value: whole numbers in full (20,000 rows), others to 4 significant digits."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


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


RESIDUAL_POINTS = 2000  # rows drawn on the regression card's charts (a seeded sample past it)


def residual_charts(
    predictions: pd.DataFrame, target: str, max_points: int = RESIDUAL_POINTS
) -> list[Any]:
    """Predicted against actual values (with the ideal line) and the residuals' histogram,
    on at most `max_points` holdout rows."""
    rows = predictions[[target, "prediction"]].astype(float)
    if len(rows) > max_points:
        rows = rows.sample(n=max_points, random_state=0)
    values = [
        {"actual": a, "predicted": p, "residual": a - p}
        for a, p in zip(rows[target], rows["prediction"], strict=True)
    ]
    low = float(min(rows[target].min(), rows["prediction"].min()))
    high = float(max(rows[target].max(), rows["prediction"].max()))
    scatter = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 360,
        "height": 300,
        "layer": [
            {
                "data": {"values": values},
                "mark": {"type": "circle", "opacity": 0.4, "size": 12},
                "encoding": {
                    "x": {"field": "actual", "type": "quantitative", "title": f"actual {target}"},
                    "y": {"field": "predicted", "type": "quantitative", "title": "predicted"},
                },
            },
            {
                "data": {"values": [{"x": low, "y": low}, {"x": high, "y": high}]},
                "mark": {"type": "line", "color": "#cf222e"},
                "encoding": {
                    "x": {"field": "x", "type": "quantitative"},
                    "y": {"field": "y", "type": "quantitative"},
                },
            },
        ],
    }
    histogram = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 360,
        "height": 300,
        "data": {"values": values},
        "mark": "bar",
        "encoding": {
            "x": {
                "field": "residual",
                "bin": {"maxbins": 40},
                "type": "quantitative",
                "title": "residual (actual − predicted)",
            },
            "y": {"aggregate": "count", "type": "quantitative", "title": "rows"},
        },
    }
    return [VegaChart(scatter), VegaChart(histogram)]


def explanation_chart(explanation: pd.DataFrame) -> VegaChart:
    """A horizontal bar chart of each feature's mean |SHAP| contribution."""
    values = [
        {"feature": r.feature, "mean_abs_shap": float(r.mean_abs_shap)}
        for r in explanation.itertuples(index=False)
    ]
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 480,
        "data": {"values": values},
        "mark": {"type": "bar", "tooltip": True, "color": "#8250df"},
        "encoding": {
            "y": {"field": "feature", "type": "nominal", "sort": "-x", "title": None},
            "x": {
                "field": "mean_abs_shap",
                "type": "quantitative",
                "title": "mean |SHAP contribution| to the explained output",
            },
        },
    }
    return VegaChart(spec)


class TrainingResults(Protocol):
    """What the training card reads: the artifacts of TrainFlow's evaluate step."""

    best_candidate: str
    settings: Settings
    leaderboard: pd.DataFrame
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    importances: pd.DataFrame
    holdout_predictions: pd.DataFrame
    schema: Schema
    data_fingerprint: str
    dropped_rows: int
    lineage: dict[str, Any]


def training_card(results: TrainingResults, rows: tuple[int, int]) -> list[Any]:
    """The training card: the task and why, the choice, holdout metrics vs the naive
    baseline, leaderboard, importances, and for regression predicted vs actual and residuals."""
    metric = results.settings.training.metric
    metrics, baseline = results.metrics, results.baseline_metrics
    lineage, schema = results.lineage, results.schema
    task = schema.kind
    baseline_name = f"{task.baseline_name} baseline"
    comparison = pd.DataFrame(
        [
            {"metric": k, "model": metrics[k], baseline_name: baseline.get(k)}
            for k in sorted(metrics)
        ]
    )
    dirty = " (uncommitted changes)" if lineage.get("git_dirty") else ""
    classes = f" with classes `{schema.classes}`" if task.classifies else ""
    dropped = getattr(results, "dropped_rows", 0)
    dropped_note = (
        f" {dropped:,} rows without a usable target (missing or not finite) were left out."
        if dropped
        else ""
    )
    parts: list[Any] = [
        Markdown(
            f"# Training: **{results.best_candidate}**\n"
            f"Chosen by validation `{metric}` among {len(results.leaderboard)} candidates; "
            f"task `{schema.task}`{classes} ({schema.task_reason}).\n\n"
            f"Train rows {rows[0]:,}, holdout rows {rows[1]:,};{dropped_note} data fingerprint "
            f"`{results.data_fingerprint}`; commit `{str(lineage.get('git_sha'))[:12]}`{dirty}; "
            f"config `{lineage.get('config_hash')}`."
        ),
        Markdown("## Holdout metrics"),
        _table(comparison),
        Markdown("## Leaderboard (validation split of the training part)"),
        _table(results.leaderboard),
        Markdown("## Permutation importance on the holdout"),
        importance_chart(results.importances, metric),
    ]
    explanation = getattr(results, "explanation", None)
    if explanation is not None and len(explanation):
        explained = explanation.attrs.get("rows", len(results.holdout_predictions))
        parts += [
            Markdown(
                f"## Mean \\|SHAP\\| on {explained:,} holdout rows\n"
                f"How much each feature moves {task.explained_output} away from its average over "
                "training "
                "rows, on average (`POST /explain` gives it per row)."
            ),
            explanation_chart(explanation),
        ]
    latency = getattr(results, "latency", None)
    if latency is not None:
        parts.append(Markdown(f"## Predict latency\n{latency.describe()}."))
    if not task.classifies:
        n = len(results.holdout_predictions)
        shown = (
            f"a sample of {RESIDUAL_POINTS:,} of the {n:,} holdout rows"
            if n > RESIDUAL_POINTS
            else "the holdout"
        )
        parts.append(Markdown(f"## Predicted vs actual, and residuals, on {shown}"))
        parts += residual_charts(results.holdout_predictions, schema.target, RESIDUAL_POINTS)
    return parts


_STATUS_STYLE = {
    "pass": ("#1a7f37", "#dafbe1", "PASS"),
    "fail": ("#cf222e", "#ffebe9", "FAIL"),
    "warn": ("#9a6700", "#fff8c5", "WARN"),
    "skipped": ("#57606a", "#f6f8fa", "SKIP"),
}
_DECISION_STYLE = {
    "promote": ("#1a7f37", "PROMOTED"),
    "override": ("#8250df", "PROMOTED BY OVERRIDE"),
    "block": ("#cf222e", "BLOCKED"),
    "dry-run": ("#0969da", "DRY RUN"),
}


def _check_rows(checks: list[CheckResult]) -> str:
    rows = []
    for check in checks:
        fg, bg, word = _STATUS_STYLE[check.status]
        value = "" if check.value is None else _num(check.value)
        rows.append(
            f'<tr><td style="background:{bg};color:{fg};font-weight:600">{word}</td>'
            f"<td>{escape(check.group)}</td><td>{escape(check.name)}</td>"
            f"<td>{escape(check.column or '')}</td><td>{value}</td>"
            f"<td>{escape(check.condition)}</td><td>{'yes' if check.critical else 'no'}</td>"
            f"<td>{escape(check.description)}</td></tr>"
        )
    return (
        "<table><tr><th>status</th><th>group</th><th>check</th><th>column</th><th>value</th>"
        "<th>condition</th><th>critical</th><th>Evidently says</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_reports(reports: Sequence[QualityReport]) -> str:
    """The Evidently reports as iframes, to embed below a summary table in one HTML card."""
    parts = []
    for report in reports:
        note = f"<p><i>{escape(report.note)}</i></p>" if report.note else ""
        parts.append(
            f"<h2>{escape(report.title)}</h2>{note}"
            f'<iframe style="width:100%;height:900px;border:1px solid #ddd" '
            f'srcdoc="{escape(report.html, quote=True)}"></iframe>'
        )
    return "\n".join(parts)


_PAGE_STYLE = """<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}</style>"""


def render_gate_card(
    verdict: Verdict, reports: list[QualityReport], lineage: dict[str, Any]
) -> str:
    """The gate card as one HTML page: the decision, every check at a glance, then the reports."""
    colour, title = _DECISION_STYLE[verdict.decision]
    counts = verdict.summary()
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.reasons)
    override = ""
    if verdict.override:
        failing = ", ".join(verdict.override.failing_checks) or "none"
        override = (
            f"<p><b>Override</b> by {escape(verdict.override.user)}: "
            f"{escape(verdict.override.reason)} (failing checks: {escape(failing)})</p>"
        )
    if verdict.accepted_contract:
        changes = "; ".join(verdict.accepted_contract.failing_checks)
        override += (
            f"<p><b>New contract accepted</b> by {escape(verdict.accepted_contract.user)}: "
            f"{escape(verdict.accepted_contract.reason)} ({escape(changes)})</p>"
        )
    would = "would promote" if verdict.would_promote else "would block"
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Gate {verdict.id}</title>
{_PAGE_STYLE}</head><body>
<h1 style="color:{colour}">{title}</h1>
<p>Verdict <code>{verdict.id}</code> at {escape(verdict.created_at)}; mode <b>{verdict.mode}</b>
(the checks alone {would}).<br>Challenger <code>{escape(verdict.challenger or "?")}</code>, champion
before this run <code>{escape(verdict.champion or "none")}</code>.<br>Commit
<code>{escape(str(lineage.get("git_sha", "unknown"))[:12])}</code>, config
<code>{escape(str(lineage.get("config_hash", "")))}</code>.</p>
<p><b>{counts["pass"]}</b> passed, <b>{counts["fail"]}</b> failed, <b>{counts["warn"]}</b> warnings,
<b>{counts["skipped"]}</b> skipped.</p><ul>{reasons}</ul>{override}
{_check_rows(verdict.checks)}
{render_reports([r for r in reports if r.html])}
</body></html>"""


_MONITOR_STYLE = {
    "ok": ("#1a7f37", "NO ACTION NEEDED"),
    "alarm": ("#9a6700", "DATA-QUALITY ALARM"),
    "retrain": ("#cf222e", "RETRAIN"),
}


def render_live(live: LiveComparison, html: str = "") -> str:
    """The champion-vs-challenger section: the conclusion, its checks, Evidently's report."""
    colour = "#1a7f37" if live.favours_challenger else "#57606a"
    verdict = "FAVOURS THE CHALLENGER" if live.favours_challenger else "DOES NOT FAVOUR IT"
    notes = "".join(f"<li>{escape(n)}</li>" for n in [*live.reasons, *live.notes])
    report = render_reports([QualityReport("Evidently: both models on these rows", [], html)])
    return f"""<h2>Challenger <code>{escape(live.challenger_run)}</code> on live traffic:
<span style="color:{colour}">{verdict}</span></h2><p>{escape(live.summary())}</p>
<ul>{notes}</ul>{_check_rows(live.checks)}{report if html else ""}"""


def render_monitor_card(
    verdict: MonitorVerdict, reports: list[QualityReport], live_html: str = ""
) -> str:
    """The monitor card: the decision and window at the top, every check, the live comparison
    with a challenger when one served, then the reports."""
    colour, title = _MONITOR_STYLE[verdict.status]
    window = verdict.window
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.reasons)
    live = render_live(verdict.challenger, live_html) if verdict.challenger else ""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Monitor {verdict.id}</title>
{_PAGE_STYLE}</head><body><h1 style="color:{colour}">{title}</h1>
<p>Verdict <code>{verdict.id}</code> at {escape(verdict.created_at)} for champion
<code>{escape(verdict.champion)}</code>.<br>Window: {escape(str(window.get("source")))},
{window.get("rows", 0):,} rows, {window.get("labelled", 0):,} with delayed labels.</p>
<ul>{reasons}</ul>{_check_rows(verdict.checks)}{live}
{render_reports([r for r in reports if r.html])}</body></html>"""


def render_live_page(live: LiveComparison, html: str) -> str:
    """`make compare`'s report as one HTML page."""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Compare {live.id}</title>
{_PAGE_STYLE}</head><body><h1>Champion vs challenger, live</h1>
<p>Comparison <code>{live.id}</code> at {escape(live.created_at)}; champion
<code>{escape(live.champion_run)}</code>.</p>{render_live(live, html)}</body></html>"""


def score_card(summary: ScoreSummary) -> list[Any]:
    """The scoring card: rows scored and refused, shards, throughput, the distribution of the
    predictions, the share of rows with missing or unknown values, and where it all went."""
    scored = max(summary.scored, 1)
    resumed = f" Resumed from run {summary.resumed_from}." if summary.resumed_from else ""
    path = "the service's NumPy fast path" if summary.fast_path else "the pipeline"
    parts: list[Any] = [
        Markdown(
            f"# Scoring: **{summary.scored:,}** of {summary.rows:,} rows\n"
            f"Input `{summary.source}` → output `{summary.output}`, in {summary.shards} "
            f"shard(s); model `{summary.model_run}` (verdict `{summary.verdict}`), predicted "
            f"with {path}, as the service predicts.{resumed}"
        ),
        _table(
            pd.DataFrame(
                [
                    ("rows in the input", f"{summary.rows:,}"),
                    ("rows scored", f"{summary.scored:,}"),
                    ("rows refused (see _rejects/)", f"{summary.rejected:,}"),
                    ("shards", f"{summary.shards:,}"),
                    ("wall time, first shard to publication", f"{summary.seconds:,.1f} s"),
                    ("throughput", f"{summary.rows_per_second:,.0f} rows/s"),
                    ("shard time, summed", f"{summary.shard_seconds:,.1f} s"),
                    ("rows with a missing value", f"{summary.missing / scored:.2%}"),
                    ("rows with a category unseen in training", f"{summary.unknown / scored:.2%}"),
                ],
                columns=["", "value"],
            )
        ),
        Markdown("## Predictions"),
    ]
    if summary.labels:
        labels = pd.DataFrame(
            [(k, f"{v:,}", v / scored) for k, v in sorted(summary.labels.items())],
            columns=["predicted class", "rows", "share"],
        )
        parts.append(_table(labels))
    if summary.scores:
        title = {
            "binary": "probability of the positive class",
            "multiclass": "probability of the predicted class",
        }.get(summary.task, "predicted value")
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "width": 480,
            "height": 240,
            "data": {"values": [{"score": float(v)} for v in summary.scores]},
            "mark": "bar",
            "encoding": {
                "x": {
                    "field": "score",
                    "bin": {"maxbins": 40},
                    "type": "quantitative",
                    "title": title,
                },
                "y": {"aggregate": "count", "type": "quantitative", "title": "rows (a sample)"},
            },
        }
        parts.append(VegaChart(spec))
    if summary.rejected:
        refused = pd.DataFrame(
            sorted(summary.rejected_by_column.items(), key=lambda kv: -kv[1]),
            columns=["column", "rows refused"],
        )
        parts += [Markdown("## Refused rows"), _table(refused)]
        parts.append(Markdown("\n".join(f"- {escape(e, quote=False)}" for e in summary.examples)))
    return parts
