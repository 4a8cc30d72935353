"""Evidently checks read back as CheckResults: data quality, drift, model quality, champion."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from flowship.cards import render_reports
from flowship.checks import (
    CHAMPION_OWN_HOLDOUT,
    CheckResult,
    QualityReport,
    all_checks,
)
from flowship.config import DataSettings, GateSettings, MonitorSettings, load_settings
from flowship.data import infer_schema, validate_dataset
from flowship.evaluate import compute_metrics
from flowship.gate import decide_promotion
from flowship.quality.production import check_production
from flowship.quality.release import check_against_champion, check_training_data, release_checks
from flowship.quality.reports import check_drift, check_model_quality
from flowship.sample_data import generate_churn, generate_reviews
from flowship.train import CandidateSpec, build_pipeline, label_array
from tests.helpers import small_config
from tests.unit.conftest import Prepared, prepare

LOGREG = CandidateSpec(name="logreg", family="logreg", estimator="logistic_regression")
ALL_METRICS = ("accuracy", "f1", "log_loss", "precision", "recall", "roc_auc")


def _fit(prepared: Prepared) -> Pipeline:
    """A logistic regression on the training part (fast, deterministic)."""
    schema = prepared.schema
    features, labels = prepared.train[schema.features], label_array(prepared.train[schema.target])
    return build_pipeline(LOGREG, schema, seed=0).fit(features, labels)


def _failed(report: QualityReport) -> list[str]:
    return [c.label for c in report.checks if c.status == "fail"]


def _only(report: QualityReport, label: str) -> CheckResult:
    matches = [c for c in report.checks if c.label == label]
    assert len(matches) == 1, [c.label for c in report.checks]
    return matches[0]


@pytest.fixture(scope="module")
def model(churn: Prepared) -> Pipeline:
    return _fit(churn)


@pytest.fixture(scope="module")
def proba(churn: Prepared, model: Pipeline) -> np.ndarray:
    """The binary model's holdout probabilities, one column per class (0, 1)."""
    return model.predict_proba(churn.holdout[churn.schema.features])


@pytest.fixture(scope="module")
def random_proba(churn: Prepared) -> np.ndarray:
    """Uninformed holdout probabilities: a champion or challenger no better than chance."""
    return np.random.default_rng(0).dirichlet([1.0, 1.0], size=len(churn.holdout))


@pytest.fixture(scope="module")
def contract() -> Prepared:
    """600 churn rows whose target is the three-class string 'contract'."""
    frame = generate_churn(600, seed=5).drop(columns=["churned"])
    return prepare(frame, load_settings(small_config(data={"target": "contract"})))


@pytest.fixture(scope="module")
def contract_model(contract: Prepared) -> Pipeline:
    return _fit(contract)


@pytest.fixture(scope="module")
def clean_report(churn: Prepared) -> QualityReport:
    return check_training_data(churn.frame, churn.schema, churn.settings.gate)


@pytest.fixture(scope="module")
def drift_frames(churn: Prepared) -> dict[str, pd.DataFrame]:
    """1500-row tables validated against the reference schema.

    Above 1000 rows Evidently compares distributions by distance (Wasserstein, Jensen-Shannon)
    rather than by p-value, so two baseline samples do not drift by chance.
    """
    tables = {
        "reference": generate_churn(1500, seed=21),
        "baseline": generate_churn(1500, seed=22),
        "price_increase": generate_churn(1500, seed=22, scenario="price_increase"),
    }
    return {name: validate_dataset(frame, churn.schema) for name, frame in tables.items()}


# check_training_data


