"""Resolving the schema, validating values, splitting and fingerprinting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowship.config import DataSettings
from flowship.data import (
    fingerprint_dataset,
    infer_schema,
    load_training_data,
    split_dataset,
    to_category_strings,
    validate_dataset,
)
from flowship.errors import DataValidationError
from flowship.sample_data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, generate_churn
from flowship.schema import Schema
from tests.unit.conftest import Prepared

CHURN = DataSettings(target="churned", id_column="customer_id")


def _labels(target: list, **columns: list) -> pd.DataFrame:
    """A tiny frame with one numeric feature `x` (unless given) and the target `y`."""
    return pd.DataFrame({"x": np.arange(len(target), dtype=float), **columns, "y": target})


# infer_schema


def test_infer_schema_from_dtypes_skips_date_id_and_target() -> None:
    """Numbers become numeric, strings categorical; the date, id and target are not features."""
    frame = generate_churn(60, seed=4)
    frame["has_partner"] = frame["age"].fillna(0) > 40
    schema = infer_schema(frame, CHURN)
    assert schema.numeric == list(NUMERIC_FEATURES)
    assert schema.categorical == [*CATEGORICAL_FEATURES, "has_partner"]
    assert schema.features == [*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, "has_partner"]
    assert schema.classes == [0, 1]
    assert schema.positive_class == 1
    assert schema.task == "binary"
    assert schema.categories["contract"] == ["month_to_month", "one_year", "two_year"]
    assert schema.categories["has_partner"] == ["False", "True"]
    assert schema.numeric_ranges["support_calls"] == (
        float(frame["support_calls"].min()),
        float(frame["support_calls"].max()),
    )


def test_infer_schema_uses_configured_lists() -> None:
    """Configured feature lists are taken as given, dtypes notwithstanding."""
    settings = DataSettings(
        target="churned", numeric_features=["age"], categorical_features=["num_products"]
    )
    schema = infer_schema(generate_churn(40, seed=4), settings)
    assert (schema.numeric, schema.categorical) == (["age"], ["num_products"])
    assert schema.categories["num_products"] == sorted(
        str(v) for v in generate_churn(40, seed=4)["num_products"].unique()
    )


def test_infer_schema_configured_column_missing() -> None:
    """A configured column the data lacks is named with its key and the available columns."""
    settings = DataSettings(target="churned", numeric_features=["age", "height"])
    with pytest.raises(
        DataValidationError,
        match=r"\[data\] numeric_features names column\(s\) \['height'\] that the data does not "
        r"have; available columns: \['customer_id'",
    ):
        infer_schema(generate_churn(20), settings)


def test_infer_schema_missing_target_column() -> None:
    """A target that is not a column is named with the [data] target key."""
    with pytest.raises(DataValidationError, match=r"\[data\] target names column\(s\) \['plan'\]"):
        infer_schema(generate_churn(20), DataSettings(target="plan"))


def test_infer_schema_one_class() -> None:
    """It refuses a dataset with one class."""
    with pytest.raises(
        DataValidationError,
        match=r"target column 'y' has one class \('no'\); a classifier needs at least two",
    ):
        infer_schema(_labels(["no", "no", "no"]), DataSettings(target="y"))


def test_infer_schema_missing_target_values() -> None:
    """Missing labels are counted and the fix is named."""
    with pytest.raises(
        DataValidationError,
        match=r"target column 'y' has 2 missing values; drop those rows or fill the labels",
    ):
        infer_schema(_labels([0, None, 1, None]), DataSettings(target="y"))


def test_infer_schema_feature_in_both_lists() -> None:
    """A column listed as numeric and categorical is refused, naming it."""
    settings = DataSettings(target="y", numeric_features=["x"], categorical_features=["x"])
    with pytest.raises(
        DataValidationError, match=r"columns \['x'\] are listed as both numeric and categorical"
    ):
        infer_schema(_labels([0, 1]), settings)


def test_infer_schema_target_as_feature() -> None:
    """Listing the target as a feature is refused."""
    settings = DataSettings(target="y", numeric_features=["x", "y"])
    with pytest.raises(
        DataValidationError, match=r"the target or id column \['y'\] is listed as a feature"
    ):
        infer_schema(_labels([0, 1]), settings)


def test_infer_schema_without_features() -> None:
    """A table with only an id, a date and a target has no features to infer."""
    frame = pd.DataFrame(
        {"id": ["a", "b"], "day": pd.to_datetime(["2026-01-01", "2026-01-02"]), "y": [0, 1]}
    )
    with pytest.raises(
        DataValidationError, match=r"no feature columns: list \[data\] numeric_features"
    ):
        infer_schema(frame, DataSettings(target="y", id_column="id"))


def test_text_features_given_as_numbers_are_refused_naming_the_column() -> None:
    """A column listed as text that holds numbers (star ratings) is refused by infer_schema,
    naming it and where it belongs; a text column that arrives as numbers later (a table
    validated against the schema) is refused too. Words with gaps are text."""
    ratings = _labels([0, 1, 0, 1], review=[5, 3, None, 1])
    listed = DataSettings(target="y", numeric_features=["x"], text_features=["review"])
    with pytest.raises(
        DataValidationError,
        match=r"^text feature 'review' holds numbers \(e\.g\. 5\.0\); move it to \[data\] "
        "numeric_features or categorical_features$",
    ):
        infer_schema(ratings, listed)
    words = ratings.assign(review=["great", "bad", None, "fine"])
    schema = infer_schema(words, listed)
    assert schema.text == ["review"] and schema.text_lengths == {"review": (0, 5)}
    with pytest.raises(DataValidationError, match=r"^text feature 'review' holds numbers; move"):
        validate_dataset(ratings, schema)
    clean = validate_dataset(words, schema)
    assert clean["review"].tolist()[:2] == ["great", "bad"] and pd.isna(clean["review"][2])


def test_float_coded_labels_become_integers() -> None:
    """Labels read as 0.0/1.0 are the classes 0 and 1."""
    schema = infer_schema(_labels([0.0, 1.0, 1.0]), DataSettings(target="y"))
    assert schema.classes == [0, 1]
    assert type(schema.classes[0]) is int


@pytest.mark.parametrize(
    ("labels", "configured", "expected"),
    [
        ([0, 1, 1], None, 1),
        (["no", "yes", "no"], None, "yes"),
        ([False, True, True], None, True),
        ([0, 1, 1], 0, 0),
        ([0, 1, 1], "0", 0),
        (["no", "yes", "no"], "no", "no"),
    ],
)
def test_positive_class(labels: list, configured: object, expected: object) -> None:
    """The last sorted class is positive by default; [data] positive_class overrides it."""
    schema = infer_schema(_labels(labels), DataSettings(target="y", positive_class=configured))
    assert schema.positive_class == expected
    assert type(schema.positive_class) is type(expected)


def test_positive_class_not_a_class() -> None:
    """A positive_class that is not a label is refused, listing the classes."""
    with pytest.raises(
        DataValidationError,
        match=r"\[data\] positive_class = 'yes' is not a target class; classes: \[0, 1\]",
    ):
        infer_schema(_labels([0, 1, 0]), DataSettings(target="y", positive_class="yes"))


def test_multiclass_has_no_positive_class() -> None:
    """Three string classes make a multiclass task without a positive class."""
    schema = infer_schema(_labels(["b", "a", "c", "a"]), DataSettings(target="y"))
    assert schema.classes == ["a", "b", "c"]
    assert schema.task == "multiclass"
    assert schema.positive_class is None


# validate_dataset


def test_validate_dataset_keeps_float64_without_downcast() -> None:
    """`[data] downcast = false` keeps full precision for values float32 would round."""
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "n": [123456789.25, 1.0, 2.0, 3.0]})
    settings = DataSettings(target="y", numeric_features=["n"], categorical_features=[])
    schema = infer_schema(frame, settings)
    assert validate_dataset(frame, schema, downcast=False)["n"].iloc[0] == 123456789.25
    downcast = validate_dataset(frame, schema)["n"]
    assert downcast.dtype == np.float32
    assert downcast.iloc[0] == pytest.approx(123456789.25, rel=1e-7)


def test_validate_dataset_categories_of_values_that_print_alike() -> None:
    """1 and "1" are one category "1" (as the service sees them), not two."""
    frame = pd.DataFrame({"y": [0, 1, 0, 1], "c": [1, "1", "a", None]})
    settings = DataSettings(target="y", numeric_features=[], categorical_features=["c"])
    clean = validate_dataset(frame, infer_schema(frame, settings))
    assert list(clean["c"].cat.categories) == ["1", "a"]
    assert clean["c"].iloc[:3].tolist() == ["1", "1", "a"]
    assert pd.isna(clean["c"].iloc[3])


def test_validate_dataset_cleans_dtypes() -> None:
    """Numeric features become float32, categories strings with missing kept, ids first."""
    frame = pd.DataFrame(
        {
            "y": [1, 0, 1],
            "code": [3, None, 7],
            "n": ["1.5", "2", None],
            "id": ["a", "b", "c"],
        }
    )
    original = frame.copy()
    settings = DataSettings(
        target="y", id_column="id", numeric_features=["n"], categorical_features=["code"]
    )
    clean = validate_dataset(frame, infer_schema(frame, settings))
    assert list(clean.columns) == ["id", "n", "code", "y"]
    assert clean["n"].dtype == np.float32
    assert clean["n"].iloc[:2].tolist() == [1.5, 2.0]
    assert np.isnan(clean["n"].iloc[2])
    assert clean["code"].iloc[0] == "3"  # as a client sends it (3, not 3.0): one category text
    assert clean["code"].isna().tolist() == [False, True, False]
    assert clean["y"].tolist() == [1, 0, 1]
    pd.testing.assert_frame_equal(frame, original)  # the input is left alone


def test_validate_dataset_non_numeric_strings() -> None:
    """Text in a numeric column names the column, an example and where to move it."""
    frame = pd.DataFrame({"age": ["34", "n/a", "41", "n/a"], "y": [0, 1, 0, 1]})
    settings = DataSettings(target="y", numeric_features=["age"])
    with pytest.raises(
        DataValidationError,
        match=r"numeric feature 'age' has 2 non-numeric value\(s\), e\.g\. 'n/a'; clean the "
        r"source or move the column to \[data\] categorical_features",
    ):
        validate_dataset(frame, infer_schema(frame, settings))


@pytest.mark.parametrize(("ids", "shown"), [(["a", "b", "a"], "'a'"), ([7, 8, 7], "7")])
def test_validate_dataset_duplicated_ids(ids: list, shown: str) -> None:
    """Repeated ids name the id column and a repeated value, as the table shows it."""
    frame = _labels([0, 1, 0], id=ids)
    schema = infer_schema(frame, DataSettings(target="y", id_column="id"))
    with pytest.raises(
        DataValidationError,
        match=rf"id column 'id' has 1 duplicated value\(s\), e\.g\. {shown}; ids must be unique",
    ):
        validate_dataset(frame, schema)


def test_validate_dataset_missing_feature_column(churn: Prepared) -> None:
    """A frame without a schema's feature cannot be validated against it."""
    with pytest.raises(KeyError, match="age"):
        validate_dataset(churn.frame.drop(columns=["age"]), churn.schema)


