"""Candidate specs from the config, fitting one candidate, choosing the best, assessing it."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from flowship.config import TrainingSettings
from flowship.errors import ConfigError
from flowship.estimators import allowed_params, get_estimator, make_estimator
from flowship.evaluate import compute_importances, compute_metrics
from flowship.features import build_preprocessor
from flowship.schema import Schema, proba_column
from flowship.tasks import get_metric


@dataclass(frozen=True)
class CandidateSpec:
    """One point of one candidate's grid: what `fit_candidate` trains."""

    name: str
    family: str
    estimator: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's validation metrics (measured on a split of the training part)."""

    spec: CandidateSpec
    metric: str
    value: float
    metrics: dict[str, float]
    fit_seconds: float

    @property
    def score(self) -> float:
        return get_metric(self.metric).score(self.value)


@dataclass(frozen=True)
class Selection:
    """The chosen candidate refitted on the whole training part, and the leaderboard."""

    best: CandidateResult
    model: Pipeline
    leaderboard: pd.DataFrame


@dataclass(frozen=True)
class Assessment:
    """How the chosen model does on the holdout, next to a majority-class baseline."""

    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    importances: pd.DataFrame
    predictions: pd.DataFrame


def _spec_name(family: str, params: dict[str, Any]) -> str:
    if not params:
        return family
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{family}[{inner}]"


def expand_candidates(training: TrainingSettings) -> list[CandidateSpec]:
    """Expand every candidate's parameter grid into specs, checking each parameter.

    Raises:
        ConfigError: a parameter the estimator does not have, or a value it refuses.
    """
    specs: list[CandidateSpec] = []
    for i, candidate in enumerate(training.candidates):
        allowed = allowed_params(candidate.estimator)
        unknown = sorted(set(candidate.params) - allowed)
        if unknown:
            raise ConfigError(
                f"training.candidates.{i}.params ({candidate.name}): {candidate.estimator} has no "
                f"parameter(s) {unknown}; allowed: {', '.join(sorted(allowed))}"
            )
        keys = sorted(candidate.params)
        for values in itertools.product(*(candidate.params[k] for k in keys)):
            params = dict(zip(keys, values, strict=True))
            try:
                make_estimator(candidate.estimator, params, seed=0)._validate_params()
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"training.candidates.{i}.params ({candidate.name}): {exc}"
                ) from None
            specs.append(
                CandidateSpec(
                    name=_spec_name(candidate.name, params),
                    family=candidate.name,
                    estimator=candidate.estimator,
                    params=params,
                )
            )
    return specs


def longest_first(specs: list[CandidateSpec]) -> list[CandidateSpec]:
    """The specs in the order to start them in parallel: slowest estimators first.

    Parallel tasks finish soonest when the longest start first: started last, a slow forest
    runs alone at the end while the other cores idle (1M rows, 2 cores, 4 workers: the train
    phase took 92 s in config order, 86 s longest first, 66 s with `fit_pipeline`'s forests
    on every core). Stable within a rank.
    """
    return sorted(specs, key=lambda spec: -get_estimator(spec.estimator).cost)


def build_pipeline(spec: CandidateSpec, schema: Schema, seed: int) -> Pipeline:
    """The model artifact: preprocessing and estimator in one sklearn Pipeline."""
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema)),
            ("model", make_estimator(spec.estimator, spec.params, seed)),
        ]
    )


def label_array(values: pd.Series) -> np.ndarray:
    """Labels as a typed NumPy array (sklearn refuses object arrays of ints or bools)."""
    return np.asarray(values.tolist())