def test_check_training_data_clean_table_passes(clean_report: QualityReport, churn) -> None:
    """A clean table passes rows, missing shares, not-constant, target classes, class shares."""
    checks, schema = clean_report.checks, churn.schema
    assert clean_report.title == "Data quality of the training data"
    assert "<html" in clean_report.html.lower()
    assert [c.status for c in checks] == ["pass"] * len(checks)
    assert {(c.group, c.critical) for c in checks} == {("data_quality", True)}

    rows = _only(clean_report, "row count")
    assert (rows.value, rows.threshold, rows.condition) == (600.0, 300.0, ">= 300")
    missing = [c for c in checks if c.name == "missing share"]
    assert [c.column for c in missing] == [*schema.features, "churned"]
    assert {c.condition for c in missing} == {"<= 0.2"}
    assert _only(clean_report, "missing share [age]").value == pytest.approx(
        churn.frame["age"].isna().mean()
    )
    constant = [c for c in checks if c.name == "not constant"]
    assert [c.column for c in constant] == schema.features
    assert _only(clean_report, "not constant [region]").value == 4.0
    classes = _only(clean_report, "target classes [churned]")
    assert (classes.value, classes.condition) == (2.0, ">= 2")
    shares = churn.frame["churned"].value_counts(normalize=True)
    for label in (0, 1):
        share = _only(clean_report, f"class share of {label} [churned]")
        assert share.value == pytest.approx(shares[label])
        assert share.condition == ">= 0.02"
    assert len(checks) == 1 + 11 + 10 + 1 + 2


def test_check_training_data_too_many_missing(churn: Prepared) -> None:
    """A feature 60% missing fails its 'missing share' check, naming the column."""
    frame = churn.frame.copy()
    frame.loc[frame.index[:360], "tenure_months"] = np.nan  # 60% of 600 rows
    report = check_training_data(frame, churn.schema, churn.settings.gate)
    assert _failed(report) == ["missing share [tenure_months]"]
    check = _only(report, "missing share [tenure_months]")
    assert check.value == pytest.approx(0.6)
    assert (check.threshold, check.condition, check.critical) == (0.2, "<= 0.2", True)


def test_check_training_data_constant_feature(churn: Prepared) -> None:
    """A feature with one value everywhere fails 'not constant' for that column."""
    raw = generate_churn(600, seed=3)
    raw["region"] = "north"
    report = check_training_data(
        validate_dataset(raw, churn.schema), churn.schema, churn.settings.gate
    )
    assert _failed(report) == ["not constant [region]"]
    check = _only(report, "not constant [region]")
    assert (check.value, check.condition) == (1.0, "> 1")


def test_check_training_data_too_few_rows(churn: Prepared) -> None:
    """Fewer rows than [gate] min_rows fail 'row count' with the limit."""
    report = check_training_data(churn.frame.head(200), churn.schema, churn.settings.gate)
    assert _failed(report) == ["row count"]
    check = _only(report, "row count")
    assert (check.value, check.threshold, check.condition) == (200.0, 300.0, ">= 300")


def test_check_training_data_rare_class(churn: Prepared) -> None:
    """A class below min_class_share fails its 'class share' check; the other class passes."""
    frame = churn.frame
    rare = pd.concat([frame[frame["churned"] == 0], frame[frame["churned"] == 1].head(4)])
    report = check_training_data(rare, churn.schema, churn.settings.gate)
    assert _failed(report) == ["class share of 1 [churned]"]
    check = _only(report, "class share of 1 [churned]")
    assert check.value == pytest.approx(4 / len(rare))
    assert (check.threshold, check.condition) == (0.02, ">= 0.02")
    assert _only(report, "class share of 0 [churned]").status == "pass"


def test_check_training_data_string_classes(contract: Prepared) -> None:
    """String labels get one class-share check each, named by the quoted label."""
    report = check_training_data(contract.frame, contract.schema, GateSettings(min_rows=300))
    shares = contract.frame["contract"].value_counts(normalize=True)
    labels = sorted(c.name for c in report.checks if c.name.startswith("class share"))
    assert labels == [f"class share of {c!r}" for c in contract.schema.classes]
    for label in contract.schema.classes:
        assert _only(report, f"class share of {label!r} [contract]").value == pytest.approx(
            shares[label]
        )
    assert _only(report, "target classes [contract]").value == 3.0
    assert _failed(report) == []


REVIEWS = DataSettings(
    target="sentiment", numeric_features=["stars"], categorical_features=["category"],
    text_features=["review"],
)  # fmt: skip