def test_to_category_strings_keeps_missing() -> None:
    """Numbers and strings become Python strings; missing stays NaN."""
    out = to_category_strings(pd.Series([1, None, 3.5, "x"], dtype=object))
    assert out.dtype == object
    assert out.iloc[[0, 2, 3]].tolist() == ["1", "3.5", "x"]
    assert out.isna().tolist() == [False, True, False, False]


# split_dataset


def test_split_dataset_is_stratified_and_seeded(churn: Prepared) -> None:
    """Both parts keep the class shares within 2%, and a seed gives the same split."""
    train, holdout = split_dataset(churn.frame, churn.schema, test_size=0.25, seed=1)
    assert (len(train), len(holdout)) == (450, 150)
    overall = churn.frame["churned"].astype(int).mean()
    assert abs(train["churned"].astype(int).mean() - overall) < 0.02
    assert abs(holdout["churned"].astype(int).mean() - overall) < 0.02
    assert set(train["customer_id"]).isdisjoint(holdout["customer_id"])
    again, _ = split_dataset(churn.frame, churn.schema, test_size=0.25, seed=1)
    pd.testing.assert_frame_equal(train, again)
    other, _ = split_dataset(churn.frame, churn.schema, test_size=0.25, seed=2)
    assert train["customer_id"].tolist() != other["customer_id"].tolist()


