"""The built-in estimators: one declaration each, imported only when built."""

from __future__ import annotations

import pytest
from sklearn.base import is_classifier

from flowship.estimators import BUILTIN, allowed_params, get_estimator, make_estimator


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_builtin_imports_and_is_a_classifier(name: str) -> None:
    """Each built-in names a real scikit-learn classifier that takes its base parameters."""
    estimator = make_estimator(name, {}, seed=3)
    assert is_classifier(estimator)
    assert set(get_estimator(name).base_params) <= allowed_params(name)


def test_make_estimator_merges_params_and_seeds() -> None:
    """The grid overrides the base parameters; the seed fills random_state unless given."""
    forest = make_estimator("random_forest", {"n_estimators": 5}, seed=3)
    assert (forest.n_estimators, forest.min_samples_leaf, forest.random_state) == (5, 2, 3)
    assert make_estimator("random_forest", {"random_state": 9}, seed=3).random_state == 9


def test_only_forests_fit_on_every_core() -> None:
    assert {n for n, e in BUILTIN.items() if e.parallel_fit} == {"random_forest", "extra_trees"}


def test_unknown_estimator() -> None:
    with pytest.raises(KeyError):
        get_estimator("svm")
