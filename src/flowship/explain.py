"""Explanations: how much each input feature moved one row's output away from the average
(SHAP values on the original features, computed with `shap`).

The output explained is the probability of the positive class (binary), of the predicted class
(multiclass), or the predicted value (regression); for every row
`base_value + sum(contributions) == output` within 1e-6, which `explain` checks.

The explainer is the one that fits the estimator, tried in this order:
- `tree`: `shap.TreeExplainer` (interventional, on the probability for classifiers), for every
  model shap reads as trees (scikit-learn's trees, forests and boosting, LightGBM, XGBoost, ...);
- `linear`: `shap.LinearExplainer`, for linear regressors (a linear classifier's probability is
  not linear in its features, so it is explained model-agnostically);
- `exact` / `permutation` (model-agnostic, any estimator): Shapley values over the original
  features, exact (every coalition) when the 2^features coalitions fit the budget
  (`[serving] explain_max_evals`), else from antithetic pairs of random permutations, about
  budget coalitions per row (at least one pair). These are the estimators of
  `shap.ExactExplainer` and `shap.PermutationExplainer` (a unit test compares them), computed
  here in NumPy: shap's compile their inner loops with numba, which costs seconds in every new
  process (each serving worker, each flow task). A coalition's value is the average output
  over the background rows (`[serving] explain_background_rows`), so a row costs at most
  budget × background rows predictions, in batches.
A tree or linear explanation whose sum misses the output by more than 1e-6 (shap reads some
models approximately, e.g. random forests' probabilities) is replaced by the model-agnostic one.

Every explainer works on the preprocessed columns; a feature's contribution is the sum over its
columns (a category's one-hot columns, a text column's TF-IDF or SVD columns). The
preprocessing is column-separable (each feature's columns depend only on that feature), which
the model-agnostic explainer uses to mix a row's and the background's columns feature by feature
without running the preprocessing again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from flowship.schema import Label, Schema

TOLERANCE = 1e-6
Method = Literal["tree", "linear", "exact", "permutation"]


@dataclass(frozen=True)
class Explanation:
    """One row's explanation: `base_value + sum(contributions.values()) == output`."""

    output: float
    base_value: float
    contributions: dict[str, float]
    label: Label | None = None  # the class whose probability is explained (classification)
    method: Method = "exact"


def feature_blocks(preprocess: Any, schema: Schema) -> list[np.ndarray]:
    """The preprocessed columns of each feature, in `schema.features` order.

    Raises:
        ValueError: the fitted preprocessing is not the layout flowship builds.
    """
    slices = preprocess.output_indices_
    blocks: list[np.ndarray] = []
    if schema.numeric:
        numeric = slices["numeric"]
        if numeric.stop - numeric.start != len(schema.numeric):
            raise ValueError("the numeric preprocessing dropped a column")
        blocks += [np.array([numeric.start + i]) for i in range(len(schema.numeric))]
    if schema.categorical:
        onehot = preprocess.named_transformers_["categorical"].named_steps["onehot"]
        start = slices["categorical"].start
        for categories in onehot.categories_:
            blocks.append(np.arange(start, start + len(categories)))
            start += len(categories)
    for column in schema.text:
        part = slices[f"text_{column}"]
        blocks.append(np.arange(part.start, part.stop))
    return blocks


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)