@pytest.mark.parametrize(("empty", "missing", "fails"), [(2, 2, False), (6, 4, True)])
def test_check_training_data_empty_text_share(empty: int, missing: int, fails: bool) -> None:
    """'empty text share' counts empty and missing texts together against [gate]
    max_missing_share (0.2): 10 of 40 fail it while the missing share alone (4 of 40) passes;
    4 of 40 pass."""
    frame = generate_reviews(40, seed=7)
    frame["review"] = frame["review"].fillna("Fine.")
    frame.loc[: empty - 1, "review"] = ""
    frame.loc[empty : empty + missing - 1, "review"] = None
    schema = infer_schema(frame, REVIEWS)
    report = check_training_data(
        validate_dataset(frame, schema), schema, GateSettings(min_rows=40, min_class_share=0.0)
    )
    check = _only(report, "empty text share [review (characters)]")
    assert check.id == "data.text_empty"
    assert check.value == pytest.approx((empty + missing) / 40)
    assert (check.threshold, check.critical) == (0.2, True)
    assert _only(report, "missing share [review]").value == pytest.approx(missing / 40)
    assert _failed(report) == (["empty text share [review (characters)]"] if fails else [])


def test_check_production_text_length_out_of_the_training_range() -> None:
    """'text length out of training range' is the share of window texts shorter or longer
    than any in training (empty ones included), against [monitor] max_out_of_range_share:
    12 of 50 (6 empty, 6 too long) fail it."""
    # One window only: the drift report that comes with it costs ~4 s per text column
    # (Evidently's text drift), whatever the rows.
    raw = generate_reviews(60, seed=8).dropna(subset=["review"]).head(50)
    schema = infer_schema(raw, REVIEWS)
    reference = validate_dataset(raw, schema).assign(prediction_score=np.linspace(0, 1, 50))
    low, high = schema.text_lengths["review"]
    assert low > 0
    window = reference.copy()  # the training texts: every length in range
    window.loc[:5, "review"] = ""
    window.loc[6:11, "review"] = "x" * (high + 1)
    monitor = MonitorSettings(max_out_of_range_share=0.05)
    _, quality = check_production(window, reference, schema, monitor, "prediction_score")
    (check,) = [c for c in quality.checks if c.id == "production.text_length"]
    assert (check.name, check.column) == (
        "text length out of training range",
        "review (characters)",
    )
    assert check.value == pytest.approx(12 / 50)
    assert (check.status, check.threshold, check.critical) == ("fail", 0.05, True)
    assert quality.summary["alarms"] == ["review (characters)"]


# check_drift


def test_check_drift_price_increase(drift_frames: dict[str, pd.DataFrame], churn) -> None:
    """Raised prices drift the charge columns; per-column drift only warns."""
    report = check_drift(
        drift_frames["price_increase"], drift_frames["reference"], churn.schema, 0.5, False
    )
    assert report.summary == {"drifted_columns": ["monthly_charges", "total_charges"]}
    columns = [c for c in report.checks if c.name == "column drift"]
    assert [c.column for c in columns] == churn.schema.features
    assert {c.critical for c in columns} == {False}
    charges = _only(report, "column drift [monthly_charges]")
    assert (charges.status, charges.group) == ("warn", "drift")
    assert _only(report, "column drift [age]").status == "pass"
    share = _only(report, "drifted share")
    assert share.value == pytest.approx(0.2)
    assert (share.status, share.condition) == ("pass", "<= 0.5")
    assert "<html" in report.html.lower()


def test_check_drift_same_distribution(drift_frames: dict[str, pd.DataFrame], churn) -> None:
    """Another baseline sample drifts no column."""
    report = check_drift(
        drift_frames["baseline"], drift_frames["reference"], churn.schema, 0.5, False
    )
    assert report.summary == {"drifted_columns": []}
    assert {c.status for c in report.checks} == {"pass"}
    assert _only(report, "drifted share").value == 0.0


