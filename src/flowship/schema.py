"""The model's contract: task, target, classes and features by kind, as every layer needs them.

Stored with every model and read by the service at start-up, so it imports neither
scikit-learn nor pandas: only pydantic and NumPy's scalar types.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from flowship.tasks import Task, TaskName, get_task

Label = str | int | bool
PROBA_PREFIX = "proba_"
MISSING = "__missing__"  # the category a missing value is encoded as


def proba_column(label: Label) -> str:
    """The column (in prediction tables and the prediction log) of one class's probability."""
    return f"{PROBA_PREFIX}{label}"


def native_label(value: Any) -> Label:
    """A label as a plain Python value: NumPy scalars unwrapped, 1.0 as 1, anything else text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool | int | str):
        return value
    return str(value)


def category_text(value: Any) -> str:
    """A category value as text, the same wherever it comes from: 5, 5.0 and "5" are "5"
    (a rating sent as a JSON number matches the one trained from a CSV), True is "True"."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Schema(BaseModel):
    """What a model needs to know about its input table, stored with every model."""

    model_config = ConfigDict(frozen=True)

    task: TaskName
    target: str
    numeric: list[str]
    categorical: list[str]
    classes: list[Label]  # empty for regression
    categories: dict[str, list[str]]
    numeric_ranges: dict[str, tuple[float, float]]
    # None is left out where metadata drops empty values (BentoML's model metadata does)
    id_column: str | None = None
    positive_class: Label | None = None
    task_reason: str = ""  # how the task was chosen (`[data] task`, or what `auto` saw)
    text: list[str] = []  # free-text features (TF-IDF)
    text_lengths: dict[str, tuple[int, int]] = {}  # characters, as seen in training

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.text]

    @property
    def kind(self) -> Task:
        """The task object: metrics, split, outputs, baseline."""
        return get_task(self.task)

    def contract(self) -> dict[str, Any]:
        """What a model promises its callers and the runs after it: task, target, classes
        and every feature with its kind. Another run may replace it only with the same
        contract, unless the change is accepted (`--accept-new-contract`)."""
        kinds = (("numeric", self.numeric), ("categorical", self.categorical), ("text", self.text))
        features = {c: kind for kind, columns in kinds for c in columns}
        return {
            "task": self.task,
            "target": self.target,
            "classes": [str(c) for c in self.classes],
            "features": features,
        }

    @property
    def proba_columns(self) -> list[str]:
        """One probability column per class, in the order of `classes`."""
        return [proba_column(c) for c in self.classes]

    @property
    def positive(self) -> Label:
        """The positive class of a binary target (the last class unless configured)."""
        return self.positive_class if self.positive_class is not None else self.classes[-1]

    def label_mapping(self) -> dict[Any, Label]:
        """Labels as they come back from CSV feedback (text, floats) mapped to the classes."""
        mapping: dict[Any, Label] = {}
        for c in self.classes:
            mapping[c] = c
            mapping[str(c)] = c
            if isinstance(c, int | bool):
                mapping[float(c)] = c
        return mapping


def contract_changes(old: Schema, new: Schema) -> list[str]:
    """What changed between two contracts, one line per change; empty when they are equal."""
    before, after = old.contract(), new.contract()
    changes = []
    if before["task"] != after["task"]:
        changes.append(f"task {before['task']} → {after['task']}")
    if before["target"] != after["target"]:
        changes.append(f"target renamed {before['target']!r} → {after['target']!r}")
    if before["classes"] != after["classes"]:
        changes.append(f"classes {before['classes']} → {after['classes']}")
    old_features, new_features = before["features"], after["features"]
    added = [c for c in new_features if c not in old_features]
    removed = [c for c in old_features if c not in new_features]
    retyped = [
        f"{c} ({old_features[c]} → {new_features[c]})"
        for c in new_features
        if c in old_features and old_features[c] != new_features[c]
    ]
    if added:
        changes.append(f"features added: {', '.join(added)}")
    if removed:
        changes.append(f"features removed: {', '.join(removed)}")
    if retyped:
        changes.append(f"features retyped: {', '.join(retyped)}")
    return changes
