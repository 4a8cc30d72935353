"""MonitorFlow: check production traffic against the champion and decide whether to retrain.

Usage:
    python flows/monitor_flow.py run
    python flows/monitor_flow.py run --since 2026-11-24T00:00:00
    python flows/monitor_flow.py run --current data/today.parquet
    python flows/monitor_flow.py card view decide
"""

from datetime import datetime

from metaflow import (
    FlowSpec,
    Parameter,
    card,
    config_expr,
    current,
    project,
    schedule,
    step,
)
from metaflow.integrations import ArgoEvent

import flowship  # noqa: F401  (ships the library with the flow's code package)
from flowship.wiring import project_config, step_resources

# The library is imported in the steps that use it (every task and card render imports this
# file).

# On Kubernetes / Argo Workflows ([scale] of the config; local runs ignore it):
DATA_STEP = step_resources("data_steps")


@project(name=config_expr("config.project.name"))
@schedule(cron=config_expr("config.scale.monitor_schedule"), daily=False)
class MonitorFlow(FlowSpec):
    """Production window + delayed labels vs the champion's own holdout → retrain or not."""

    config = project_config()
    current_file = Parameter(
        "current", default="", help="A CSV/Parquet window to check instead of the prediction log."
    )
    since = Parameter("since", default="", help="ISO time: only logged predictions since then.")
    log_dir = Parameter(
        "log-dir", default="", help="Prediction log folder (default: [serving] prediction_log_dir)."
    )

    @step
    def start(self):
        """Validate the config and find the champion whose traffic is checked."""
        from flowship.config import load_settings
        from flowship.registry import find_champion_or_fail

        self.settings = load_settings(self.config)
        self.champion = find_champion_or_fail(current.project_name, current.branch_name)
        self.next(self.load)

    @DATA_STEP
    @step
    def load(self):
        """The prediction-log window (or a file) with delayed labels joined by request id."""
        from flowship.monitoring import load_window
        from flowship.registry import load_champion

        self.reference_data = load_champion(self.champion)
        self.window = load_window(
            self.settings.monitor,
            self.reference_data.schema,
            self.champion,
            self.log_dir or self.settings.serving.prediction_log_dir,
            current_file=self.current_file or None,
            since=datetime.fromisoformat(self.since) if self.since else None,
        )
        self.next(self.prepare)

    @DATA_STEP
    @step
    def prepare(self):
        """The window typed and scored; the champion's holdout with its own predictions."""
        from flowship.monitoring import prepare_window, reference_frame

        ref = self.reference_data
        self.reference = reference_frame(ref.holdout, ref.holdout_predictions, ref.schema)
        self.current = prepare_window(self.window, ref.schema, ref.model)
        self.next(self.check)

    @DATA_STEP
    @step
    def check(self):
        """Evidently: drift of features and predictions, data quality, decay with labels; and,
        when a challenger served beside the champion, the two on the same labelled rows."""
        from flowship.compare import compare_window
        from flowship.monitoring import SCORE
        from flowship.quality.production import check_window

        ref = self.reference_data
        self.reports = check_window(
            self.current,
            self.reference,
            ref.schema,
            self.settings.monitor,
            ref.metrics,
            ref.metric,
            SCORE,
        )
        self.metrics = [ref.metric, *ref.schema.kind.metrics]  # the dashboard's, in order
        self.live, self.live_html = compare_window(
            self.window.frame, ref.schema, ref.metric, self.settings.gate, self.champion
        ) or (None, "")
        self.next(self.decide)

    @card(type="html")
    @step
    def decide(self):
        """Retrain, alarm or nothing, with reasons; the card shows it all."""
        from flowship.cards import render_monitor_card
        from flowship.monitoring import decide_retrain

        self.verdict = decide_retrain(self.reports, self.champion, self.window, live=self.live)
        self.verdict_json = self.verdict.to_json()
        self.html = render_monitor_card(self.verdict, self.reports, self.live_html)
        self.next(self.end)

    @step
    def end(self):
        """Keep the snapshots for the dashboard; say what was decided."""
        from flowship.monitoring import retrain_event_payload
        from flowship.quality.workspace import save_to_workspace

        save_to_workspace(
            self.settings.monitor.workspace, current.project_name, self.reports, self.metrics
        )
        payload = retrain_event_payload(self.verdict, f"{current.flow_name}/{current.run_id}")
        if payload:  # deployed on Argo: starts TrainFlow (@trigger); a no-op in local runs
            ArgoEvent(name=self.settings.scale.retrain_event).safe_publish(payload=payload)
        print(f"monitor verdict {self.verdict.id}: {self.verdict.status.upper()}")
        for line in [*self.verdict.reasons, *self.window.notes]:
            print(f"  - {line}")
        print("card: python -m flowship card --flow MonitorFlow --step decide")


if __name__ == "__main__":
    MonitorFlow()
