"""ScoreFlow: score a table of any size with the champion, exactly as the service answers.

Usage:
    python flows/score_flow.py run --input data/customers.parquet --output scores/today
    python flows/score_flow.py run --input 'data/part-*.csv' --output s3://bucket/scores/{date}
    python flows/score_flow.py run --input data/x.parquet --output scores/x --model TrainFlow/17
    python flows/score_flow.py run --input data/x.parquet --output scores/x --overwrite True
    python flows/score_flow.py run --input data/x.parquet --output scores/x --log-predictions True
    python flows/score_flow.py resume --origin-run-id <failed run id>
    python flows/score_flow.py card view join
"""

from metaflow import FlowSpec, Parameter, card, config_expr, current, project, schedule, step

import flowship  # noqa: F401  (ships the library with the flow's code package)
from flowship.wiring import project_config, step_resources

# The library is imported in the steps that use it (every task and card render imports this
# file). On Kubernetes / Argo Workflows each shard is a pod sized by [scale] score_steps.
SCORE_STEP = step_resources("score_steps")


@project(name=config_expr("config.project.name"))
@schedule(cron=config_expr("config.scale.score_schedule"), daily=False)
class ScoreFlow(FlowSpec):
    """Model and input checked → shards → score each shard in parallel → publish whole."""

    config = project_config()
    source = Parameter(
        "input", default="", help="CSV/Parquet file, glob or s3:// URL (default: [score] input)."
    )
    output = Parameter(
        "output",
        default="",
        help="Folder or s3:// prefix for the Parquet output; {date} and {run_id} are filled in "
        "(default: [score] output).",
    )
    model = Parameter(
        "model", default="", help="TrainFlow/<id> whose gate passed (default: the champion)."
    )
    overwrite = Parameter(
        "overwrite", type=bool, default=False, help="Replace an existing output when done."
    )
    log_predictions = Parameter(
        "log-predictions",
        type=bool,
        default=False,
        help="Also write the predictions to the prediction log, for MonitorFlow.",
    )
    log_dir = Parameter(
        "log-dir", default="", help="Prediction log folder (default: [serving] prediction_log_dir)."
    )

    @step
    def start(self):
        """The model (champion or --model, gate passed), the output free, the input's files
        with the model's columns."""
        from flowship.config import load_settings
        from flowship.score import describe_input, prepare_output, resolve_model

        self.settings = s = load_settings(self.config)
        self.scoring_run = f"{current.flow_name}/{current.run_id}"
        self.scoring = resolve_model(self.model, current.project_name, current.branch_name)
        log_dir = (self.log_dir or s.serving.prediction_log_dir) if self.log_predictions else None
        self.target = prepare_output(
            self.output or s.score.output,
            current.run_id,
            self.overwrite,
            log_dir,
            s.serving.max_rows,
        )
        self.source_table = describe_input(self.source or s.score.input, self.scoring.schema)
        self.next(self.plan)

    @step
    def plan(self):
        """Cut the input into shards of [score] shard_rows rows, in order."""
        from flowship.score import plan_shards

        self.shards = plan_shards(self.source_table, self.settings.score.shard_rows)
        self.next(self.score, foreach="shards")

    @SCORE_STEP
    @step
    def score(self):
        """Read the shard's rows, predict them as the service does, stage one Parquet part."""
        from flowship.score import score_shard

        self.result = score_shard(
            self.input,
            self.scoring,
            self.source_table,
            self.target,
            self.settings.serving,
            self.settings.score,
            self.scoring_run,
        )
        self.next(self.join)

    @card
    @step
    def join(self, inputs):
        """Every row accounted for once, then the output published whole; the card."""
        from flowship.cards import score_card
        from flowship.score import publish_scores

        first = inputs[0]
        self.summary = publish_scores(
            first.source_table,
            first.shards,
            [i.result for i in inputs],
            first.scoring,
            first.target,
            first.settings.score,
            f"{current.flow_name}/{current.run_id}",
            resumed_from=current.origin_run_id,
        )
        current.card.extend(score_card(self.summary))
        self.next(self.end)

    @step
    def end(self):
        """Say what was scored and where it went."""
        for line in self.summary.lines():
            print(line)
        print("card: python -m flowship card --flow ScoreFlow --step join")


if __name__ == "__main__":
    ScoreFlow()
