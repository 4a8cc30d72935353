"""The kinds of task, declared once: what each asks of the rest of the loop.

A `Task` owns its metrics and their directions, its default metric and gate minimums, how a
table is split, what a model outputs (class probabilities or values), the naive baseline, the
output columns of prediction tables and of the prediction log, the score the monitor watches
for drift, and the shape Evidently reads its predictions in. Call sites ask the task
(`task.split(...)`, `METRICS[name].higher_is_better`); nothing else branches on the task.

Imported by the configuration and by the service: NumPy, pandas and scikit-learn are imported
inside the methods that use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flowship.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from flowship.schema import Schema

TaskName = Literal["binary", "multiclass", "regression"]
TASK_NAMES: tuple[TaskName, ...] = ("binary", "multiclass", "regression")
# A numeric target with more distinct values than this is a regression target under "auto".
AUTO_MAX_CLASSES = 20


@dataclass(frozen=True)
class Metric:
    """One holdout metric."""

    name: str
    higher_is_better: bool
    evidently: str  # the Evidently metric class (evidently.metrics.<name>) that gates it
    tasks: frozenset[str]
    ranks: bool = True  # may be `[training] metric`, the one candidates are ranked by
    tests_arg: str = "tests"  # Evidently's keyword for the metric's tests (mean/std metrics differ)

    def score(self, value: float) -> float:
        """The value turned so that higher is always better."""
        return value if self.higher_is_better else -value

    def floor(self, reference: float, margin: float) -> float:
        """The worst acceptable value `margin` away from `reference` in the bad direction."""
        return reference - margin if self.higher_is_better else reference + margin


_CLASSIFICATION = frozenset({"binary", "multiclass"})
_REGRESSION = frozenset({"regression"})
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("roc_auc", True, "RocAuc", _CLASSIFICATION),
        Metric("f1", True, "F1Score", _CLASSIFICATION),
        Metric("accuracy", True, "Accuracy", _CLASSIFICATION),
        Metric("log_loss", False, "LogLoss", _CLASSIFICATION),
        Metric("precision", True, "Precision", _CLASSIFICATION, ranks=False),
        Metric("recall", True, "Recall", _CLASSIFICATION, ranks=False),
        Metric("rmse", False, "RMSE", _REGRESSION),
        Metric("mae", False, "MAE", _REGRESSION, tests_arg="mean_tests"),
        Metric("r2", True, "R2Score", _REGRESSION),
        Metric("mape", False, "MAPE", _REGRESSION, tests_arg="mean_tests"),
    )
}
RANKING_METRICS = tuple(name for name, m in METRICS.items() if m.ranks)


def get_metric(name: str) -> Metric:
    """The metric called `name`.

    Raises:
        ValueError: no such metric (the message lists the known ones).
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}") from None