def test_a_column_without_values_is_named_not_compared(
    drift_frames: dict[str, pd.DataFrame], churn
) -> None:
    """A feature missing in every row (a broken upstream join) cannot be compared: the drift
    report names it and goes on with the others (Evidently raises on an empty column); every
    column empty gives a report with no checks rather than an error."""
    current = drift_frames["price_increase"].copy()
    current["region"] = None
    report = check_drift(current, drift_frames["reference"], churn.schema, 0.5, True)
    assert report.summary == {
        "drifted_columns": ["monthly_charges", "total_charges"],
        "not_compared": ["region"],
    }
    assert "region" in report.note
    assert "region" not in {c.column for c in report.checks}
    assert _only(report, "drifted share").value == pytest.approx(2 / 9)
    current[churn.schema.features] = None
    empty = check_drift(current, drift_frames["reference"], churn.schema, 0.5, True)
    assert empty.checks == [] and empty.summary["not_compared"] == churn.schema.features


@pytest.mark.parametrize(
    ("blocking", "status"), [(True, "fail"), (False, "warn")], ids=["blocking", "informative"]
)
def test_check_drift_share_blocks_only_when_configured(
    drift_frames: dict[str, pd.DataFrame], churn, blocking: bool, status: str
) -> None:
    """Too many drifted columns fail a critical check when drift blocks, else only warn."""
    report = check_drift(
        drift_frames["price_increase"], drift_frames["reference"], churn.schema, 0.1, blocking
    )
    share = _only(report, "drifted share")
    assert (share.status, share.critical, share.blocking) == (status, blocking, blocking)
    assert (share.value, share.threshold, share.condition) == (pytest.approx(0.2), 0.1, "<= 0.1")
    others = [c for c in report.checks if c.name != "drifted share"]
    assert not any(c.critical for c in others)


# check_model_quality


def test_check_model_quality_matches_compute_metrics(churn: Prepared, proba) -> None:
    """Evidently's holdout metrics equal scikit-learn's; only bounded metrics are checks."""
    report = check_model_quality(churn.holdout["churned"], proba, churn.schema, {"roc_auc": 0.7})
    expected = compute_metrics(churn.holdout["churned"], proba, [0, 1], 1)
    assert set(report.summary) == set(ALL_METRICS)
    for name in ALL_METRICS:
        assert report.summary[name] == pytest.approx(expected[name], abs=1e-6), name
    (check,) = report.checks
    assert (check.name, check.group, check.status, check.critical) == (
        "roc_auc",
        "model_quality",
        "pass",
        True,
    )
    assert check.value == pytest.approx(expected["roc_auc"], abs=1e-6)
    assert (check.threshold, check.condition) == (0.7, ">= 0.7")


def test_check_model_quality_bounds(churn: Prepared, proba) -> None:
    """A minimum above the achieved value fails; log_loss is bounded from above."""
    achieved = compute_metrics(churn.holdout["churned"], proba, [0, 1], 1)
    bounds = {
        "roc_auc": achieved["roc_auc"] + 0.001,
        "accuracy": achieved["accuracy"] - 0.001,
        "log_loss": achieved["log_loss"] - 0.001,
    }
    report = check_model_quality(churn.holdout["churned"], proba, churn.schema, bounds)
    assert sorted(_failed(report)) == ["log_loss", "roc_auc"]
    assert _only(report, "accuracy").status == "pass"
    log_loss = _only(report, "log_loss")
    assert log_loss.threshold == pytest.approx(bounds["log_loss"])
    assert log_loss.condition.startswith("<= ")
    assert _only(report, "roc_auc").condition.startswith(">= ")

    loose = check_model_quality(
        churn.holdout["churned"], proba, churn.schema, {"log_loss": achieved["log_loss"] + 0.001}
    )
    assert [c.status for c in loose.checks] == ["pass"]


def test_check_model_quality_multiclass_strings(contract: Prepared, contract_model) -> None:
    """Three string classes are scored with macro and one-vs-rest metrics like scikit-learn."""
    holdout, schema = contract.holdout, contract.schema
    proba = contract_model.predict_proba(holdout[schema.features])
    bounds = {"roc_auc": 0.5, "f1": 0.99}
    report = check_model_quality(holdout[schema.target], proba, schema, bounds)
    expected = compute_metrics(holdout["contract"], proba, schema.classes)
    for name in ALL_METRICS:
        assert report.summary[name] == pytest.approx(expected[name], abs=1e-6), name
    assert _only(report, "roc_auc").status == "pass"
    assert _failed(report) == ["f1"]


