"""TrainFlow: train candidates in parallel, gate the best with Evidently, promote the champion.

Usage:
    python flows/train_flow.py run
    python flows/train_flow.py --config config path/to/other.toml run --max-workers 4
    python flows/train_flow.py run --dry-run True
    python flows/train_flow.py run --force-promote True --reason "hotfix approved by J. Doe"
    python flows/train_flow.py run --accept-new-contract True --reason "target now weekly"
    python flows/train_flow.py run --with-feedback True
    python flows/train_flow.py --production run
    python flows/train_flow.py card view evaluate
"""

from pathlib import Path

from metaflow import (
    FlowSpec,
    Parameter,
    card,
    config_expr,
    current,
    project,
    schedule,
    step,
    trigger,
)

import flowship  # noqa: F401  (ships the library with the flow's code package)
from flowship.wiring import project_config, step_resources

# The library is imported in the steps that use it: every task, and every card render, imports
# this file, and most of them need neither scikit-learn nor Evidently.

# On Kubernetes / Argo Workflows ([scale] of the config; local runs ignore them):
DATA_STEP = step_resources("data_steps")
CANDIDATE_STEP = step_resources("candidate_steps")


@project(name=config_expr("config.project.name"))
@schedule(cron=config_expr("config.scale.train_schedule"), daily=False)
@trigger(
    event={
        "name": config_expr("config.scale.retrain_event"),  # published by MonitorFlow on RETRAIN
        "parameters": {"with-feedback": "with_feedback"},
    }
)
class TrainFlow(FlowSpec):
    """Load and split → train every candidate in parallel → select → evaluate → gate → promote."""

    config = project_config()
    dry_run = Parameter(
        "dry-run", type=bool, default=False, help="Compute the verdict but never promote."
    )
    force_promote = Parameter(
        "force-promote",
        type=bool,
        default=False,
        help="Promote despite failing checks (audited; needs --reason).",
    )
    accept_new_contract = Parameter(
        "accept-new-contract",
        type=bool,
        default=False,
        help="Promote a model whose contract differs from the champion's (audited; --reason).",
    )
    reason = Parameter(
        "reason",
        default="",
        help="Why --force-promote or --accept-new-contract is needed (recorded).",
    )
    with_feedback = Parameter(
        "with-feedback",
        type=bool,
        default=False,
        help="Add the labelled production rows (prediction log + feedback) to the data.",
    )

    @step
    def start(self):
        """Validate the config and any override, record lineage, find the champion to beat."""
        from flowship.config import load_settings
        from flowship.gate import check_override
        from flowship.lineage import collect_lineage
        from flowship.registry import find_champion
        from flowship.train import precheck_candidates

        self.settings = load_settings(self.config)
        self.mode = check_override(
            self.settings.gate,
            self.dry_run,
            self.force_promote,
            self.reason,
            self.accept_new_contract,
        )
        precheck_candidates(self.settings)
        self.run_pathspec = f"{current.flow_name}/{current.run_id}"
        self.lineage = collect_lineage(Path(__file__).parent, self.settings.fingerprint())
        champion = find_champion(current.project_name, current.branch_name, current.flow_name)
        self.champion_before = champion.pathspec if champion else None
        self.next(self.load)

    @DATA_STEP
    @step
    def load(self):
        """Read the table, choose the task, check the table and the candidates against the
        config, fingerprint it, check its quality, and split it (seeded; stratified when
        classifying) into the training part and the holdout."""
        from flowship.data import load_training_data, split_dataset
        from flowship.lineage import lineage_tags
        from flowship.monitoring import labelled_production_rows
        from flowship.quality.release import check_training_data
        from flowship.registry import load_champion, record_tags
        from flowship.train import plan_candidates

        s = self.settings
        extra = None
        if self.with_feedback:
            champion = load_champion(self.champion_before)
            extra = labelled_production_rows(
                s.serving.prediction_log_dir,
                s.monitor.feedback_dir,
                s.data,
                champion.schema if champion else None,
            )
        self.feedback_rows = 0 if extra is None else len(extra)
        loaded = load_training_data(s.data, s.gate.max_missing_share, extra=extra)
        self.schema, self.data_fingerprint = loaded.schema, loaded.fingerprint
        self.dropped_rows = loaded.dropped_rows
        self.candidates = plan_candidates(s, self.schema.task)
        self.settings = s.for_task(self.schema.task)
        self.data_quality = check_training_data(loaded.frame, self.schema, self.settings.gate)
        # Only the two parts are stored: the whole table again would double what every later
        # step's artifacts hold (1M rows: ~1.5 s to store, and a task of its own to split it).
        data = self.settings.data
        self.train_data, self.holdout = split_dataset(
            loaded.frame,
            self.schema,
            data.test_size,
            data.split_seed,
            self.settings.training.validation_size,
        )
        record_tags(self.run_pathspec, lineage_tags(self.lineage, self.data_fingerprint))
        self.next(self.train, foreach="candidates")

    @CANDIDATE_STEP
    @step
    def train(self):
        """Fit one candidate and score it on a validation split of the training part."""
        from flowship.train import fit_candidate

        self.result = fit_candidate(
            self.input,
            self.train_data,
            self.schema,
            self.settings.training,
            parallel_tasks=len(self.candidates),
        )
        self.next(self.select)

    @DATA_STEP
    @step
    def select(self, inputs):
        """Rank the candidates and refit the best on the whole training part."""
        from flowship.train import select_best

        # pydantic objects re-pickle with another byte order in each branch: take one copy
        self.settings, self.schema = inputs[0].settings, inputs[0].schema
        self.data_quality = inputs[0].data_quality
        self.merge_artifacts(inputs, exclude=["result"])
        selection = select_best(
            [i.result for i in inputs], self.train_data, self.schema, self.settings.training
        )
        self.model, self.leaderboard, self.best_candidate = (
            selection.model,
            selection.leaderboard,
            selection.best.spec.name,
        )
        self.next(self.evaluate)

    @DATA_STEP
    @card
    @step
    def evaluate(self):
        """Holdout metrics, importances, mean |SHAP| and predict latency (card), then Evidently
        checks against the champion."""
        from flowship.cards import training_card
        from flowship.explain import background_sample
        from flowship.quality.release import release_checks
        from flowship.registry import load_champion
        from flowship.train import assess_model

        s = self.settings
        # the training rows explanations are measured against (the Bento serves them too)
        self.explain_background = background_sample(
            self.train_data, self.schema, s.serving.explain_background_rows, s.training.seed
        )
        a = assess_model(
            self.model,
            self.train_data,
            self.holdout,
            self.schema,
            s.training,
            background=self.explain_background,
            max_evals=s.serving.explain_max_evals,
            latency_calls=s.gate.latency_calls,
        )
        self.metrics, self.baseline_metrics = a.metrics, a.baseline_metrics
        self.importances, self.holdout_predictions = a.importances, a.predictions
        self.explanation, self.latency = a.explanation, a.latency
        current.card.extend(training_card(self, rows=(len(self.train_data), len(self.holdout))))
        self.release_reports = release_checks(
            self.model,
            self.train_data,
            self.holdout,
            self.schema,
            self.settings.gate,
            self.settings.training.metric,
            champion=load_champion(self.champion_before),
            guard_with_champion_holdout=self.with_feedback,
        )
        self.next(self.gate)

    @DATA_STEP
    @card(type="html")
    @step
    def gate(self):
        """Decide promotion from every check; the card shows the verdict and the reports."""
        from flowship.cards import render_gate_card
        from flowship.checks import all_checks
        from flowship.evaluate import latency_report
        from flowship.gate import decide_promotion

        latency = latency_report(self.latency, self.settings.gate)
        reports = [self.data_quality, *self.release_reports, latency]
        self.verdict = decide_promotion(
            all_checks(reports),
            mode=self.mode,
            champion=self.champion_before,
            challenger=self.run_pathspec,
            force=self.force_promote,
            accept_contract=self.accept_new_contract,
            force_reason=self.reason,
            user=current.username,
        )
        self.verdict_json = self.verdict.to_json()
        self.reports_html = {r.title: r.html for r in reports if r.html}
        self.html = render_gate_card(self.verdict, reports, self.lineage)
        self.next(self.promote)

    @step
    def promote(self):
        """Tag the verdict on the run; make it the champion only when the verdict promotes."""
        from flowship.registry import apply_verdict

        self.replaced = apply_verdict(
            self.run_pathspec, self.verdict, current.project_name, current.branch_name
        )
        self.promoted = self.verdict.promote
        self.next(self.end)

    @step
    def end(self):
        """Say what happened and where to look."""
        metric = self.settings.training.metric
        print(f"chosen {self.best_candidate}; holdout {metric}: {self.metrics[metric]:.4f}")
        print(f"verdict {self.verdict.id}: {self.verdict.decision}")
        for line in self.verdict.reasons:
            print(f"  - {line}")
        print("gate card: python -m flowship card --step gate   (writes reports/gate_card.html)")


if __name__ == "__main__":
    TrainFlow()
