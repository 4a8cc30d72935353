"""Candidate grids, fitting on a validation split, choosing the best, assessing on the holdout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from flowship import train as train_module
from flowship.config import ConfigError, TrainingSettings, load_settings
from flowship.sample_data import generate_churn
from flowship.schema import Schema
from flowship.tasks import TASKS
from flowship.train import (
    Assessment,
    CandidateResult,
    CandidateSpec,
    Selection,
    assess_model,
    build_pipeline,
    core_share,
    expand_candidates,
    fit_candidate,
    fit_pipeline,
    label_array,
    longest_first,
    predict_table,
    select_best,
)
from tests.helpers import small_config
from tests.unit.conftest import Prepared, prepare

LOGREG = CandidateSpec(name="logreg", family="logreg", estimator="logistic_regression")


def _training(**values: object) -> TrainingSettings:
    return load_settings(small_config(training=values)).training


def _result(name: str, value: float, metric: str = "roc_auc") -> CandidateResult:
    """A hand-made validation result for a logistic regression named `name`."""
    spec = CandidateSpec(name=name, family=name, estimator="logistic_regression")
    return CandidateResult(spec, metric, value, {metric: value}, fit_seconds=0.01)


@pytest.fixture(scope="module")
def binary_run(churn: Prepared) -> tuple[list[CandidateResult], Selection, Assessment]:
    """SMALL_CONFIG's three candidates fitted, the best chosen and assessed."""
    training = churn.settings.training
    results = [
        fit_candidate(spec, churn.train, churn.schema, training)
        for spec in expand_candidates(training, TASKS["binary"])
    ]
    selection = select_best(results, churn.train, churn.schema, training)
    assessment = assess_model(selection.model, churn.train, churn.holdout, churn.schema, training)
    return results, selection, assessment


@pytest.fixture(scope="module")
def multiclass() -> Prepared:
    """300 rows whose target is a three-class string 'plan' cut from the monthly charge."""
    frame = generate_churn(300, seed=11)
    frame["plan"] = pd.cut(
        frame["monthly_charges"], [0, 45, 75, 1e9], labels=["basic", "plus", "max"]
    ).astype(str)
    frame = frame.drop(columns=["monthly_charges", "total_charges", "churned"])
    settings = load_settings(small_config(data={"target": "plan"}))
    return prepare(frame, settings)


# expand_candidates


def test_expand_candidates_builds_the_grid() -> None:
    """Every combination of grid values is one spec, named by its family and values."""
    training = _training(
        candidates=[
            {
                "name": "hgb",
                "estimator": "hist_gradient_boosting",
                "params": {"max_depth": [3, 5], "learning_rate": [0.05, 0.1]},
            },
            {"name": "forest", "estimator": "random_forest"},
        ]
    )
    specs = expand_candidates(training, TASKS["binary"])
    assert [s.name for s in specs] == [
        "hgb[learning_rate=0.05,max_depth=3]",
        "hgb[learning_rate=0.05,max_depth=5]",
        "hgb[learning_rate=0.1,max_depth=3]",
        "hgb[learning_rate=0.1,max_depth=5]",
        "forest",
    ]
    assert specs[2] == CandidateSpec(
        name="hgb[learning_rate=0.1,max_depth=3]",
        family="hgb",
        estimator="hist_gradient_boosting",
        params={"learning_rate": 0.1, "max_depth": 3},
    )
    assert specs[4].params == {}


def test_expand_candidates_unknown_parameter() -> None:
    """A parameter the estimator lacks names the candidate and the allowed parameters."""
    training = _training(
        candidates=[
            {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {"depth": [3]}}
        ]
    )
    with pytest.raises(
        ConfigError,
        match=r"training\.candidates\.0 \(hgb\): estimator 'hist_gradient_boosting' has no "
        r"parameter\(s\) \['depth'\]; allowed: .*learning_rate, .*max_depth",
    ):
        expand_candidates(training, TASKS["binary"])