def test_split_dataset_refuses_a_single_row_class() -> None:
    """A class with one row cannot be on both sides, and the message says so."""
    frame = _labels([0, 0, 0, 0, 0, 1])
    schema = infer_schema(frame, DataSettings(target="y"))
    with pytest.raises(
        DataValidationError,
        match=r"cannot split 6 rows with classes \{0: 5, 1: 1\}.*every class needs at least 2",
    ):
        split_dataset(frame, schema, test_size=0.5, seed=0)


def test_split_dataset_refuses_a_training_part_smaller_than_the_classes() -> None:
    """Three classes cannot fit a two-row training part; it refuses rather than crash."""
    frame = _labels(["a", "a", "b", "b", "c", "c"])
    schema = infer_schema(frame, DataSettings(target="y"))
    with pytest.raises(DataValidationError, match=r"cannot split 6 rows .* at test_size=0\.6"):
        split_dataset(frame, schema, test_size=0.6, seed=0)
    train, holdout = split_dataset(frame, schema, test_size=0.5, seed=0)
    assert sorted(train["y"]) == sorted(holdout["y"]) == ["a", "b", "c"]


# fingerprint_dataset and load_training_data


def test_fingerprint_is_stable_and_changes_with_one_value(churn: Prepared) -> None:
    """A copy has the same fingerprint; changing one value or the column order changes it."""
    first = fingerprint_dataset(churn.frame)
    assert len(first) == 16
    assert fingerprint_dataset(churn.frame.copy()) == first
    changed = churn.frame.copy()
    changed.loc[17, "age"] = changed.loc[17, "age"] + 1
    assert fingerprint_dataset(changed) != first
    assert fingerprint_dataset(churn.frame[churn.frame.columns[::-1]]) != first


