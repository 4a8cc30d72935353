"""Estimators: built-ins by task, `package.module:Class` plug-ins, checks before training."""

from __future__ import annotations

import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.pipeline import Pipeline

from flowship.errors import ConfigError
from flowship.estimators import (
    BUILTIN,
    check_estimator,
    distribution_of,
    fits_on_every_core,
    make_estimator,
    thread_param,
)


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_builtin_builds_the_kind_its_task_needs(name: str) -> None:
    """Each built-in is a classifier for classification and a regressor for regression,
    where it has that kind; its base parameters are real parameters."""
    builtin = BUILTIN[name]
    for classifies, path in ((True, builtin.classifier), (False, builtin.regressor)):
        if path is None:
            with pytest.raises(ConfigError, match=f"estimator '{name}' is for"):
                make_estimator(name, {}, 3, classifies)
            continue
        estimator = make_estimator(name, {}, 3, classifies)
        assert (is_classifier if classifies else is_regressor)(estimator)
        assert set(builtin.base_params) <= set(estimator.get_params())


def test_make_estimator_merges_params_and_seeds() -> None:
    """The grid overrides the base parameters; the seed fills random_state unless given."""
    forest = make_estimator("random_forest", {"n_estimators": 5}, 3, classifies=False)
    assert (forest.n_estimators, forest.min_samples_leaf, forest.random_state) == (5, 2, 3)
    assert type(forest).__name__ == "RandomForestRegressor"
    assert make_estimator("random_forest", {"random_state": 9}, 3, True).random_state == 9


def test_only_forests_fit_on_every_core() -> None:
    assert {n for n in BUILTIN if fits_on_every_core(n)} == {"random_forest", "extra_trees"}
    assert not fits_on_every_core("sklearn.neighbors:KNeighborsClassifier")


def test_a_plugin_is_checked_like_a_builtin() -> None:
    """A scikit-learn-compatible class by path: imported, its kind and parameters checked."""
    cls = check_estimator("sklearn.neighbors:KNeighborsClassifier", {"n_neighbors": [3]}, True)
    assert cls.__name__ == "KNeighborsClassifier"
    knn = make_estimator("sklearn.neighbors:KNeighborsRegressor", {"n_neighbors": 3}, 0, False)
    assert knn.n_neighbors == 3 and thread_param(knn) == "n_jobs"


@pytest.mark.parametrize(
    ("name", "params", "classifies", "message"),
    [
        ("nosuch.module:Model", {}, True, r"module 'nosuch.module' does not import"),
        (
            "sklearn.neighbors:NoSuchModel",
            {},
            True,
            r"sklearn.neighbors has no class 'NoSuchModel'",
        ),
        ("collections:OrderedDict", {}, True, r"is not a scikit-learn-compatible classifier"),
        (
            "sklearn.linear_model:Ridge",
            {},
            True,
            r"not a scikit-learn-compatible classifier: it has no predict_proba",
        ),
        ("sklearn.linear_model:LogisticRegression", {}, False, r"is not a regressor"),
        (
            "sklearn.neighbors:KNeighborsRegressor",
            {"depth": [3]},
            False,
            r"no parameter\(s\) \['depth'\]",
        ),
        ("logistic_regression", {}, False, r"is for classification only; for regression use"),
    ],
)
def test_check_estimator_refuses_with_the_fix(
    name: str, params: dict, classifies: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_estimator(name, params, classifies)


def test_distribution_of_names_a_plugin_package_and_not_sklearn() -> None:
    """The Bento ships the distribution of a plug-in's class (pinned), not scikit-learn's."""
    assert distribution_of(make_estimator("ridge", {}, 0, False)) is None
    lightgbm = pytest.importorskip("lightgbm")
    pinned = distribution_of(lightgbm.LGBMRegressor())
    assert pinned == f"lightgbm=={lightgbm.__version__}"
    assert distribution_of(Pipeline([("m", make_estimator("ridge", {}, 0, False))])) is None