def test_expand_candidates_invalid_value() -> None:
    """A value the estimator refuses (C=-1) is a config error naming the key and the range."""
    training = _training(
        candidates=[
            {"name": "logreg", "estimator": "logistic_regression", "params": {"C": [1, -1]}}
        ]
    )
    with pytest.raises(
        ConfigError,
        match=r"training\.candidates\.0\.params \(logreg\): The 'C' parameter of "
        r"LogisticRegression must be a float in the range \(0\.0, inf\]\. Got -1",
    ):
        expand_candidates(training, TASKS["binary"])


# build_pipeline and label_array


def test_build_pipeline_merges_base_params_grid_and_seed(churn: Prepared) -> None:
    """The estimator gets the base params, the grid's values and the training seed."""
    spec = CandidateSpec("forest", "forest", "random_forest", {"max_depth": 4})
    pipeline = build_pipeline(spec, churn.schema, seed=13)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    params = pipeline.named_steps["model"].get_params()
    assert (params["n_estimators"], params["min_samples_leaf"]) == (200, 2)
    assert (params["max_depth"], params["random_state"]) == (4, 13)


def test_build_pipeline_without_features(churn: Prepared) -> None:
    """A schema without features cannot make a pipeline."""
    empty = churn.schema.model_copy(update={"numeric": [], "categorical": []})
    with pytest.raises(ValueError, match="the schema has no features"):
        build_pipeline(LOGREG, empty, seed=0)


def test_label_array_is_typed() -> None:
    """Object columns of ints, bools or strings become typed NumPy arrays."""
    assert label_array(pd.Series([0, 1], dtype=object)).dtype == np.int64
    assert label_array(pd.Series([True, False], dtype=object)).dtype == np.bool_
    assert label_array(pd.Series(["a", "b"], dtype=object)).tolist() == ["a", "b"]


# fit_candidate