def test_fingerprint_of_a_non_frame() -> None:
    """Only a DataFrame has a fingerprint."""
    with pytest.raises(AttributeError, match="columns"):
        fingerprint_dataset([1, 2, 3])  # type: ignore[arg-type]


def test_load_training_data_reads_validates_and_fingerprints(tmp_path: Path) -> None:
    """A configured CSV loads with only its listed columns, cleaned and fingerprinted."""
    generate_churn(80, seed=6).to_csv(tmp_path / "customers.csv", index=False)
    settings = DataSettings(
        source=str(tmp_path / "customers.csv"),
        target="churned",
        id_column="customer_id",
        numeric_features=["tenure_months", "age"],
        categorical_features=["region"],
    )
    loaded = load_training_data(settings, max_missing_share=0.2)
    assert list(loaded.frame.columns) == [
        "customer_id",
        "tenure_months",
        "age",
        "region",
        "churned",
    ]
    assert len(loaded.frame) == 80
    assert loaded.schema == Schema.model_validate(loaded.schema.model_dump())
    assert loaded.schema.features == ["tenure_months", "age", "region"]
    assert loaded.fingerprint == fingerprint_dataset(loaded.frame)
    assert load_training_data(settings, max_missing_share=0.2).fingerprint == loaded.fingerprint


