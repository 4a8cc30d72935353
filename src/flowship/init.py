"""`flowship init`: a config for a table, as a careful data scientist would write it.

It reads (a sample of) the table, decides each column's role with the reason
(`flowship.roles`), chooses the task and its metric, sizes a candidate grid to the table,
measures the cheapest candidate and the naive baseline with a seeded cross-validation, and
sets the gate between them. The result is a commented TOML file that trains as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from flowship.config import DataSettings, GateSettings
from flowship.errors import DataValidationError
from flowship.roles import FEATURE_ROLES, Decision, decide_roles, find_leaks
from flowship.tasks import METRICS, Task, choose_task

MAX_ROWS = 200_000  # larger tables are measured on a seeded sample of this many rows
RARE_CLASS_SHARE = 0.01
FOLDS = 3  # of the measurement's cross-validation (fewer when a class has fewer rows)


@dataclass(frozen=True)
class Measurement:
    """The cross-validated metric of the cheapest candidate and of the naive baseline."""

    metric: str
    model: float
    baseline: float
    folds: int

    @property
    def bound(self) -> float:
        """Halfway between the baseline and the model, rounded: a gate a working model
        passes and a broken one (no better than the baseline) does not."""
        return round(self.baseline + 0.5 * (self.model - self.baseline), 3)


@dataclass(frozen=True)
class ProjectPlan:
    """Everything the config is written from."""

    name: str
    source: str
    target: str
    task: Task
    task_reason: str
    rows: int
    decisions: list[Decision]
    id_column: str | None
    candidates: list[dict[str, Any]]
    measurement: Measurement
    min_rows: int
    min_class_share: float
    rarest_share: float = 1.0
    warnings: list[str] = field(default_factory=list)

    def features(self, role: str) -> list[str]:
        return [d.column for d in self.decisions if d.role == role]


def project_name(path: str) -> str:
    """A Metaflow project name from a file name (`Churn 2024.csv` → `churn_2024`)."""
    where = Path(path.split("?")[0])
    if any(ch in where.name for ch in "*?["):  # a glob: the folder names the table
        where = where.parent
    stem = where.name.split(".")[0] or "project"
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_") or "project"
    if not name[0].isalpha():
        name = f"t_{name}"
    return name[:128]


def plan_project(
    frame: pd.DataFrame, source: str, target: str, task: str = "auto", seed: int = 0
) -> ProjectPlan:
    """Decide the config of a table.

    Raises:
        DataValidationError: an empty table, a target that is not a column (the columns are
            listed), a target with one value, or no usable feature.
    """
    if frame.empty:
        raise DataValidationError(f"{source} has no rows: nothing to learn from")
    if target not in frame.columns:
        raise DataValidationError(
            f"--target {target!r} is not a column of {source}; its columns: {list(frame.columns)}"
        )
    whole, rows = frame, len(frame)
    # The task, the class shares and the id column are the whole table's (a column each): a
    # sample may miss a rare class or an id's repeats, and training reads every row.
    labels = whole[target].dropna()
    chosen, reason = choose_task(labels, task)
    shares = labels.value_counts(normalize=True) if chosen.classifies else pd.Series(dtype=float)
    if rows > MAX_ROWS:
        frame = _sample(whole, target, list(shares.index), seed)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    gate = GateSettings()
    decisions = decide_roles(frame, target, gate.max_missing_share)
    decisions = find_leaks(frame, target, decisions, chosen.classifies, seed)
    if not any(d.feature for d in decisions):
        raise DataValidationError(
            f"no usable feature in {source}: every column is the target, an id, a date, "
            "constant, mostly missing or a leak (see the roles above)"
        )
    ids = [d.column for d in decisions if d.role == "id"]
    id_column = ids[0] if ids and whole[ids[0]].is_unique else None
    measurement = measure(frame, target, decisions, chosen, seed)
    warnings = []
    min_class_share, rarest = gate.min_class_share, 1.0
    if chosen.classifies:
        rare = shares[shares < RARE_CLASS_SHARE]
        if len(rare):
            warnings.append(
                f"class(es) {list(rare.index)} are below {RARE_CLASS_SHARE:.0%} of the rows: "
                "models hardly learn them; collect more or merge them"
            )
        rarest = float(shares.min())
        min_class_share = min(gate.min_class_share, round(rarest * 0.5, 4))
    return ProjectPlan(
        name=project_name(source),
        source=source,
        target=target,
        task=chosen,
        task_reason=reason,
        rows=rows,
        decisions=decisions,
        id_column=id_column,
        candidates=candidate_grid(rows, chosen, has_text=any(d.role == "text" for d in decisions)),
        measurement=measurement,
        min_rows=max(1, min(gate.min_rows, rows // 2)),
        min_class_share=min_class_share,
        rarest_share=rarest,
        warnings=warnings,
    )


def _sample(frame: pd.DataFrame, target: str, classes: list[Any], seed: int) -> pd.DataFrame:
    """A seeded sample of `MAX_ROWS` rows in which each of `classes` keeps at least `FOLDS`
    rows (or all it has), so the measurement sees every class training will."""
    picked = pd.RangeIndex(len(frame)).to_series().sample(n=MAX_ROWS, random_state=seed)
    have = frame[target].iloc[picked].value_counts()
    short = [label for label in classes if have.get(label, 0) < FOLDS]
    if not short:
        return frame.iloc[picked]
    labels = frame[target].to_numpy()
    outside = np.ones(len(frame), dtype=bool)
    outside[picked] = False
    extra = [
        np.flatnonzero((labels == label) & outside)[: FOLDS - int(have.get(label, 0))]
        for label in short
    ]
    return frame.iloc[np.concatenate([picked.to_numpy(), *extra])]


def candidate_grid(rows: int, task: Task, has_text: bool) -> list[dict[str, Any]]:
    """Candidates sized to the table: a few grid points for small tables, fewer for big ones
    (training time grows with rows times grid points)."""
    linear = (
        {"name": "logreg", "estimator": "logistic_regression", "params": {"C": [0.1, 1.0, 10.0]}}
        if task.classifies
        else {"name": "ridge", "estimator": "ridge", "params": {"alpha": [0.1, 1.0, 10.0]}}
    )
    boosting: dict[str, Any] = {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {}}
    forest = {
        "name": "forest",
        "estimator": "random_forest",
        "params": {"n_estimators": [200], "min_samples_leaf": [2]},
    }
    if rows <= 5_000:  # a few thousand rows: a wider grid mostly chases noise
        linear["params"] = {"C": [0.1, 1.0]} if task.classifies else {"alpha": [0.1, 1.0]}
        return [linear, boosting] if has_text else [linear, boosting, forest]
    if rows <= 20_000:
        boosting["params"] = {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]}
        return [linear, boosting] if has_text else [linear, boosting, forest]
    linear["params"] = {"C": [1.0]} if task.classifies else {"alpha": [1.0]}
    if rows <= 500_000:
        boosting["params"] = {"learning_rate": [0.1], "max_leaf_nodes": [31, 63]}
        return [linear, boosting]
    return [linear, boosting]  # a million rows and more: one point each


def measure(
    frame: pd.DataFrame, target: str, decisions: list[Decision], task: Task, seed: int
) -> Measurement:
    """A seeded 3-fold cross-validation of the cheapest candidate (a linear model on the
    decided features, the pipeline TrainFlow would build) and of the naive baseline."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    from flowship.data import infer_schema, validate_dataset
    from flowship.train import CandidateSpec, build_pipeline, label_array

    settings = DataSettings(
        target=target,
        task=task.name,
        numeric_features=[d.column for d in decisions if d.role == "numeric"],
        categorical_features=[d.column for d in decisions if d.role == "categorical"],
        text_features=[d.column for d in decisions if d.role == "text"],
    )
    schema = infer_schema(frame, settings)
    clean = validate_dataset(frame, schema)
    X, y = clean[schema.features], label_array(clean[target])
    cheapest = "logistic_regression" if task.classifies else "ridge"
    model = build_pipeline(CandidateSpec(cheapest, cheapest, cheapest), schema, seed)
    baseline = DummyClassifier(strategy="prior") if task.classifies else DummyRegressor()
    counts = clean[target].value_counts()
    folds = int(min(FOLDS, counts.min())) if task.classifies else FOLDS
    if folds < 2:
        raise DataValidationError(
            f"class {counts.idxmin()!r} of {target!r} has one row: too few to measure (or train)"
        )
    split = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if task.classifies
        else KFold(folds, shuffle=True, random_state=seed)
    )
    metric = task.default_metric
    scorer = task.scorer(schema, metric)
    scores = {}
    for name, estimator in (("model", model), ("baseline", baseline)):
        fitted = cross_val_score(estimator, X, y, cv=split, scoring=scorer)
        scores[name] = METRICS[metric].score(float(np.mean(fitted)))  # back to the metric
    return Measurement(metric, scores["model"], scores["baseline"], folds)


