"""The estimators candidates may name: each built-in declared once with what the rest of the
loop asks of it (its class, base parameters, relative cost, whether it fits on every core).

Classes are named by import path and imported only when a candidate is built, so reading the
configuration never imports scikit-learn.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Estimator:
    """One built-in estimator."""

    name: str
    path: str  # "package.module:Class"
    base_params: Mapping[str, Any] = field(default_factory=dict)  # sensible starting points
    # Relative fitting cost, to start the slowest candidates first: forests grow hundreds of
    # deep trees, boosting ~100 shallow ones on binned features, linear models are quickest.
    cost: int = 1
    # Fits with joblib workers (`n_jobs`) on every core; predicting stays single-threaded.
    parallel_fit: bool = False

    def load(self) -> type[Any]:
        """The estimator class."""
        module, _, name = self.path.partition(":")
        return getattr(importlib.import_module(module), name)


_FOREST = {"n_estimators": 200, "min_samples_leaf": 2}
BUILTIN: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator(
            "logistic_regression",
            "sklearn.linear_model:LogisticRegression",
            {"max_iter": 1000},
            cost=1,
        ),
        Estimator(
            "random_forest",
            "sklearn.ensemble:RandomForestClassifier",
            _FOREST,
            cost=3,
            parallel_fit=True,
        ),
        Estimator(
            "hist_gradient_boosting", "sklearn.ensemble:HistGradientBoostingClassifier", cost=2
        ),
        Estimator(
            "extra_trees",
            "sklearn.ensemble:ExtraTreesClassifier",
            _FOREST,
            cost=3,
            parallel_fit=True,
        ),
    )
}


def get_estimator(name: str) -> Estimator:
    """The built-in estimator called `name`.

    Raises:
        KeyError: no such estimator.
    """
    return BUILTIN[name]


def make_estimator(name: str, params: Mapping[str, Any], seed: int) -> Any:
    """An unfitted estimator: base parameters, then `params`, and `random_state=seed` when it
    takes one and `params` does not set it."""
    spec = get_estimator(name)
    cls = spec.load()
    merged = {**spec.base_params, **params}
    if "random_state" in cls().get_params() and "random_state" not in params:
        merged["random_state"] = seed
    return cls(**merged)


def allowed_params(name: str) -> set[str]:
    """Every parameter the estimator's class takes."""
    return set(get_estimator(name).load()().get_params())