# check_against_champion


def test_check_against_champion_better_challenger(churn: Prepared, proba, random_proba) -> None:
    """A challenger better than the champion passes; both values are reported."""
    report = check_against_champion(
        churn.holdout, proba, random_proba, churn.schema, "roc_auc", 0.05
    )
    (check,) = report.checks
    expected = compute_metrics(churn.holdout["churned"], random_proba, [0, 1], 1)["roc_auc"]
    assert report.summary["champion"] == pytest.approx(expected, abs=1e-6)
    assert report.summary["challenger"] == check.value
    assert (check.name, check.group, check.status, check.critical) == (
        "roc_auc vs champion",
        "champion",
        "pass",
        True,
    )
    assert check.threshold == pytest.approx(report.summary["champion"] - 0.05)


def test_check_against_champion_worse_challenger(churn: Prepared, proba, random_proba) -> None:
    """A challenger worse than the champion minus max_regression fails."""
    report = check_against_champion(
        churn.holdout, random_proba, proba, churn.schema, "roc_auc", 0.05
    )
    (check,) = report.checks
    champion = report.summary["champion"]
    assert champion == pytest.approx(
        compute_metrics(churn.holdout["churned"], proba, [0, 1], 1)["roc_auc"], abs=1e-6
    )
    assert (check.status, check.blocking) == ("fail", True)
    assert check.threshold == pytest.approx(champion - 0.05)
    assert check.condition == f">= {champion - 0.05:.4g}"
    assert check.value < check.threshold


def test_check_against_champion_log_loss(churn: Prepared, proba, random_proba) -> None:
    """With log_loss the challenger may be at most the champion's plus max_regression."""
    worse = check_against_champion(
        churn.holdout, random_proba, proba, churn.schema, "log_loss", 0.05
    )
    (check,) = worse.checks
    assert check.name == "log_loss vs champion"
    assert check.status == "fail"
    assert check.threshold == pytest.approx(worse.summary["champion"] + 0.05)
    assert check.condition.startswith("<= ")
    assert check.value > check.threshold

    better = check_against_champion(
        churn.holdout, proba, random_proba, churn.schema, "log_loss", 0.05
    )
    assert [c.status for c in better.checks] == ["pass"]


# release_checks


def test_release_checks_without_champion(churn: Prepared, model) -> None:
    """With no champion, model quality runs and the contract and champion checks are skipped."""
    reports = release_checks(
        model, churn.train, churn.holdout, churn.schema, churn.settings.gate, "f1"
    )
    assert [r.title for r in reports] == ["Model quality on the holdout", "No champion yet"]
    assert [c.name for c in reports[0].checks] == ["roc_auc"]
    skipped = reports[1].checks
    assert [(c.name, c.group) for c in skipped] == [
        ("contract", "contract"),
        ("drift vs champion", "drift"),
        ("f1 vs champion", "champion"),
    ]
    assert {(c.status, c.critical, c.description) for c in skipped} == {
        ("skipped", False, "no champion yet")
    }


def test_release_checks_with_an_equal_champion(churn: Prepared, model) -> None:
    """A champion with the same model and data: no drift, and the comparison passes at par."""
    champion = SimpleNamespace(
        model=model, schema=churn.schema, train_data=churn.train, pathspec="TrainFlow/1"
    )
    reports = release_checks(
        model, churn.train, churn.holdout, churn.schema, churn.settings.gate, "roc_auc", champion
    )
    assert [r.title for r in reports] == [
        "Model quality on the holdout",
        "Contract",
        "Drift of the training data against the champion's",
        "Challenger vs champion on this holdout",
    ]
    assert [(c.id, c.status) for c in reports[1].checks] == [("contract.unchanged", "pass")]
    assert reports[2].summary == {"drifted_columns": []}
    (check,) = reports[3].checks
    assert reports[3].summary["champion"] == reports[3].summary["challenger"]
    assert check.status == "pass"
    assert check.threshold == pytest.approx(check.value - churn.settings.gate.max_regression)


