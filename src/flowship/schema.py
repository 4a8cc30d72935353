"""The model's contract: target, classes and features by kind, as every layer needs them.

Stored with every model and read by the service at start-up, so it imports neither
scikit-learn nor pandas: only pydantic and NumPy's scalar types.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Label = str | int | bool
PROBA_PREFIX = "proba_"


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


class Schema(BaseModel):
    """What a model needs to know about its input table, stored with every model."""

    model_config = ConfigDict(frozen=True)

    target: str
    id_column: str | None
    numeric: list[str]
    categorical: list[str]
    classes: list[Label]
    positive_class: Label | None
    categories: dict[str, list[str]]
    numeric_ranges: dict[str, tuple[float, float]]

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def task(self) -> Literal["binary", "multiclass"]:
        return "binary" if len(self.classes) == 2 else "multiclass"

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