def core_share(parallel_tasks: int) -> int:
    """OpenMP/BLAS threads for one of `parallel_tasks` candidates fitting at once.

    On one machine, an equal share of its cores (oversubscribed OpenMP spins and is several
    times slower). On Kubernetes every foreach task is its own pod, sized by `[scale]
    candidate_steps`, so it takes all of the pod's. Cores are counted the container-aware
    way (joblib reads cgroup CPU quotas; `os.cpu_count()` would see the whole node).
    """
    cores = joblib.cpu_count()
    if os.environ.get("METAFLOW_KUBERNETES_WORKLOAD"):
        return cores
    return max(1, cores // max(1, parallel_tasks))


def fit_pipeline(
    pipeline: Pipeline, features: pd.DataFrame, labels: np.ndarray, estimator: str
) -> None:
    """Fit; estimators with joblib workers (forests) build on every core, then predict on one.

    Joblib's threads sleep when they wait, so a forest sharing the cores with other tasks
    costs them little, and one left alone at the end of a foreach uses the whole machine.
    Predicting stays single-threaded: a thread pool per request would slow serving down.
    A `n_jobs` given in the candidate's params is kept.
    """
    model = pipeline.named_steps["model"]
    parallel = get_estimator(estimator).parallel_fit and model.n_jobs is None
    if parallel:
        model.set_params(n_jobs=joblib.cpu_count())
    try:
        pipeline.fit(features, labels)
    finally:
        if parallel:
            model.set_params(n_jobs=None)


def fit_candidate(
    spec: CandidateSpec,
    train: pd.DataFrame,
    schema: Schema,
    training: TrainingSettings,
    parallel_tasks: int = 1,
) -> CandidateResult:
    """Fit one candidate on part of the training data and score it on the rest.

    The validation part is a stratified, seeded split of `train`; the holdout is never seen.
    With `parallel_tasks` candidates fitting at once, each gets its `core_share`.

    Raises:
        ValueError: the training part is too small to split.
    """
    fit_part, valid_part = train_test_split(
        train,
        test_size=training.validation_size,
        random_state=training.seed,
        stratify=train[schema.target],
    )
    pipeline = build_pipeline(spec, schema, training.seed)
    started = time.perf_counter()
    with threadpool_limits(limits=core_share(parallel_tasks)):
        fit_pipeline(
            pipeline,
            fit_part[schema.features],
            label_array(fit_part[schema.target]),
            spec.estimator,
        )
    seconds = time.perf_counter() - started
    proba = pipeline.predict_proba(valid_part[schema.features])
    values = compute_metrics(
        valid_part[schema.target], proba, schema.classes, schema.positive_class
    )
    return CandidateResult(
        spec=spec,
        metric=training.metric,
        value=values[training.metric],
        metrics=values,
        fit_seconds=seconds,
    )


def select_best(
    results: list[CandidateResult],
    train: pd.DataFrame,
    schema: Schema,
    training: TrainingSettings,
) -> Selection:
    """Rank candidates by the validation metric, refit the best on the whole training part.

    Ties break by candidate name, so the same results always give the same choice.

    Raises:
        ValueError: no results, or every candidate scored NaN.
    """
    ranked = sorted(
        (r for r in results if not np.isnan(r.value)), key=lambda r: (-r.score, r.spec.name)
    )
    if not ranked:
        raise ValueError("no candidate produced a usable validation score")
    best = ranked[0]
    leaderboard = pd.DataFrame(
        [
            {
                "rank": i + 1,
                "candidate": r.spec.name,
                "estimator": r.spec.estimator,
                **{f"val_{k}": v for k, v in sorted(r.metrics.items())},
                "fit_seconds": round(r.fit_seconds, 3),
            }
            for i, r in enumerate(ranked)
        ]
    )
    model = build_pipeline(best.spec, schema, training.seed)
    fit_pipeline(
        model, train[schema.features], label_array(train[schema.target]), best.spec.estimator
    )
    return Selection(best=best, model=model, leaderboard=leaderboard)


def predict_table(model: Any, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Predicted label and one `proba_<class>` column per class, keyed by id when there is one."""
    proba = model.predict_proba(frame[schema.features])
    labels = np.asarray(schema.classes, dtype=object)
    out = pd.DataFrame({proba_column(c): proba[:, i] for i, c in enumerate(schema.classes)})
    out.insert(0, "prediction", labels[proba.argmax(axis=1)])
    if schema.id_column:
        out.insert(0, schema.id_column, frame[schema.id_column].to_numpy())
    if schema.target in frame:
        out[schema.target] = frame[schema.target].to_numpy()
    return out


def assess_model(
    model: Any,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    training: TrainingSettings,
) -> Assessment:
    """Holdout metrics, a majority-class baseline's metrics, importances and predictions."""
    proba = model.predict_proba(holdout[schema.features])
    y = holdout[schema.target]
    metrics = compute_metrics(y, proba, schema.classes, schema.positive_class)
    priors = train[schema.target].value_counts(normalize=True)
    prior_row = np.array([priors.get(c, 0.0) for c in schema.classes])
    # Jitter-free majority baseline: the training priors for every row.
    baseline_proba = np.tile(np.clip(prior_row, 1e-6, 1.0), (len(holdout), 1))
    baseline = compute_metrics(y, baseline_proba, schema.classes, schema.positive_class)
    importances = compute_importances(
        model,
        holdout[schema.features],
        y,
        schema.classes,
        schema.positive_class,
        training.metric,
        seed=training.seed,
        max_rows=training.importance_rows,
    )
    return Assessment(
        metrics=metrics,
        baseline_metrics=baseline,
        importances=importances,
        predictions=predict_table(model, holdout, schema),
    )