@dataclass(frozen=True)
class EvidentlyView:
    """How Evidently reads a model's outputs: the scored frame's column kinds and the task's
    data definition (`evidently.<kind>(**arguments)` in the definition's `<slot>` list)."""

    numerical: list[str]
    categorical: list[str]
    slot: str  # "classification" or "regression"
    kind: str  # "BinaryClassification", "MulticlassClassification" or "Regression"
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Task:
    """One kind of task."""

    name: TaskName
    default_metric: str
    default_min_metrics: Mapping[str, float]
    classifies: bool  # the model predicts classes (with probabilities)
    baseline_name: str  # what the naive baseline predicts ("majority", "mean"), for the card
    target_checks: tuple[str, ...]  # the data-quality checks of the target (`flowship.checks`)
    _compute: Callable[..., dict[str, float]] = field(repr=False)

    @property
    def metrics(self) -> list[str]:
        """The metric names this task computes, in the table's order."""
        return [name for name, m in METRICS.items() if self.name in m.tasks]

    @property
    def ranking_metrics(self) -> list[str]:
        return [name for name in self.metrics if METRICS[name].ranks]

    def check_metrics(self, metric: str | None, bounds: Mapping[str, float] | None) -> None:
        """Refuse a configured metric or gate bound that this task does not compute.

        Raises:
            ConfigError: naming the key, the task and what is allowed.
        """
        if metric is not None and metric not in self.ranking_metrics:
            raise ConfigError(
                f"'training.metric' {metric!r} is not a metric for a {self.name} task; "
                f"allowed: {', '.join(self.ranking_metrics)} (or leave it out: "
                f"{self.default_metric})"
            )
        wrong = sorted(set(bounds or {}) - set(self.metrics))
        if wrong:
            raise ConfigError(
                f"'gate.min_metrics' has {wrong}, which a {self.name} task does not compute; "
                f"allowed: {', '.join(self.metrics)}"
            )

    # --- splitting and outputs

    def split(
        self, frame: pd.DataFrame, target: str, size: float, seed: int
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A seeded split into (rest, part of `size`), keeping the index: stratified by class
        when classifying.

        Raises:
            DataValidationError: a class is too rare to appear on both sides.
        """
        from sklearn.model_selection import train_test_split

        stratify = None
        if self.classifies:
            counts = frame[target].value_counts()
            classes = len(counts)
            if (
                (counts < 2).any()
                or len(frame) * size < classes
                or len(frame) * (1 - size) < classes
            ):
                raise DataValidationError(
                    f"cannot split {len(frame)} rows with classes {counts.to_dict()} at "
                    f"test_size={size}: every class needs at least 2 rows, and the training "
                    "part and the holdout one row per class each"
                )
            stratify = frame[target]
        elif len(frame) * size < 1 or len(frame) * (1 - size) < 2:
            raise DataValidationError(
                f"cannot split {len(frame)} rows at test_size={size}: too few rows"
            )
        rest, part = train_test_split(frame, test_size=size, random_state=seed, stratify=stratify)
        return rest, part

    def outputs(self, predictor: Any, features: Any) -> np.ndarray:
        """The model's outputs: class probabilities (rows × classes) or values (rows)."""
        import numpy as np

        if self.classifies:
            return np.asarray(predictor.predict_proba(features), dtype=float)
        return np.asarray(predictor.predict(features), dtype=float).reshape(-1)

    def output_columns(self, schema: Schema) -> list[str]:
        """The columns holding the outputs in prediction tables and the prediction log."""
        return schema.proba_columns if self.classifies else ["prediction"]

    def outputs_from(self, frame: pd.DataFrame, schema: Schema) -> np.ndarray:
        """Outputs read back from a prediction table (the inverse of `prediction_table`)."""
        values = frame[self.output_columns(schema)].to_numpy(dtype=float)
        return values if self.classifies else values.reshape(-1)

    def predicted(self, outputs: np.ndarray, schema: Schema) -> list[Any]:
        """The prediction of each row: the most probable class, or the value."""
        import numpy as np

        if self.classifies:
            return np.asarray(schema.classes, dtype=object)[outputs.argmax(axis=1)].tolist()
        return [float(v) for v in outputs]

    def prediction_table(self, outputs: np.ndarray, schema: Schema) -> pd.DataFrame:
        """`prediction` and, when classifying, one `proba_<class>` column per class."""
        import pandas as pd

        if not self.classifies:
            return pd.DataFrame({"prediction": outputs.astype(float)})
        table = pd.DataFrame(outputs, columns=schema.proba_columns)
        table.insert(0, "prediction", self.predicted(outputs, schema))
        return table

    def watched_score(self, frame: pd.DataFrame, schema: Schema) -> pd.Series:
        """The score whose drift the monitor watches: P(positive) for binary, P(predicted
        class) for multiclass, the predicted value for regression."""
        from flowship.schema import proba_column

        if not self.classifies:
            return frame["prediction"].astype(float)
        if self.name == "binary":
            return frame[proba_column(schema.positive)].astype(float)
        return frame[schema.proba_columns].astype(float).max(axis=1)

    @property
    def explained_output(self) -> str:
        """What an explanation of a row explains, in words (cards, docs)."""
        if not self.classifies:
            return "the predicted value"
        if self.name == "binary":
            return "the probability of the positive class"
        return "the probability of the predicted class"

    def explained_outputs(self, outputs: np.ndarray, schema: Schema) -> np.ndarray | None:
        """Which output column an explanation of each row explains: the positive class
        (binary), the predicted class (multiclass); None for regression (the value)."""
        import numpy as np

        if not self.classifies:
            return None
        if self.name == "binary":
            return np.full(len(outputs), list(schema.classes).index(schema.positive))
        return np.asarray(outputs.argmax(axis=1))

    def labels_from(self, values: pd.Series, schema: Schema) -> pd.Series:
        """True labels read back from feedback files (text, floats) as the model's classes,
        or as numbers; what cannot be read becomes missing."""
        import pandas as pd

        if self.classifies:
            return values.map(schema.label_mapping())
        return pd.to_numeric(values, errors="coerce").astype("float64")

    # --- metrics and the baseline

    def compute_metrics(self, y_true: Any, outputs: np.ndarray, schema: Schema) -> dict[str, float]:
        """Every metric of the task on true labels / values and the model's outputs."""
        return self._compute(y_true, outputs, schema)

    def compute_metric(self, name: str, y_true: Any, outputs: np.ndarray, schema: Schema) -> float:
        """One metric of the task (cheaper than all of them, for resampling)."""
        return self._compute(y_true, outputs, schema, name)[name]

    def baseline_outputs(self, y_train: pd.Series, rows: int, schema: Schema) -> np.ndarray:
        """What the naive baseline outputs for `rows` rows: the training priors of every
        class (majority class), or the training mean."""
        import numpy as np

        if self.classifies:
            priors = y_train.value_counts(normalize=True)
            row = np.array([priors.get(c, 0.0) for c in schema.classes])
            return np.tile(np.clip(row, 1e-6, 1.0), (rows, 1))
        return np.full(rows, float(np.mean(y_train.to_numpy(dtype=float))))

    def scorer(self, schema: Schema, metric: str) -> Callable[[Any, Any, Any], float]:
        """A scikit-learn scorer (`scorer(model, X, y)`, higher is better) for `metric`."""
        direction = METRICS[metric]

        def score(model: Any, features: Any, y_true: Any) -> float:
            values = self.compute_metrics(y_true, self.outputs(model, features), schema)
            return direction.score(values[metric])

        return score

    # --- Evidently's view of the outputs

    def evidently_frame(
        self, y_true: Any, outputs: np.ndarray, schema: Schema
    ) -> tuple[pd.DataFrame, EvidentlyView]:
        """A frame of target and predictions in the form Evidently reads for this task.

        Binary targets become 1 (positive) / 0 so string labels work; multiclass labels become
        strings with one probability column per class named like the class. The predicted
        label is the argmax, as Evidently derives labels from probabilities anyway.
        """
        import numpy as np
        import pandas as pd

        y = np.asarray(y_true)
        if not self.classifies:
            frame = pd.DataFrame({"target": y.astype(float), "prediction": outputs.astype(float)})
            view = EvidentlyView(
                ["target", "prediction"],
                [],
                "regression",
                "Regression",
                {"target": "target", "prediction": "prediction"},
            )
            return frame, view
        classes = list(schema.classes)
        if self.name == "binary":
            pos = classes.index(schema.positive)
            frame = pd.DataFrame(
                {
                    "target": (y == schema.positive).astype(int),
                    "prediction": (outputs.argmax(axis=1) == pos).astype(int),
                    "proba": outputs[:, pos],
                }
            )
            arguments = {
                "target": "target",
                "prediction_labels": "prediction",
                "prediction_probas": "proba",
                "pos_label": 1,
            }
            view = EvidentlyView(
                ["proba"],
                ["target", "prediction"],
                "classification",
                "BinaryClassification",
                arguments,
            )
            return frame, view
        names = [str(c) for c in classes]
        frame = pd.DataFrame(outputs, columns=names)
        frame.insert(0, "target", [str(v) for v in y])
        frame.insert(1, "prediction", np.asarray(names, dtype=object)[outputs.argmax(axis=1)])
        arguments = {
            "target": "target",
            "prediction_labels": "prediction",
            "prediction_probas": names,
        }
        view = EvidentlyView(
            names, ["target", "prediction"], "classification", "MulticlassClassification", arguments
        )
        return frame, view


def _classification_metrics(
    y_true: Any, outputs: np.ndarray, schema: Schema, only: str | None = None
) -> dict[str, float]:
    from flowship.evaluate import compute_metrics

    return compute_metrics(y_true, outputs, schema.classes, schema.positive_class, only)


def _regression_metrics(
    y_true: Any, outputs: np.ndarray, schema: Schema, only: str | None = None
) -> dict[str, float]:
    from flowship.evaluate import compute_regression_metrics

    return compute_regression_metrics(y_true, outputs, only)


_CLASS_CHECKS = ("data.target_classes", "data.class_share")
_ROC = {"roc_auc": 0.75}
_MAJORITY, _MEAN = "majority", "mean"  # the naive baseline: the majority class, the mean
TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("binary", "roc_auc", _ROC, True, _MAJORITY, _CLASS_CHECKS, _classification_metrics),
        Task("multiclass", "f1", _ROC, True, _MAJORITY, _CLASS_CHECKS, _classification_metrics),
        Task(
            "regression",
            "rmse",
            {"r2": 0.0},
            False,
            _MEAN,
            ("data.target_varies",),
            _regression_metrics,
        ),
    )
}