def test_fit_candidate_scores_a_validation_split_of_train(
    churn: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It scores the configured metric on a fifth of the training part, never other rows."""
    scored: list[pd.Index] = []
    import flowship.evaluate as evaluate_module

    real = evaluate_module.compute_metrics

    def spy(y_true: pd.Series, *args: object) -> dict[str, float]:
        scored.append(y_true.index)
        return real(y_true, *args)

    monkeypatch.setattr(evaluate_module, "compute_metrics", spy)
    train = churn.train.set_axis(range(10_000, 10_000 + len(churn.train)))
    training = _training(metric="f1")
    result = fit_candidate(LOGREG, train, churn.schema, training)

    assert len(scored) == 1
    assert len(scored[0]) == math.ceil(0.2 * len(train))
    assert set(scored[0]) <= set(train.index)
    assert result.metric == "f1"
    assert result.value == result.metrics["f1"]
    assert set(result.metrics) == {"accuracy", "log_loss", "roc_auc", "f1", "precision", "recall"}
    assert 0.5 < result.metrics["roc_auc"] <= 1.0
    assert result.fit_seconds > 0
    again = fit_candidate(LOGREG, train, churn.schema, training)
    assert again.metrics == result.metrics


def test_fit_candidate_too_few_rows(churn: Prepared) -> None:
    """A training part too small for a validation row per class is refused."""
    tiny = pd.concat([churn.train[churn.train["churned"] == c].head(2) for c in (0, 1)])
    with pytest.raises(ValueError, match="cannot split 4 rows with classes"):
        fit_candidate(LOGREG, tiny, churn.schema, churn.settings.training)


def test_core_share_divides_a_machine_but_not_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_module.joblib, "cpu_count", lambda: 8)
    monkeypatch.delenv("METAFLOW_KUBERNETES_WORKLOAD", raising=False)
    assert [core_share(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("METAFLOW_KUBERNETES_WORKLOAD", "1")  # set in every Metaflow pod
    assert core_share(7) == 8


def test_longest_first_starts_forests_then_boosting_then_linear() -> None:
    """Stable within an estimator: the grid's own order."""
    specs = expand_candidates(
        _training(
            candidates=[
                {"name": "lr", "estimator": "logistic_regression", "params": {"C": [0.1, 1.0]}},
                {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {}},
                {"name": "rf", "estimator": "random_forest", "params": {"max_depth": [4, 8]}},
                {"name": "et", "estimator": "extra_trees", "params": {}},
            ]
        ),
        TASKS["binary"],
    )
    assert [s.name for s in longest_first(specs)] == [
        "rf[max_depth=4]",
        "rf[max_depth=8]",
        "et",
        "hgb",
        "lr[C=0.1]",
        "lr[C=1.0]",
    ]


def test_fit_pipeline_builds_forests_in_parallel_and_predicts_on_one_thread(
    churn: Prepared, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forest fits with n_jobs = the cores and is stored with n_jobs=None (serving predicts
    single rows); an n_jobs the config gives is kept; the model is the same either way."""
    monkeypatch.setattr(train_module.joblib, "cpu_count", lambda: 3)
    seen: list[int | None] = []
    from sklearn.ensemble import RandomForestClassifier

    real_fit = RandomForestClassifier.fit

    def spy(self, *args, **kwargs):
        seen.append(self.n_jobs)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(RandomForestClassifier, "fit", spy)
    X, y = churn.train[churn.schema.features], label_array(churn.train["churned"])
    forests = []
    for params in ({"n_estimators": 20}, {"n_estimators": 20, "n_jobs": 1}):
        spec = CandidateSpec(name="rf", family="rf", estimator="random_forest", params=params)
        pipeline = build_pipeline(spec, churn.schema, seed=0)
        fit_pipeline(pipeline, X, y, "random_forest")
        forests.append(pipeline)
    assert seen == [3, 1]
    assert [f.named_steps["model"].n_jobs for f in forests] == [None, 1]
    np.testing.assert_array_equal(forests[0].predict_proba(X), forests[1].predict_proba(X))


# select_best


def test_select_best_ranks_and_refits(binary_run, churn: Prepared) -> None:
    """The best validation score wins and is refitted on the whole training part."""
    results, selection, _ = binary_run
    assert selection.best.value == max(r.value for r in results)
    board = selection.leaderboard
    assert board["rank"].tolist() == [1, 2, 3]
    assert board["candidate"].iloc[0] == selection.best.spec.name
    assert board["val_roc_auc"].is_monotonic_decreasing
    assert set(board["candidate"]) == {
        "logreg[C=1.0]",
        "hgb[max_iter=40,max_leaf_nodes=7]",
        "hgb[max_iter=40,max_leaf_nodes=15]",
    }
    assert selection.model.named_steps["model"].n_features_in_ == 24
    assert selection.model.predict_proba(churn.holdout[churn.schema.features]).shape == (150, 2)


def test_select_best_breaks_ties_by_name(churn: Prepared) -> None:
    """Equal scores go to the alphabetically first name, whatever the input order."""
    training = churn.settings.training
    for order in (["b", "a", "c"], ["c", "b", "a"]):
        results = [_result(name, 0.8) for name in order]
        selection = select_best(results, churn.train, churn.schema, training)
        assert selection.best.spec.name == "a"
        assert selection.leaderboard["candidate"].tolist() == ["a", "b", "c"]


def test_select_best_log_loss_lower_is_better(churn: Prepared) -> None:
    """With log_loss the smallest value wins."""
    results = [_result("high", 0.6, "log_loss"), _result("low", 0.3, "log_loss")]
    selection = select_best(results, churn.train, churn.schema, _training(metric="log_loss"))
    assert selection.best.spec.name == "low"
    assert selection.leaderboard["val_log_loss"].tolist() == [0.3, 0.6]


def test_select_best_skips_nan_scores(churn: Prepared) -> None:
    """A candidate that scored NaN is left off the leaderboard."""
    results = [_result("nan", float("nan")), _result("ok", 0.7)]
    selection = select_best(results, churn.train, churn.schema, churn.settings.training)
    assert selection.leaderboard["candidate"].tolist() == ["ok"]


def test_select_best_without_results(churn: Prepared) -> None:
    """No results, or only NaN scores, leave nothing to choose."""
    training = churn.settings.training
    with pytest.raises(ValueError, match="no candidate produced a usable validation score"):
        select_best([], churn.train, churn.schema, training)
    with pytest.raises(ValueError, match="no candidate produced a usable validation score"):
        select_best([_result("nan", float("nan"))], churn.train, churn.schema, training)


# assess_model and predict_table


def test_assess_model_beats_the_majority_baseline(binary_run, churn: Prepared) -> None:
    """The chosen model beats predicting the training priors on the holdout."""
    _, _, assessment = binary_run
    metrics, baseline = assessment.metrics, assessment.baseline_metrics
    assert baseline["roc_auc"] == 0.5
    assert baseline["accuracy"] == pytest.approx((churn.holdout["churned"] == 0).mean())
    assert metrics["roc_auc"] > baseline["roc_auc"] + 0.15
    assert metrics["log_loss"] < baseline["log_loss"]
    assert set(assessment.importances["feature"]) == set(churn.schema.features)


def test_assess_model_predictions(binary_run, churn: Prepared) -> None:
    """Holdout predictions carry the id, the label, a probability per class and the truth."""
    _, _, assessment = binary_run
    predictions = assessment.predictions
    assert list(predictions.columns) == [
        "customer_id",
        "prediction",
        "proba_0",
        "proba_1",
        "churned",
    ]
    assert predictions["customer_id"].tolist() == churn.holdout["customer_id"].tolist()
    assert np.allclose(predictions[["proba_0", "proba_1"]].sum(axis=1), 1.0)
    expected = np.where(predictions["proba_1"] > predictions["proba_0"], 1, 0)
    assert predictions["prediction"].tolist() == expected.tolist()


def test_assess_model_unknown_holdout_label(binary_run, churn: Prepared) -> None:
    """A holdout label the model never saw is refused, naming it."""
    _, selection, _ = binary_run
    holdout = churn.holdout.copy()
    holdout.loc[0, "churned"] = 2
    with pytest.raises(ValueError, match=r"labels \['2'\] are not among the model's classes"):
        assess_model(selection.model, churn.train, holdout, churn.schema, churn.settings.training)


def test_predict_table_without_target_or_id(binary_run, churn: Prepared) -> None:
    """Rows to score need only the features; no id or target columns are made up."""
    _, selection, _ = binary_run
    schema: Schema = churn.schema.model_copy(update={"id_column": None})
    table = predict_table(selection.model, churn.holdout[schema.features].head(3), schema)
    assert list(table.columns) == ["prediction", "proba_0", "proba_1"]
    assert len(table) == 3


def test_predict_table_missing_feature(binary_run, churn: Prepared) -> None:
    """Rows without a feature column cannot be scored."""
    _, selection, _ = binary_run
    with pytest.raises(KeyError, match="age"):
        predict_table(selection.model, churn.holdout.drop(columns=["age"]), churn.schema)


def test_multiclass_string_labels_end_to_end(multiclass: Prepared) -> None:
    """Three string classes fit, get chosen and assessed with macro and one-vs-rest metrics."""
    schema, training = multiclass.schema, multiclass.settings.training
    assert schema.classes == ["basic", "max", "plus"]
    assert schema.task == "multiclass"
    result = fit_candidate(LOGREG, multiclass.train, schema, training)
    assert 0.5 < result.value <= 1.0
    selection = select_best([result], multiclass.train, schema, training)
    assert selection.best.spec.name == "logreg"
    assessment = assess_model(
        selection.model, multiclass.train, multiclass.holdout, schema, training
    )
    assert assessment.metrics["accuracy"] > assessment.baseline_metrics["accuracy"]
    assert list(assessment.predictions.columns[-4:]) == [
        "proba_basic",
        "proba_max",
        "proba_plus",
        "plan",
    ]
    assert set(assessment.predictions["prediction"]) <= set(schema.classes)


def test_a_combination_only_fit_refuses_is_a_config_error_at_once() -> None:
    """penalty="l1" with LogisticRegression's default solver passes its parameter checks and
    fails only in fit: it is refused when the candidates are expanded, not a minute later."""
    training = _training(
        candidates=[
            {"name": "l1", "estimator": "logistic_regression", "params": {"penalty": ["l1"]}}
        ]
    )
    with pytest.raises(ConfigError, match=r"training\.candidates\.0\.params \(l1\): .*l1"):
        expand_candidates(training, TASKS["binary"])