@pytest.mark.parametrize("change", ["classes", "features"])
def test_release_checks_champion_not_comparable(
    churn: Prepared, model, contract: Prepared, contract_model, change: str
) -> None:
    """A champion with other classes, or other features, has another contract: the contract
    check fails naming the change, and drift and the comparison are skipped with why."""
    if change == "classes":
        champion = SimpleNamespace(
            model=contract_model,
            schema=contract.schema,
            train_data=contract.train,
            pathspec="TrainFlow/1",
        )
        mentioned = "classes ['month_to_month', 'one_year', 'two_year'] → ['0', '1']"
    else:
        schema = churn.schema.model_copy(update={"numeric": [*churn.schema.numeric, "loyalty"]})
        champion = SimpleNamespace(
            model=model, schema=schema, train_data=churn.train, pathspec="TrainFlow/1"
        )
        mentioned = "features removed: loyalty"
    reports = release_checks(
        model, churn.train, churn.holdout, churn.schema, churn.settings.gate, "roc_auc", champion
    )
    assert [r.title for r in reports][1:] == ["Contract changed"]
    contract_check, drift, comparison = reports[-1].checks
    assert (contract_check.status, contract_check.blocking) == ("fail", True)
    assert contract_check.description.startswith("changed from the champion TrainFlow/1: ")
    assert mentioned in contract_check.description
    assert (comparison.name, comparison.status, comparison.critical) == (
        "roc_auc vs champion",
        "skipped",
        False,
    )
    assert drift.status == comparison.status == "skipped"
    assert comparison.description == "the contract changed (see contract)"


def test_release_checks_sample_the_drift_check_and_say_so(churn: Prepared, model) -> None:
    """Above `[gate] sample_rows` the drift report is computed on a seeded sample and its
    note gives both sample sizes and the margin; the other reports use every row."""
    champion = SimpleNamespace(
        model=model, schema=churn.schema, train_data=churn.train, pathspec="TrainFlow/1"
    )
    gate = churn.settings.gate.model_copy(update={"sample_rows": 200})  # bypasses ge=1000
    reports = release_checks(
        model, churn.train, churn.holdout, churn.schema, gate, "roc_auc", champion
    )
    drift = reports[2]
    rows = f"{len(churn.train):,}"
    assert drift.note.startswith(f"Training data: a seeded random sample of 200 of {rows} rows")
    assert "percentage points" in drift.note
    assert [r.note for r in (reports[0], reports[3])] == ["", ""]
    assert f"<i>{html.escape(drift.note)}</i>" in render_reports([drift])


@pytest.fixture(scope="module")
def useless(churn: Prepared) -> Pipeline:
    """A challenger learnt from shuffled labels: no better than chance on true labels."""
    schema = churn.schema
    labels = np.random.default_rng(1).permutation(label_array(churn.train[schema.target]))
    return build_pipeline(LOGREG, schema, seed=0).fit(churn.train[schema.features], labels)