def get_task(name: str) -> Task:
    """The task called `name`."""
    return TASKS[name]


def choose_task(target: pd.Series, configured: str) -> tuple[Task, str]:
    """The task for a target column, and why it was chosen.

    `auto`: a numeric target with more than `AUTO_MAX_CLASSES` distinct values, or with any
    non-integer value, is regression; otherwise two classes are binary and more multiclass.

    Raises:
        DataValidationError: the target cannot be used for the configured task (one value;
            text for regression; more than two classes for binary).
    """
    import pandas as pd

    values = target.dropna()
    distinct = int(values.nunique())
    numeric = pd.api.types.is_numeric_dtype(target.dtype) and not pd.api.types.is_bool_dtype(
        target.dtype
    )
    if distinct == 0:
        raise DataValidationError(f"target column '{target.name}' has no values; fill it in")
    if distinct == 1:
        first = values.iloc[0]
        shown = repr(first.item() if hasattr(first, "item") else first)
        if configured == "regression":
            raise DataValidationError(
                f"target column '{target.name}' has one value ({shown}): nothing to learn"
            )
        raise DataValidationError(
            f"target column '{target.name}' has one class ({shown}); a classifier needs at "
            "least two"
        )
    fractional = numeric and bool((values.astype(float) % 1 != 0).any())
    if configured == "auto":
        if numeric and (fractional or distinct > AUTO_MAX_CLASSES):
            why = "non-integer values" if fractional else f"{distinct} distinct numbers"
            return TASKS["regression"], f"auto: numeric target with {why} → regression"
        name = "binary" if distinct == 2 else "multiclass"
        what = "numbers" if numeric else "labels"
        return TASKS[name], f"auto: {distinct} distinct {what} → {name} classification"
    if configured == "regression" and not numeric:
        example = repr(str(values.iloc[0]))
        raise DataValidationError(
            f"target column '{target.name}' holds text (e.g. {example}); a regression target "
            "must be numeric: clean the column or set [data] task to binary or multiclass"
        )
    if configured == "binary" and distinct != 2:
        raise DataValidationError(
            f"target column '{target.name}' has {distinct} classes; [data] task = \"binary\" "
            'needs exactly two (use "multiclass" or "auto")'
        )
    if configured in ("binary", "multiclass") and fractional:
        raise DataValidationError(
            f"target column '{target.name}' has non-integer numbers; a classification target "
            'needs labels: set [data] task = "regression" or "auto"'
        )
    return TASKS[configured], f'[data] task = "{configured}"'
