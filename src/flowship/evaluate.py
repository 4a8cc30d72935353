"""Holdout metrics (classification and regression), permutation importances (scikit-learn)
and the predict latency the gate checks, as plain values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance

if TYPE_CHECKING:
    from flowship.checks import QualityReport
    from flowship.config import GateSettings
    from flowship.schema import Schema


def compute_metrics(
    y_true: Sequence[Any] | pd.Series,
    proba: np.ndarray,
    classes: Sequence[Any],
    positive_class: Any = None,
    only: str | None = None,
) -> dict[str, float]:
    """Holdout metrics from predicted probabilities (just `only`, when named).

    Binary metrics (f1, precision, recall) use `positive_class`; multiclass ones are macro
    averages and roc_auc is one-vs-rest. The predicted label is the most probable class.

    Args:
        y_true: true labels.
        proba: probabilities, one column per class in the order of `classes`.
        classes: the class labels (sorted as the model saw them).
        positive_class: the positive label of a binary task (None for multiclass).
        only: compute this metric alone (a bootstrap computes one metric many times).

    Raises:
        ValueError: the shapes of `y_true`, `proba` and `classes` disagree.
    """
    y = np.asarray(list(y_true), dtype=object)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape != (len(y), len(classes)):
        raise ValueError(
            f"proba has shape {proba.shape}, expected ({len(y)}, {len(classes)}) for "
            f"{len(y)} labels and classes {list(classes)}"
        )
    index = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([index.get(v, -1) for v in y])
    if (y_idx < 0).any():
        unknown = sorted({str(v) for v in y[y_idx < 0]})
        raise ValueError(f"labels {unknown} are not among the model's classes {list(classes)}")
    present = np.unique(y_idx)
    p_idx = proba.argmax(axis=1)
    label_ids = list(range(len(classes)))
    metrics: dict[str, Callable[[], float]] = {
        "accuracy": lambda: skm.accuracy_score(y_idx, p_idx),
        "log_loss": lambda: skm.log_loss(y_idx, proba, labels=label_ids),
    }
    if len(classes) == 2:
        pos = index[positive_class if positive_class is not None else classes[-1]]
        y_bin, p_bin = (y_idx == pos).astype(int), (p_idx == pos).astype(int)
        metrics |= {
            "roc_auc": lambda: (
                skm.roc_auc_score(y_bin, proba[:, pos]) if len(present) == 2 else float("nan")
            ),
            "f1": lambda: skm.f1_score(y_bin, p_bin, zero_division=0),
            "precision": lambda: skm.precision_score(y_bin, p_bin, zero_division=0),
            "recall": lambda: skm.recall_score(y_bin, p_bin, zero_division=0),
        }
    else:
        avg: dict[str, Any] = dict(labels=label_ids, average="macro", zero_division=0)
        metrics |= {
            "f1": lambda: skm.f1_score(y_idx, p_idx, **avg),
            "precision": lambda: skm.precision_score(y_idx, p_idx, **avg),
            "recall": lambda: skm.recall_score(y_idx, p_idx, **avg),
            "roc_auc": lambda: (
                skm.roc_auc_score(y_idx, proba, multi_class="ovr", labels=label_ids)
                if len(present) == len(classes)
                else float("nan")
            ),
        }
    names = [only] if only is not None else list(metrics)
    return {name: float(metrics[name]()) for name in names}


def compute_regression_metrics(
    y_true: Sequence[Any] | pd.Series, values: np.ndarray, only: str | None = None
) -> dict[str, float]:
    """rmse, mae, r2 and mape (in percent, as Evidently reports it) of predicted values (just
    `only`, when named).

    Raises:
        ValueError: the lengths differ, or a true value is not a number.
    """
    y = np.asarray(list(y_true), dtype=float)
    predicted = np.asarray(values, dtype=float).reshape(-1)
    if len(y) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(y)} true values")
    metrics: dict[str, Callable[[], float]] = {
        "rmse": lambda: np.sqrt(skm.mean_squared_error(y, predicted)),
        "mae": lambda: skm.mean_absolute_error(y, predicted),
        "r2": lambda: skm.r2_score(y, predicted) if len(y) > 1 else float("nan"),
        "mape": lambda: 100 * skm.mean_absolute_percentage_error(y, predicted),
    }
    names = [only] if only is not None else list(metrics)
    return {name: float(metrics[name]()) for name in names}


def compute_importances(
    model: Any,
    features: pd.DataFrame,
    y_true: pd.Series,
    scorer: Callable[[Any, pd.DataFrame, pd.Series], float],
    seed: int,
    max_rows: int,
    n_repeats: int = 5,
) -> pd.DataFrame:
    """Permutation importance of each raw input column on (a seeded sample of) the holdout.

    Args:
        scorer: `scorer(model, X, y)`, higher is better (`Task.scorer` of the metric).

    Returns:
        One row per feature: `feature`, `importance` (mean drop of the metric, in the
        metric's better-is-higher direction) and `std`, most important first.
    """
    if len(features) == 0:
        raise ValueError("cannot compute importances on an empty frame")
    if len(features) > max_rows:
        sample = features.sample(n=max_rows, random_state=seed).index
        features, y_true = features.loc[sample], y_true.loc[sample]

    result = permutation_importance(
        model, features, y_true, scoring=scorer, n_repeats=n_repeats, random_state=seed
    )
    table = pd.DataFrame(
        {
            "feature": list(features.columns),
            "importance": result.importances_mean,
            "std": result.importances_std,
        }
    )
    return table.sort_values(["importance", "feature"], ascending=[False, True]).reset_index(
        drop=True
    )


@dataclass(frozen=True)
class Latency:
    """In-process predict latency of a model on the service's path, one thread."""

    row_median_ms: float
    row_p99_ms: float
    batch_median_ms: float
    batch_p99_ms: float
    row_calls: int
    batch_calls: int
    batch_rows: int = 100

    def describe(self) -> str:
        return (
            f"1 row: median {self.row_median_ms:.2f} ms, p99 {self.row_p99_ms:.2f} ms over "
            f"{self.row_calls} calls; {self.batch_rows} rows: median "
            f"{self.batch_median_ms:.2f} ms, p99 {self.batch_p99_ms:.2f} ms over "
            f"{self.batch_calls} calls (one thread)"
        )


def measure_latency(
    model: Any, schema: Schema, frame: pd.DataFrame, calls: int, budget_s: float = 3.0
) -> Latency:
    """Time `predict_rows` (the service's prediction path, with its fast path when it holds)
    on one thread: `calls` single-row and `calls` 100-row predictions of rows of `frame`, or
    as many as fit in `budget_s` per size (at least 10), so a slow model is measured quickly.
    """
    import time

    from threadpoolctl import threadpool_limits

    from flowship.predict import FastPredictor, predict_rows, probe_rows

    records = records_of(frame, schema)
    if not records:
        raise ValueError("cannot measure latency on an empty frame")
    batch = [records[i % len(records)] for i in range(100)]
    timings: dict[int, list[float]] = {1: [], 100: []}
    with threadpool_limits(limits=1):
        fast = FastPredictor.build(model, schema, probe_rows(schema))
        for size, times in timings.items():
            started = time.perf_counter()
            for i in range(calls):
                rows = [records[i % len(records)]] if size == 1 else batch
                t0 = time.perf_counter()
                predict_rows(model, schema, rows, fast)
                times.append(1000 * (time.perf_counter() - t0))
                if i >= 9 and time.perf_counter() - started > budget_s:
                    break
    row, many = np.asarray(timings[1]), np.asarray(timings[100])
    return Latency(
        row_median_ms=float(np.median(row)),
        row_p99_ms=float(np.percentile(row, 99)),
        batch_median_ms=float(np.median(many)),
        batch_p99_ms=float(np.percentile(many, 99)),
        row_calls=len(row),
        batch_calls=len(many),
    )


def latency_report(latency: Latency, gate: GateSettings) -> QualityReport:
    """The latency checks of the gate: each p99 against its limit; critical only with
    `[gate] latency_blocks` (a warning otherwise)."""
    from flowship.checks import LATENCY_BATCH, LATENCY_ROW, QualityReport, make_check

    checks = [
        make_check(
            check_id,
            "pass" if p99 <= limit else "fail",
            critical=gate.latency_blocks,
            value=p99,
            threshold=limit,
            condition=f"<= {limit:g}",
            description=latency.describe(),
        )
        for check_id, p99, limit in (
            (LATENCY_ROW, latency.row_p99_ms, gate.max_latency_ms),
            (LATENCY_BATCH, latency.batch_p99_ms, gate.max_batch_latency_ms),
        )
    ]
    return QualityReport("Predict latency (in process, one thread)", checks, "")


def records_of(frame: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    """Rows as a client sends them: the features, missing values as None."""
    features = frame[schema.features].astype(object)
    return features.where(features.notna(), None).to_dict(orient="records")
