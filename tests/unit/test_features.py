"""The preprocessor: scaled numbers, one-hot categories fixed by the schema, gaps handled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowship.features import build_preprocessor
from flowship.schema import MISSING, Schema


def _schema(numeric: list[str], categorical: list[str], categories: dict[str, list[str]]) -> Schema:
    return Schema(
        task="binary",
        target="y",
        id_column=None,
        numeric=numeric,
        categorical=categorical,
        classes=[0, 1],
        positive_class=1,
        categories=categories,
        numeric_ranges={c: (0.0, 1.0) for c in numeric},
    )


SCHEMA = _schema(["tenure"], ["region"], {"region": ["north", "south"]})
TRAIN = pd.DataFrame(
    {"tenure": [1.0, 2.0, 3.0, 4.0], "region": ["north", "south", "north", "south"]}
)


def _transform(schema: Schema, train: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Fit on `train`, transform `rows`, and label the output columns."""
    pre = build_preprocessor(schema).fit(train)
    return pd.DataFrame(pre.transform(rows), columns=pre.get_feature_names_out())


def test_output_columns_follow_the_schema() -> None:
    """Numbers are scaled; each known category and 'missing' get a one-hot column."""
    out = _transform(SCHEMA, TRAIN, TRAIN)
    assert list(out.columns) == [
        "numeric__tenure",
        "categorical__region_north",
        "categorical__region_south",
        f"categorical__region_{MISSING}",
    ]
    assert out["numeric__tenure"].mean() == pytest.approx(0.0)
    assert out["numeric__tenure"].std(ddof=0) == pytest.approx(1.0)
    assert out["categorical__region_north"].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_unknown_category_is_all_zeros() -> None:
    """A category never seen in training maps to all-zero one-hot columns, not an error."""
    out = _transform(SCHEMA, TRAIN, pd.DataFrame({"tenure": [2.0], "region": ["central"]}))
    region = out.filter(like="categorical__region_")
    assert region.to_numpy().tolist() == [[0.0, 0.0, 0.0]]


def test_missing_values_are_imputed_and_flagged() -> None:
    """A missing number takes the training median; a missing category its own column."""
    out = _transform(
        SCHEMA, TRAIN, pd.DataFrame({"tenure": [np.nan, 2.5], "region": [None, "north"]})
    )
    assert out["numeric__tenure"].tolist() == pytest.approx([0.0, 0.0])  # 2.5 is the median
    assert out[f"categorical__region_{MISSING}"].tolist() == [1.0, 0.0]
    assert out["categorical__region_north"].tolist() == [0.0, 1.0]


def test_missing_values_in_training_are_tolerated() -> None:
    """Gaps in the training rows do not stop the fit."""
    train = TRAIN.assign(tenure=[1.0, np.nan, 3.0, 5.0], region=["north", None, "south", "north"])
    out = _transform(SCHEMA, train, train)
    assert np.isfinite(out.to_numpy()).all()
    assert out[f"categorical__region_{MISSING}"].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_numbers_in_a_categorical_column_match_their_strings() -> None:
    """Integers given for a categorical column match the same values stored as strings."""
    schema = _schema([], ["plan"], {"plan": ["1", "2", "3"]})
    train = pd.DataFrame({"plan": ["1", "2", "3", "2"]})
    out = _transform(schema, train, pd.DataFrame({"plan": [2, 3]}))
    assert out.to_numpy().tolist() == [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]


def test_single_categorical_column_of_any_string_dtype() -> None:
    """One categorical column works as pandas strings, objects or a category dtype."""
    for dtype in ("str", object, "category"):
        rows = pd.DataFrame({"region": pd.Series(["south", None], dtype=dtype)})
        schema = _schema([], ["region"], {"region": ["north", "south"]})
        out = _transform(schema, rows, rows)
        assert out.to_numpy().tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype


def test_columns_outside_the_schema_are_dropped() -> None:
    """Extra input columns (ids, targets) never reach the model."""
    rows = TRAIN.assign(customer_id=["a", "b", "c", "d"], y=[0, 1, 0, 1])
    out = _transform(SCHEMA, rows, rows)
    assert out.shape == (4, 4)


def test_empty_schema_is_refused() -> None:
    """A schema without features cannot build a preprocessor."""
    with pytest.raises(ValueError, match="the schema has no features to preprocess"):
        build_preprocessor(_schema([], [], {}))


def test_text_becomes_sparse_tfidf_or_dense_components() -> None:
    """A text column is TF-IDF of its words (missing text is empty): sparse for estimators
    that take it, reduced to dense components for the others."""
    import scipy.sparse

    from flowship.config import TextSettings

    schema = _schema(["tenure"], [], {}).model_copy(update={"text": ["review"]})
    frame = pd.DataFrame(
        {
            "tenure": [1.0, 2.0, 3.0, 4.0],
            "review": ["great phone", "awful phone", None, "great battery life"],
        }
    )
    text = TextSettings(min_df=1, svd_components=2)
    sparse = build_preprocessor(schema, text).fit_transform(frame)
    assert scipy.sparse.issparse(sparse)
    assert sparse.shape[0] == 4 and sparse.shape[1] > 3  # tenure + a column per word/pair
    dense = build_preprocessor(schema, text, dense=True).fit_transform(frame)
    assert isinstance(dense, np.ndarray) and dense.shape == (4, 3)  # tenure + 2 components
