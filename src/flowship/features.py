"""The preprocessing `ColumnTransformer` built from a schema: raw rows in, model features out.

Numbers are imputed and scaled, categories one-hot encoded, and each text column becomes
TF-IDF of its words (sparse: it reaches estimators that take sparse input whole, and is
reduced with TruncatedSVD for those that take only dense input)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from flowship.config import TextSettings
from flowship.schema import MISSING, Schema, category_text


class _AsStrings(TransformerMixin, BaseEstimator):
    """Cast categorical inputs to their category text (`schema.category_text`), so a number
    and a string of one value agree; missing becomes `MISSING`."""

    def fit(self, X: Any, y: Any = None) -> _AsStrings:
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=object)
        for j, column in enumerate(frame.columns):
            values = frame[column]
            if isinstance(values.dtype, pd.CategoricalDtype):  # one conversion per category
                names = [category_text(c) for c in values.cat.categories]
                text = pd.Series(np.asarray(names, dtype=object)[values.cat.codes.to_numpy()])
                text[values.cat.codes.to_numpy() < 0] = MISSING
            else:
                text = values.map(category_text, na_action="ignore").where(values.notna(), MISSING)
            out[:, j] = text.to_numpy(dtype=object)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def as_float64(X: Any) -> np.ndarray:
    """Numbers in float64 whatever the table stored (float32 after downcasting): training,
    holdout scoring and serving then do the same arithmetic on the same values."""
    return np.asarray(X, dtype=np.float64)


def as_text(X: Any) -> np.ndarray:
    """One text column as strings, missing as the empty string (TF-IDF takes 1-D text)."""
    values = pd.Series(np.asarray(X, dtype=object).reshape(-1))
    return values.where(values.notna(), "").astype(str).to_numpy(dtype=object)


class TextReduction(TransformerMixin, BaseEstimator):
    """TruncatedSVD of a TF-IDF matrix to at most `components` dense columns (fewer when the
    vocabulary is smaller), for estimators that cannot take sparse input."""

    def __init__(self, components: int = 100, random_state: int = 0) -> None:
        self.components = components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> TextReduction:
        from sklearn.decomposition import TruncatedSVD

        k = max(1, min(self.components, X.shape[1] - 1))
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state).fit(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(self.svd_.transform(X))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"svd{i}" for i in range(self.svd_.n_components)], dtype=object)


def text_pipeline(text: TextSettings, dense: bool, seed: int = 0) -> Pipeline:
    """One text column: strings (missing as ""), TF-IDF of word n-grams (lowercase, accents
    stripped, capped vocabulary), reduced to dense components when `dense`."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    steps: list[tuple[str, Any]] = [
        ("strings", FunctionTransformer(as_text)),
        (
            "tfidf",
            TfidfVectorizer(
                lowercase=True,
                strip_accents="unicode",
                ngram_range=(1, text.ngram_max),
                max_features=text.max_features,
                min_df=text.min_df,
                sublinear_tf=True,
            ),
        ),
    ]
    if dense:
        steps.append(("svd", TextReduction(text.svd_components, seed)))
    return Pipeline(steps)


def build_preprocessor(
    schema: Schema, text: TextSettings | None = None, dense: bool = False
) -> ColumnTransformer:
    """Numeric: float64, median impute, scale. Categorical: fill missing, one-hot, unknowns ignored.
    Text: TF-IDF per column (`text`), reduced to dense components when `dense`.

    The known categories are fixed from the schema, so a category never seen in training
    maps to all zeros at prediction time instead of failing. With text features and not
    `dense`, the output is a sparse matrix.

    Raises:
        ValueError: the schema has no features.
    """
    if not schema.features:
        raise ValueError("the schema has no features to preprocess")
    transformers: list[tuple[str, Any, Any]] = []
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
    for column in schema.text:
        # a column name (not a list): TF-IDF gets the 1-D column it needs
        transformers.append(
            (f"text_{column}", text_pipeline(text or TextSettings(), dense), column)
        )
    sparse = 1.0 if schema.text and not dense else 0.0
    return ColumnTransformer(
        transformers, remainder="drop", verbose_feature_names_out=True, sparse_threshold=sparse
    )