def render_config(plan: ProjectPlan) -> str:
    """The plan as a commented TOML configuration."""
    m = plan.measurement
    direction = "minimum" if METRICS[m.metric].higher_is_better else "maximum"
    lines = [
        f"# flowship configuration for {plan.source}, written by `flowship init`.",
        "# Every decision below says why; change what you know better. Keys: README.md.",
        "",
        "[project]",
        f'name = "{plan.name}"  # from the file name: its own champion, apart from other projects',
        "",
        "[data]",
        f'source = "{plan.source}"',
        f'target = "{plan.target}"',
        f'task = "{plan.task.name}"  # {plan.task_reason}',
    ]
    if plan.id_column:
        lines.append(f'id_column = "{plan.id_column}"  # unique per row: deduplicates feedback')
    for role, key in (
        ("numeric", "numeric_features"),
        ("categorical", "categorical_features"),
        ("text", "text_features"),
    ):
        chosen = [d for d in plan.decisions if d.role == role]
        if not chosen:
            lines.append(f"{key} = []")
            continue
        lines.append(f"{key} = [")
        lines += [f'    "{d.column}",  # {d.reason}' for d in chosen]
        lines.append("]")
    leaks = [d for d in plan.decisions if d.role == "leak"]
    if leaks:
        lines.append("# Likely target leaks, left out on purpose (add one to a list above only if")
        lines.append("# it is known before the outcome, when the model is used):")
        lines += [f'#   "{d.column}",  # {d.reason}' for d in leaks]
    left_out = [
        d
        for d in plan.decisions
        if d.role not in ("leak", *FEATURE_ROLES) and d.column != plan.id_column
    ]
    if left_out:
        lines.append("# Left out (add one to a list above to use it anyway):")
        lines += [f'#   "{d.column}",  # {d.role}: {d.reason}' for d in left_out]
    lines += [
        "",
        "[training]",
        f'metric = "{m.metric}"  # the {plan.task.name} default',
        "seed = 42",
    ]
    for candidate in plan.candidates:
        lines += [
            "",
            "[[training.candidates]]",
            f'name = "{candidate["name"]}"',
            f'estimator = "{candidate["estimator"]}"',
            f"params = {_inline(candidate['params'])}",
        ]
    lines += [
        "",
        "[gate]",
        f"min_rows = {plan.min_rows}  # the table has {plan.rows:,} rows",
        f"min_metrics = {{ {m.metric} = {m.bound} }}  # {direction}, halfway between the "
        f"{plan.task.baseline_name} baseline ({m.baseline:.3f}) and a cross-validated "
        f"{'logistic regression' if plan.task.classifies else 'ridge'} ({m.model:.3f}), "
        f"{m.folds} folds",
    ]
    if plan.task.classifies:
        lines.append(
            f"min_class_share = {plan.min_class_share}  # below the rarest class's share "
            f"({plan.rarest_share:.1%}): this table passes"
        )
    lines += [f"# warning: {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _inline(params: dict[str, Any]) -> str:
    if not params:
        return "{}"
    items = ", ".join(
        f"{k} = [{', '.join(_toml(v) for v in values)}]" for k, values in params.items()
    )
    return "{ " + items + " }"


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