class RowExplainer:
    """Explains rows of one fitted pipeline against a background sample of its training rows.

    Args:
        pipeline: the model (`preprocess` + `model` steps).
        schema: its schema.
        background: training rows (the features); their average output is the base value.
        max_evals: the model-agnostic explainer's budget of model evaluations per row.
    """

    def __init__(
        self, pipeline: Any, schema: Schema, background: pd.DataFrame, max_evals: int = 1024
    ) -> None:
        if background.empty:
            raise ValueError("the explanation background has no rows")
        self.schema = schema
        self.preprocess = pipeline.named_steps["preprocess"]
        self.estimator = pipeline.named_steps["model"]
        self.blocks = feature_blocks(self.preprocess, schema)
        self.background = self.preprocess.transform(background[schema.features])
        self.max_evals = max_evals
        self.method: Method = "exact"
        self._shap_explainer: Any = None
        self._shap_explainer = self._fitted_explainer()

    def _fitted_explainer(self) -> Any:
        """shap's tree or linear explainer when the estimator is one it reads and its
        explanations add up on probe rows (`predict.probe_rows`), else None."""
        import shap

        task = self.schema.kind
        if self.background.shape[1] > 5000:  # wide sparse text: the model-agnostic one is cheaper
            return None
        background = _dense(self.background)
        output = "probability" if task.classifies else "raw"
        candidates: list[tuple[Method, Any]] = [
            # the average over the background rows is the base value, as in the agnostic one
            (
                "tree",
                lambda: shap.TreeExplainer(
                    self.estimator,
                    data=background,
                    feature_perturbation="interventional",
                    model_output=output,
                ),
            ),
            # the trees' own training cover (exact where shap's interventional reading is not,
            # e.g. scikit-learn's random forests)
            ("tree", lambda: shap.TreeExplainer(self.estimator)),
        ]
        if not task.classifies:
            masker = shap.maskers.Independent(background, max_samples=len(background))
            candidates.append(("linear", lambda: shap.LinearExplainer(self.estimator, masker)))
        from flowship.predict import frame_of, probe_rows

        # typical rows without missing values (not background rows either: explaining a
        # background row itself, or a value on a split threshold such as an imputed median,
        # trips shap's interventional reading of some ensembles; rows that do fall back to the
        # model-agnostic explainer one by one in `explain`)
        typical = [row for row in probe_rows(self.schema) if None not in row.values()][:4]
        probe = self.preprocess.transform(frame_of(typical, self.schema))
        for method, build in candidates:
            try:
                explainer = build()
            except (ValueError, NotImplementedError):  # InvalidModelError: not a model it reads
                continue
            self.method, self._shap_explainer = method, explainer
            outputs = task.outputs(self.estimator, probe)
            columns = task.explained_outputs(outputs, self.schema)
            picked = outputs if columns is None else outputs[np.arange(len(outputs)), columns]
            try:
                base, values = self._fitted_values(probe, columns)
            except (ValueError, IndexError):  # an output layout it cannot give
                continue
            if np.allclose(base + values.sum(axis=1), picked, rtol=0, atol=TOLERANCE):
                return explainer
        self.method = "exact" if 2 ** len(self.blocks) <= self.max_evals else "permutation"
        return None

    @property
    def agnostic(self) -> bool:
        """Whether rows are explained model-agnostically (costly: see `predictions_per_row`)."""
        return self._shap_explainer is None

    @property
    def predictions_per_row(self) -> int:
        """Rows the model-agnostic explainer predicts to explain one row (its cost)."""
        coalitions = min(2 ** len(self.blocks), max(self.max_evals, 2 * len(self.blocks) + 1))
        return coalitions * self.background.shape[0]

    def explain(self, frame: pd.DataFrame) -> list[Explanation]:
        """One explanation per row of `frame` (raw feature values, as the pipeline takes)."""
        if frame.empty:
            return []
        task = self.schema.kind
        rows = self.preprocess.transform(frame[self.schema.features])
        outputs = task.outputs(self.estimator, rows)
        columns = task.explained_outputs(outputs, self.schema)
        picked = outputs if columns is None else outputs[np.arange(len(outputs)), columns]
        base = np.full(len(frame), np.nan)
        contributions = np.full((len(frame), len(self.blocks)), np.nan)
        methods: list[Method] = [self.method] * len(frame)
        if self._shap_explainer is not None:
            base, contributions = self._fitted_values(rows, columns)
        misses = ~np.isclose(base + contributions.sum(axis=1), picked, rtol=0, atol=TOLERANCE)
        if misses.any():
            index = np.flatnonzero(misses)
            agnostic, method = self._agnostic_values(rows, index, columns)
            base[index], contributions[index] = agnostic
            for i in index:
                methods[i] = method
        names = self.schema.features
        classes = self.schema.classes
        return [
            Explanation(
                output=float(picked[i]),
                base_value=float(base[i]),
                contributions=dict(zip(names, map(float, contributions[i]), strict=True)),
                label=None if columns is None else classes[int(columns[i])],
                method=methods[i],
            )
            for i in range(len(frame))
        ]

    def _fitted_values(
        self, rows: Any, columns: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Base values and per-feature contributions from shap's tree or linear explainer."""
        explainer = self._shap_explainer
        extra = {"check_additivity": False} if self.method == "tree" else {}
        values = np.asarray(explainer.shap_values(_dense(rows), **extra))
        expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
        n = rows.shape[0]
        if values.ndim == 3 and values.shape[0] != n:  # older list-per-class layout
            values = np.moveaxis(values, 0, -1)
        if values.ndim == 2:  # one output: the value, or the probability of classes_[1]
            values = values[:, :, None]
            if columns is not None:  # binary: P(classes_[0]) = 1 - P(classes_[1])
                values = np.concatenate([-values, values], axis=2)
                expected = np.array([1.0 - expected[-1], expected[-1]])
        pick = np.zeros(n, dtype=int) if columns is None else columns
        chosen = values[np.arange(n), :, pick]  # rows × preprocessed columns
        base = expected[pick] if expected.size > 1 else np.full(n, expected[0])
        return base, np.stack([chosen[:, b].sum(axis=1) for b in self.blocks], axis=1)

    def _agnostic_values(
        self, rows: Any, index: np.ndarray, columns: np.ndarray | None
    ) -> tuple[tuple[np.ndarray, np.ndarray], Method]:
        """Shapley values over the original features for rows `index`: exact when every
        coalition fits the budget, else sampled permutations (antithetic pairs)."""
        features = len(self.blocks)
        exact = 2**features <= self.max_evals
        method: Method = "exact" if exact else "permutation"
        rng = np.random.default_rng(0)
        base = np.empty(len(index))
        values = np.empty((len(index), features))
        dense = _dense(rows) if not hasattr(rows, "tocsr") else rows.tocsr()
        for n, i in enumerate(index):
            row = dense[i : i + 1]
            column = None if columns is None else int(columns[i])
            if exact:
                base[n], values[n] = self._exact_row(row, column)
            else:
                base[n], values[n] = self._permutation_row(row, column, rng)
        return (base, values), method

    def _coalition_values(self, row: Any, masks: np.ndarray, column: int | None) -> np.ndarray:
        """v(S) for each coalition (a row of `masks`): the average output over the background
        rows with the features in S taken from `row`."""
        import scipy.sparse as sp

        task = self.schema.kind
        sparse = sp.issparse(self.background)
        size = self.background.shape[0]
        # per feature: its background columns, then the row's (index `size`)
        parts: list[Any] = [
            sp.vstack([self.background[:, b], row[:, b]]).tocsr()
            if sparse
            else np.vstack([self.background[:, b], row[:, b]])
            for b in self.blocks
        ]
        chunk = max(1, 200_000 // size)  # coalitions per model call
        out = np.empty(len(masks))
        for start in range(0, len(masks), chunk):
            part_masks = masks[start : start + chunk]
            background_index = np.tile(np.arange(size), len(part_masks))
            take = np.repeat(part_masks, size, axis=0)  # coalition-major, background-minor
            pieces = [
                part[np.where(take[:, j], size, background_index)] for j, part in enumerate(parts)
            ]
            matrix = sp.hstack(pieces).tocsr() if sparse else np.hstack(pieces)
            outputs = task.outputs(self.estimator, matrix)
            picked = outputs if column is None else outputs[:, column]
            means = picked.reshape(len(part_masks), size).mean(axis=1)
            out[start : start + len(part_masks)] = means
        return out

    def _exact_row(self, row: Any, column: int | None) -> tuple[float, np.ndarray]:
        """Exact Shapley values: every coalition, weighted |S|! (M-|S|-1)! / M!."""
        from math import factorial

        m = len(self.blocks)
        codes = np.arange(2**m)
        masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
        v = self._coalition_values(row, masks, column)
        sizes = masks.sum(axis=1)
        weight = np.array([factorial(k) * factorial(m - k - 1) / factorial(m) for k in range(m)])
        phi = np.empty(m)
        for j in range(m):
            without = ~masks[:, j]
            phi[j] = np.sum(weight[sizes[without]] * (v[codes[without] | (1 << j)] - v[without]))
        return float(v[0]), phi

    def _permutation_row(
        self, row: Any, column: int | None, rng: np.random.Generator
    ) -> tuple[float, np.ndarray]:
        """Shapley values estimated from antithetic pairs of random permutations: along each,
        a feature's contribution is the change of v when it joins; the contributions of one
        permutation sum to v(all) - v(none) exactly, so the estimate is additive."""
        m = len(self.blocks)
        pairs = max(1, self.max_evals // (2 * m))
        orders = []
        for _ in range(pairs):
            order = rng.permutation(m)
            orders += [order, order[::-1]]
        masks = [np.zeros(m, dtype=bool)]
        for order in orders:
            mask = np.zeros(m, dtype=bool)
            for j in order[:-1]:
                mask = mask.copy()
                mask[j] = True
                masks.append(mask)
        masks.append(np.ones(m, dtype=bool))
        v = self._coalition_values(row, np.array(masks), column)
        none, full = v[0], v[-1]
        phi = np.zeros(m)
        step = 1
        for order in orders:
            previous = none
            for j in order[:-1]:
                phi[j] += v[step] - previous
                previous = v[step]
                step += 1
            phi[order[-1]] += full - previous
        return float(none), phi / len(orders)


def background_sample(frame: pd.DataFrame, schema: Schema, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of training rows (the features) to explain against."""
    features = frame[schema.features]
    picked = features if len(features) <= rows else features.sample(n=rows, random_state=seed)
    return picked.reset_index(drop=True)


def explain_sample(
    explainer: RowExplainer, frame: pd.DataFrame, rows: int, max_predictions: int, seed: int
) -> list[Explanation]:
    """Explanations of a seeded sample of at most `rows` rows of `frame`, fewer when the
    model-agnostic explainer would predict more than `max_predictions` rows for them (a slow
    model explained on the training card must not take hours)."""
    if explainer.agnostic:
        rows = min(rows, max(1, max_predictions // explainer.predictions_per_row))
    picked = frame if len(frame) <= rows else frame.sample(n=rows, random_state=seed)
    return explainer.explain(picked)


def global_importance(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """Mean |contribution| per feature over explained rows, largest first (`attrs["rows"]`:
    how many rows)."""
    if not explanations:
        out = pd.DataFrame(columns=["feature", "mean_abs_shap"])
    else:
        table = pd.DataFrame([e.contributions for e in explanations]).abs().mean()
        out = table.rename("mean_abs_shap").rename_axis("feature").reset_index()
        out = out.sort_values("mean_abs_shap", ascending=False, kind="stable")
        out = out.reset_index(drop=True)
    out.attrs["rows"] = len(explanations)
    return out