@pytest.mark.filterwarnings("ignore:Precision is ill-defined")  # the useless challenger
@pytest.mark.parametrize("poison", ["coin flips", "the challenger's ranking"])
def test_release_checks_guard_a_feedback_retrain_on_the_champion_holdout(
    churn: Prepared, model, useless, poison: str
) -> None:
    """A retrain with feedback is also compared on the champion's own holdout, which no
    feedback label can poison. Poisoned labels in this run's holdout make a useless
    challenger look as good as the champion: the guard check is critical and alone blocks
    it. Labels that make the challenger clearly better here (a changed world): the guard only
    warns. Without feedback the guard is not run, and the poisoned comparison promotes."""
    schema = churn.schema
    gate = churn.settings.gate.model_copy(update={"min_metrics": {}})  # the comparisons alone
    champion = SimpleNamespace(
        model=model,
        schema=schema,
        train_data=churn.train,
        holdout=churn.holdout,
        pathspec="TrainFlow/1",
    )
    poisoned = validate_dataset(generate_churn(1500, seed=31), schema)
    if poison == "coin flips":
        labels = np.random.default_rng(2).integers(0, 2, len(poisoned))
    else:
        scores = useless.predict_proba(poisoned[schema.features])[:, 1]
        labels = (scores > np.median(scores)).astype(int)  # the challenger ranks them best
    poisoned[schema.target] = labels
    args = (useless, churn.train, poisoned, schema, gate, "roc_auc", champion)

    reports = release_checks(*args, guard_with_champion_holdout=True)
    here, there = reports[-2], reports[-1]
    assert here.title == "Challenger vs champion on this holdout"
    assert there.title == "Challenger vs champion on the champion's own holdout"
    (guard,) = there.checks
    assert (guard.id, guard.name) == (
        CHAMPION_OWN_HOLDOUT,
        "roc_auc vs champion on the champion's own holdout",
    )
    own = churn.holdout[schema.target]
    features = churn.holdout[schema.features]
    assert there.summary["champion"] == pytest.approx(
        roc_auc_score(own, model.predict_proba(features)[:, 1])
    )
    assert guard.value == pytest.approx(roc_auc_score(own, useless.predict_proba(features)[:, 1]))
    assert guard.value < there.summary["champion"] - gate.max_regression
    verdict = decide_promotion(all_checks(reports), champion="TrainFlow/1", challenger="T/2")
    if poison == "coin flips":
        gap = here.summary["challenger"] - here.summary["champion"]
        assert abs(gap) <= gate.max_regression  # the poisoned comparison passes
        assert (guard.status, guard.critical, guard.blocking) == ("fail", True, True)
        assert verdict.decision == "block"
        assert [c.id for c in all_checks(reports) if c.blocking] == [CHAMPION_OWN_HOLDOUT]
        unguarded = all_checks(release_checks(*args))
        assert CHAMPION_OWN_HOLDOUT not in [c.id for c in unguarded]
        again = decide_promotion(unguarded, champion="TrainFlow/1", challenger="T/2")
        assert again.decision == "promote"  # what the guard is for
    else:
        assert here.summary["challenger"] - here.summary["champion"] > gate.max_regression
        assert (guard.status, guard.critical, guard.blocking) == ("warn", False, False)
        assert verdict.decision == "promote"


# render_reports


def test_render_reports_embeds_escaped_html(clean_report: QualityReport) -> None:
    """Each report is a titled iframe whose srcdoc is its HTML, escaped for an attribute."""
    made_up = QualityReport("Drift <current> & reference", [], '<p class="x">a & b</p>')
    text = render_reports([made_up, clean_report])
    assert text.count("<iframe") == 2
    assert text.index("Drift &lt;current&gt; &amp; reference") < text.index(
        "<h2>Data quality of the training data</h2>"
    )
    assert 'srcdoc="&lt;p class=&quot;x&quot;&gt;a &amp; b&lt;/p&gt;"' in text
    srcdocs = re.findall(r'srcdoc="([^"]*)"', text)
    assert [html.unescape(s) for s in srcdocs] == [made_up.html, clean_report.html]
    assert render_reports([]) == ""


@pytest.mark.parametrize(
    ("metrics", "shown"),
    [
        (["rmse", "rmse", "mae", "r2", "mape"], ["RMSE", "MAE", "R2Score"]),
        (["roc_auc", "accuracy", "f1", "log_loss"], ["RocAuc", "Accuracy", "F1Score"]),
    ],
    ids=["regression", "binary"],
)
def test_the_dashboard_charts_the_tasks_own_metrics(
    tmp_path, metrics: list[str], shown: list[str]
) -> None:
    """The workspace project's model-quality panel charts the monitored metric first and two
    more of the task's (a regression project's panel was empty: it charted roc_auc)."""
    from evidently.ui.workspace import Workspace

    from flowship.quality.workspace import save_to_workspace
    from flowship.tasks import METRICS

    project = save_to_workspace(str(tmp_path), "p", [], metrics)
    panels = Workspace(str(tmp_path)).get_project(project).dashboard.model().panels
    quality = next(p for p in panels if p.title.startswith("Model quality"))
    assert [v.metric.rsplit(":", 1)[-1] for v in quality.values] == shown
    assert shown == [METRICS[m].evidently for m in dict.fromkeys(metrics)][:3]
