"""The estimators candidates may name: the built-ins, each declared once with what the rest of
the loop asks of it, and any scikit-learn-compatible class named `package.module:Class`.

A built-in name stands for a classifier or a regressor by the task (`random_forest` is
`RandomForestClassifier` or `RandomForestRegressor`). Classes are named by import path and
imported only when a candidate is checked or built, so reading the configuration never imports
scikit-learn.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flowship.errors import ConfigError

PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
# The parameters through which estimators take a thread count (scikit-learn and joblib users,
# LightGBM and XGBoost: n_jobs; some: n_threads or thread_count).
THREAD_PARAMS = ("n_jobs", "n_threads", "thread_count")


@dataclass(frozen=True)
class Builtin:
    """One built-in estimator."""

    name: str
    classifier: str | None  # "package.module:Class" for classification tasks
    regressor: str | None  # ... and for regression
    base_params: Mapping[str, Any] = field(default_factory=dict)  # sensible starting points
    # Relative fitting cost, to start the slowest candidates first: forests grow hundreds of
    # deep trees, boosting ~100 shallow ones on binned features, linear models are quickest.
    cost: int = 1
    # Fits with joblib workers on every core: joblib's threads sleep while they wait, so a
    # forest sharing the cores costs the others little, and one left alone uses them all.
    parallel_fit: bool = False


_FOREST = {"n_estimators": 200, "min_samples_leaf": 2}
BUILTIN: dict[str, Builtin] = {
    e.name: e
    for e in (
        Builtin(
            "logistic_regression",
            "sklearn.linear_model:LogisticRegression",
            None,
            {"max_iter": 1000},
            cost=1,
        ),
        Builtin(
            "random_forest",
            "sklearn.ensemble:RandomForestClassifier",
            "sklearn.ensemble:RandomForestRegressor",
            _FOREST,
            cost=3,
            parallel_fit=True,
        ),
        Builtin(
            "hist_gradient_boosting",
            "sklearn.ensemble:HistGradientBoostingClassifier",
            "sklearn.ensemble:HistGradientBoostingRegressor",
            cost=2,
        ),
        Builtin(
            "extra_trees",
            "sklearn.ensemble:ExtraTreesClassifier",
            "sklearn.ensemble:ExtraTreesRegressor",
            _FOREST,
            cost=3,
            parallel_fit=True,
        ),
        Builtin("ridge", None, "sklearn.linear_model:Ridge", cost=1),
    )
}
# A plug-in's cost is unknown: start it with the boosting ensembles.
PLUGIN_COST = 2


def is_known(name: str) -> bool:
    """A built-in name or a `package.module:Class` path."""
    return name in BUILTIN or bool(PLUGIN.match(name))


def _path(name: str, classifies: bool) -> str:
    builtin = BUILTIN.get(name)
    if builtin is None:
        return name
    path = builtin.classifier if classifies else builtin.regressor
    if path is None:
        kind, other = (
            ("classification", "regression") if classifies else ("regression", "classification")
        )
        fitting = [n for n, b in BUILTIN.items() if (b.classifier if classifies else b.regressor)]
        raise ConfigError(
            f"estimator {name!r} is for {other} only; for {kind} use one of {', '.join(fitting)} "
            "or a 'package.module:Class'"
        )
    return path


def load_class(name: str, classifies: bool) -> type[Any]:
    """The estimator class a candidate names, for a classification or a regression task.

    Raises:
        ConfigError: it does not import, is not a class, or is a built-in of the other kind.
    """
    path = _path(name, classifies)
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"estimator {name!r}: module {module_name!r} does not import ({exc}); install its "
            "package (e.g. pip install -e '.[boost]' for lightgbm/xgboost) or fix the path"
        ) from None
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        raise ConfigError(f"estimator {name!r}: {module_name} has no class {class_name!r}")
    return cls


def check_estimator(name: str, params: Mapping[str, Any], classifies: bool) -> type[Any]:
    """Check that a candidate's estimator can serve the task, before any training.

    It must import, have `get_params`, `fit` and `predict` (and `predict_proba` to classify),
    be a classifier or regressor as the task needs (`sklearn.base.is_classifier` /
    `is_regressor`), and take every parameter of the grid.

    Raises:
        ConfigError: naming the estimator and the fix.
    """
    from sklearn.base import is_classifier, is_regressor

    cls = load_class(name, classifies)
    needed = ["get_params", "fit", "predict", *(["predict_proba"] if classifies else [])]
    missing = [m for m in needed if not callable(getattr(cls, m, None))]
    if missing:
        raise ConfigError(
            f"estimator {name!r} is not a scikit-learn-compatible "
            f"{'classifier' if classifies else 'regressor'}: it has no {', '.join(missing)}"
        )
    try:
        instance = cls()
    except TypeError as exc:
        raise ConfigError(f"estimator {name!r} cannot be built without arguments: {exc}") from None
    right_kind = is_classifier(instance) if classifies else is_regressor(instance)
    if not right_kind:
        want, kind = ("classifier", "classification") if classifies else ("regressor", "regression")
        raise ConfigError(
            f"estimator {name!r} is not a {want} (scikit-learn's is_{want} says no), and the "
            f"task is {kind}: pick a {want}"
        )
    allowed = set(instance.get_params())
    unknown = sorted(set(params) - allowed)
    takes_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        for p in inspect.signature(cls.__init__).parameters.values()
    )
    if unknown and not takes_any:  # LightGBM and XGBoost pass **kwargs on to their booster
        allowed_text = ", ".join(sorted(allowed))
        raise ConfigError(
            f"estimator {name!r} has no parameter(s) {unknown}; allowed: {allowed_text}"
        )
    return cls


def make_estimator(name: str, params: Mapping[str, Any], seed: int, classifies: bool) -> Any:
    """An unfitted estimator: a built-in's base parameters, then `params`, and
    `random_state=seed` when it takes one and `params` does not set it."""
    cls = load_class(name, classifies)
    builtin = BUILTIN.get(name)
    merged = {**(builtin.base_params if builtin else {}), **params}
    if "random_state" in cls().get_params() and "random_state" not in params:
        merged["random_state"] = seed
    return cls(**merged)


def cost(name: str) -> int:
    """The relative fitting cost, to start the slowest candidates first."""
    builtin = BUILTIN.get(name)
    return builtin.cost if builtin else PLUGIN_COST


def fits_on_every_core(name: str) -> bool:
    builtin = BUILTIN.get(name)
    return bool(builtin and builtin.parallel_fit)


def takes_sparse(estimator: Any) -> bool:
    """Whether the estimator fits on a sparse matrix (scikit-learn's input tags say so)."""
    try:
        return bool(estimator.__sklearn_tags__().input_tags.sparse)
    except AttributeError:
        return False


def thread_param(estimator: Any) -> str | None:
    """The parameter through which the estimator takes its thread count, if any."""
    params = estimator.get_params(deep=False)
    return next((p for p in THREAD_PARAMS if p in params), None)


def distribution_of(estimator: Any) -> str | None:
    """The installed distribution (`name==version`) that provides the estimator's class,
    for the Bento; None for scikit-learn's own (the Bento pins it) and for flowship."""
    from importlib.metadata import packages_distributions, version

    top = type(estimator).__module__.split(".", 1)[0]
    if top in {"sklearn", "flowship"}:
        return None
    names = packages_distributions().get(top, [])
    if not names:
        return None
    return f"{names[0]}=={version(names[0])}"