def test_load_training_data_empty_file(tmp_path: Path) -> None:
    """A file with a header and no rows is refused as empty."""
    (tmp_path / "empty.csv").write_text("x,y\n")
    settings = DataSettings(source=str(tmp_path / "empty.csv"), target="y")
    with pytest.raises(DataValidationError, match=r"\[data\] source '.*empty\.csv' has no rows"):
        load_training_data(settings, max_missing_share=0.2)


def test_load_training_data_drops_rows_without_a_usable_target(tmp_path: Path) -> None:
    """Missing and infinite targets below [gate] max_missing_share are dropped and counted."""
    frame = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.linspace(1.0, 9.5, 20)})
    frame.loc[[3, 7], "y"] = [np.nan, np.inf]
    frame.to_csv(tmp_path / "t.csv", index=False)
    settings = DataSettings(source=str(tmp_path / "t.csv"), target="y", task="regression")
    loaded = load_training_data(settings, max_missing_share=0.2)
    assert (len(loaded.frame), loaded.dropped_rows) == (18, 2)
    assert loaded.schema.task == "regression" and loaded.frame["y"].dtype == "float64"
    with pytest.raises(DataValidationError, match=r"target column 'y' has 1 missing values"):
        load_training_data(settings, max_missing_share=0.05)


def test_infer_schema_regression_target() -> None:
    """A non-integer numeric target is regression under auto: no classes, no positive class,
    and the card can say why."""
    schema = infer_schema(_labels([0.5, 1.5, 2.25, 3.0]), DataSettings(target="y"))
    assert (schema.task, schema.classes, schema.positive_class) == ("regression", [], None)
    assert schema.task_reason == "auto: numeric target with non-integer values → regression"
    with pytest.raises(DataValidationError, match=r"positive_class = 1 is only for binary"):
        infer_schema(_labels([0.5, 1.5, 2.25]), DataSettings(target="y", positive_class=1))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.inf, r"numeric feature 'x' has 1 infinite value\(s\); replace them"),
        (1e39, r"numeric feature 'x' has 1 value\(s\) too large for float32 .* downcast = false"),
    ],
)
def test_validate_dataset_refuses_what_float32_cannot_hold(value: float, message: str) -> None:
    frame = _labels([0, 1, 0, 1])
    frame.loc[2, "x"] = value
    schema = infer_schema(frame, DataSettings(target="y"))
    with pytest.raises(DataValidationError, match=message):
        validate_dataset(frame, schema)
    if not np.isinf(value):
        assert validate_dataset(frame, schema, downcast=False)["x"].iloc[2] == value


def test_a_file_of_other_columns_names_the_missing_ones(tmp_path: Path) -> None:
    """Not "has no rows": the configured columns it lacks, and the ones it has."""
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(tmp_path / "other.csv", index=False)
    settings = DataSettings(source=str(tmp_path / "other.csv"), target="y", numeric_features=["x"])
    with pytest.raises(DataValidationError, match=r"names column\(s\) \['y'\].*available columns"):
        load_training_data(settings, max_missing_share=0.2)


def test_a_class_too_rare_for_the_validation_split_is_named() -> None:
    """Two rows of a class fit the holdout split but not the candidates' validation split:
    the error names the class, not "no candidate produced a usable validation score"."""
    frame = _labels([0] * 40 + [1] * 40 + [2] * 2)
    schema = infer_schema(frame, DataSettings(target="y"))
    clean = validate_dataset(frame, schema)
    with pytest.raises(DataValidationError, match=r"class\(es\) \[2\] of 'y' have only 2 row"):
        split_dataset(clean, schema, 0.5, seed=0, validation_size=0.5)
