"""The preprocessing `ColumnTransformer` built from a schema: raw rows in, model features out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from flowship.schema import Schema

MISSING = "__missing__"


class _AsStrings(TransformerMixin, BaseEstimator):
    """Cast categorical inputs to Python strings so numbers and strings of one value agree."""

    def fit(self, X: Any, y: Any = None) -> _AsStrings:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        # copy: a one-column frame hands out a read-only view of its data.
        out = frame.astype(str).to_numpy(dtype=object, copy=True)
        out[frame.isna().to_numpy()] = MISSING
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def as_float64(X: Any) -> np.ndarray:
    """Numbers in float64 whatever the table stored (float32 after downcasting): training,
    holdout scoring and serving then do the same arithmetic on the same values."""
    return np.asarray(X, dtype=np.float64)


def build_preprocessor(schema: Schema) -> ColumnTransformer:
    """Numeric: float64, median impute, scale. Categorical: fill missing, one-hot, unknowns ignored.

    The known categories are fixed from the schema, so a category never seen in training
    maps to all zeros at prediction time instead of failing.

    Raises:
        ValueError: the schema has no features.
    """
    if not schema.features:
        raise ValueError("the schema has no features to preprocess")
    transformers: list[tuple[str, Any, list[str]]] = []
    if schema.numeric:
        numeric = Pipeline(
            [
                ("float64", FunctionTransformer(as_float64, feature_names_out="one-to-one")),
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("numeric", numeric, list(schema.numeric)))
    if schema.categorical:
        categories = [[*schema.categories[c], MISSING] for c in schema.categorical]
        categorical = Pipeline(
            [
                ("strings", _AsStrings()),
                (
                    "onehot",
                    OneHotEncoder(
                        categories=categories,
                        handle_unknown="ignore",
                        sparse_output=False,
                        dtype=np.float32,
                    ),
                ),
            ]
        )
        transformers.append(("categorical", categorical, list(schema.categorical)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
