"""What role each column of a table plays, and why: the rules `flowship init` writes into a
config, and schema inference applies when a config lists no features.

A column is a numeric, categorical or text feature, or left out: an id (unique per row), a
date, a constant, too often missing, or a likely target leak (it alone predicts the target
almost perfectly). Every decision carries its reason, in words a reader can check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Role = Literal["numeric", "categorical", "text", "id", "date", "constant", "missing", "leak"]
FEATURE_ROLES = ("numeric", "categorical", "text")
# Small integer codes with at most this many values are categories, not quantities.
MAX_CODE_VALUES = 12
# Strings with more distinct values than this, or a long average length, are free text.
TEXT_MIN_AVERAGE_LENGTH = 30
MAX_CATEGORIES = 100
# A feature whose single-column model scores at least this (accuracy / R²) is a likely leak.
LEAK_SCORE = 0.99


@dataclass(frozen=True)
class Decision:
    """A column's role and the reason for it."""

    column: str
    role: Role
    reason: str

    @property
    def feature(self) -> bool:
        return self.role in FEATURE_ROLES


def decide_role(values: pd.Series, max_missing_share: float) -> Decision:
    """The role of one column by its values alone (leaks need the target: `find_leaks`)."""
    name = str(values.name)
    rows = len(values)
    present = values.dropna()
    missing = 1 - len(present) / rows if rows else 1.0
    if missing > max_missing_share:
        return Decision(name, "missing", f"{missing:.0%} missing, above {max_missing_share:.0%}")
    distinct = int(present.nunique())
    if distinct <= 1:
        return Decision(name, "constant", "one value in every row")
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return Decision(name, "date", "a date/time column")
    if pd.api.types.is_bool_dtype(dtype):
        return Decision(name, "categorical", "true/false")
    if pd.api.types.is_numeric_dtype(dtype):
        integral = bool((present.astype(float) % 1 == 0).all())
        if integral and distinct == len(present) and distinct > MAX_CATEGORIES:
            return Decision(name, "id", "a different integer in every row")
        if integral and distinct <= MAX_CODE_VALUES:
            return Decision(name, "categorical", f"an integer code with {distinct} values")
        return Decision(name, "numeric", f"numbers ({distinct} distinct values)")
    text = present.astype(str)
    if _dates(text):
        return Decision(name, "date", "dates written as text")
    average = float(text.str.len().mean())
    words = float(text.str.count(r"\s+").mean()) + 1
    if average >= TEXT_MIN_AVERAGE_LENGTH and words >= 4:
        return Decision(name, "text", f"free text (about {words:.0f} words, {average:.0f} chars)")
    if distinct == len(present) and distinct > MAX_CATEGORIES:
        return Decision(name, "id", "a different value in every row")
    if distinct > max(MAX_CATEGORIES, 0.5 * len(present)):
        return Decision(name, "id", f"{distinct} distinct short strings: an identifier")
    return Decision(name, "categorical", f"{distinct} distinct labels")


def _dates(text: pd.Series) -> bool:
    sample = text.head(200)
    parsed = pd.to_datetime(sample, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def decide_roles(
    frame: pd.DataFrame, target: str, max_missing_share: float, id_column: str | None = None
) -> list[Decision]:
    """Every column but the target, in table order."""
    decisions = []
    for column in frame.columns:
        if column == target:
            continue
        if column == id_column:
            decisions.append(Decision(column, "id", "the configured id column"))
            continue
        decisions.append(decide_role(frame[column], max_missing_share))
    return decisions


def find_leaks(
    frame: pd.DataFrame, target: str, decisions: list[Decision], classifies: bool, seed: int = 0
) -> list[Decision]:
    """The decisions with likely target leaks marked: a feature that alone predicts the
    target almost perfectly on held-out rows (accuracy or R² >= `LEAK_SCORE`) is left out."""
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    y = frame[target]
    # no more folds than the rarest class has rows (scikit-learn warns otherwise)
    folds = int(min(3, max(2, y.value_counts().min()))) if classifies else 3
    out = []
    for decision in decisions:
        if decision.role not in ("numeric", "categorical"):
            out.append(decision)
            continue
        column = frame[[decision.column]]
        if decision.role == "categorical":
            column = column.astype(str)
            encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        else:
            column = column.astype(float).fillna(column.astype(float).median())
            encode = None
        tree = (DecisionTreeClassifier if classifies else DecisionTreeRegressor)(
            max_depth=6, random_state=seed
        )
        model = make_pipeline(encode, tree) if encode is not None else tree
        scoring = "accuracy" if classifies else "r2"
        try:
            score = float(np.mean(cross_val_score(model, column, y, cv=folds, scoring=scoring)))
        except ValueError:
            out.append(decision)
            continue
        if score >= LEAK_SCORE:
            what = "accuracy" if classifies else "R²"
            out.append(
                Decision(
                    decision.column,
                    "leak",
                    f"alone it predicts the target with {what} {score:.3f} on held-out rows: "
                    "a likely leak (known only after the outcome?)",
                )
            )
        else:
            out.append(decision)
    return out
