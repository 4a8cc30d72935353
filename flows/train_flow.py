"""TrainFlow: train candidate models in parallel on the configured table and keep the best.

Usage:
    python flows/train_flow.py run
    python flows/train_flow.py --config config path/to/other.toml run --max-workers 4
    python flows/train_flow.py card view evaluate
"""

from pathlib import Path

from metaflow import Config, FlowSpec, card, config_expr, current, project, step

import flowship  # noqa: F401  (ships the library with the flow's code package)
from flowship.cards import training_card
from flowship.config import load_settings
from flowship.data import load_training_data, split_dataset
from flowship.lineage import collect_lineage
from flowship.train import assess_model, expand_candidates, fit_candidate, select_best


@project(name=config_expr("config.project.name"))
class TrainFlow(FlowSpec):
    """Load → split → train every candidate in parallel → select → evaluate on the holdout."""

    config = Config(
        "config",
        default="config/project.toml",
        parser="flowship.config.parse_config",
        help="The project's TOML configuration (data, features, candidates, gate, monitor).",
    )

    @step
    def start(self):
        """Validate the configuration, record lineage, expand the candidate grids."""
        self.settings = load_settings(self.config)
        self.lineage = collect_lineage(Path(__file__).parent, self.settings.fingerprint())
        self.candidates = expand_candidates(self.settings.training)
        self.next(self.load)

    @step
    def load(self):
        """Read the table, check it against the config, fingerprint it."""
        loaded = load_training_data(self.settings.data)
        self.data, self.schema, self.data_fingerprint = (
            loaded.frame,
            loaded.schema,
            loaded.fingerprint,
        )
        self.next(self.split)

    @step
    def split(self):
        """Stratified, seeded split into training part and holdout."""
        data = self.settings.data
        self.train_data, self.holdout = split_dataset(
            self.data, self.schema, data.test_size, data.split_seed
        )
        self.data = None  # the load step keeps the full table; later steps carry the two parts
        self.next(self.train, foreach="candidates")

    @step
    def train(self):
        """Fit one candidate and score it on a validation split of the training part."""
        self.result = fit_candidate(
            self.input,
            self.train_data,
            self.schema,
            self.settings.training,
            parallel_tasks=len(self.candidates),
        )
        self.next(self.select)

    @step
    def select(self, inputs):
        """Rank the candidates and refit the best on the whole training part."""
        # pydantic objects re-pickle with another byte order in each branch: take one copy
        self.settings, self.schema = inputs[0].settings, inputs[0].schema
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

    @card
    @step
    def evaluate(self):
        """Holdout metrics vs a majority baseline, permutation importances, the card."""
        a = assess_model(
            self.model, self.train_data, self.holdout, self.schema, self.settings.training
        )
        self.metrics, self.baseline_metrics = a.metrics, a.baseline_metrics
        self.importances, self.holdout_predictions = a.importances, a.predictions
        current.card.extend(
            training_card(
                best_name=self.best_candidate,
                metric=self.settings.training.metric,
                leaderboard=self.leaderboard,
                metrics=self.metrics,
                baseline_metrics=self.baseline_metrics,
                importances=self.importances,
                schema=self.schema,
                fingerprint=self.data_fingerprint,
                lineage=self.lineage,
                rows=(len(self.train_data), len(self.holdout)),
            )
        )
        self.next(self.end)

    @step
    def end(self):
        """Say where to look."""
        print(f"chosen {self.best_candidate}: {self.metrics}")
        print(f"card: python flows/train_flow.py card view evaluate  (run {current.pathspec})")


if __name__ == "__main__":
    TrainFlow()
