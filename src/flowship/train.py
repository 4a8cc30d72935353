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
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from flowship.config import Settings, TextSettings, TrainingSettings
from flowship.errors import ConfigError
from flowship.estimators import (
    BUILTIN,
    check_estimator,
    cost,
    fits_on_every_core,
    load_class,
    make_estimator,
    takes_sparse,
    thread_param,
)
from flowship.evaluate import Latency, compute_importances, measure_latency
from flowship.explain import RowExplainer, explain_sample, global_importance
from flowship.features import build_preprocessor
from flowship.schema import Schema
from flowship.tasks import Task, get_metric, get_task


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
    """How the chosen model does on the holdout, next to the naive baseline (the majority
    class, or the training mean)."""

    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    importances: pd.DataFrame
    predictions: pd.DataFrame
    explanation: pd.DataFrame | None = None  # mean |SHAP| per feature on holdout rows
    latency: Latency | None = None  # in-process predict latency, for the gate


def _spec_name(family: str, params: dict[str, Any]) -> str:
    if not params:
        return family
    inner = ",".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{family}[{inner}]"


def expand_candidates(training: TrainingSettings, task: Task) -> list[CandidateSpec]:
    """Expand every candidate's parameter grid into specs, checking the estimator against the
    task and each parameter, before any training.

    Raises:
        ConfigError: an estimator that does not import or does not fit the task, a parameter
            it does not have, or a value it refuses.
    """
    specs: list[CandidateSpec] = []
    for i, candidate in enumerate(training.candidates or []):
        try:
            check_estimator(candidate.estimator, candidate.params, task.classifies)
        except ConfigError as exc:
            raise ConfigError(f"training.candidates.{i} ({candidate.name}): {exc}") from None
        keys = sorted(candidate.params)
        for values in itertools.product(*(candidate.params[k] for k in keys)):
            params = dict(zip(keys, values, strict=True))
            try:
                estimator = make_estimator(candidate.estimator, params, 0, task.classifies)
                if hasattr(estimator, "_parameter_constraints"):  # scikit-learn's own check
                    estimator._validate_params()
                _fit_a_few_rows(estimator, task)  # combinations only fit() refuses
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


def _fit_a_few_rows(estimator: Any, task: Task) -> None:
    """Fit a copy on 60 synthetic rows, to refuse at once what only `fit` checks (e.g.
    LogisticRegression's penalty="l1" with its default solver), not a minute into training."""
    import warnings

    from sklearn.base import clone

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] > 0).astype(int) if task.classifies else x[:, 0] * 3.0 + 1.0
    small = clone(estimator)
    if "n_estimators" in small.get_params():
        small.set_params(n_estimators=min(5, small.get_params()["n_estimators"] or 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small.fit(x, y)


def plan_candidates(settings: Settings, task: str) -> list[CandidateSpec]:
    """Every candidate of the settings for the task, checked and ordered slowest first.

    Raises:
        ConfigError: a candidate that cannot serve the task (see `expand_candidates`), or a
            metric or gate minimum the task does not compute.
    """
    resolved = settings.for_task(task)
    return longest_first(expand_candidates(resolved.training, get_task(task)))


def precheck_candidates(settings: Settings) -> None:
    """What can be checked of the candidates before the data is read: everything when
    `[data] task` is given; with `auto`, that every `package.module:Class` imports.

    Raises:
        ConfigError: naming the candidate and the fix.
    """
    if settings.data.task != "auto":
        plan_candidates(settings, settings.data.task)
        return
    for i, candidate in enumerate(settings.training.candidates or []):
        if candidate.estimator not in BUILTIN:
            try:
                load_class(candidate.estimator, classifies=True)
            except ConfigError as exc:
                raise ConfigError(f"training.candidates.{i} ({candidate.name}): {exc}") from None


def longest_first(specs: list[CandidateSpec]) -> list[CandidateSpec]:
    """The specs in the order to start them in parallel: slowest estimators first.

    Parallel tasks finish soonest when the longest start first: started last, a slow forest
    runs alone at the end while the other cores idle (1M rows, 2 cores, 4 workers: the train
    phase took 92 s in config order, 86 s longest first, 66 s with `fit_pipeline`'s forests
    on every core). Stable within a rank.
    """
    return sorted(specs, key=lambda spec: -cost(spec.estimator))


def build_pipeline(
    spec: CandidateSpec, schema: Schema, seed: int, text: TextSettings | None = None
) -> Pipeline:
    """The model artifact: preprocessing and estimator in one sklearn Pipeline. Text
    features reach an estimator that takes sparse input as TF-IDF itself, and any other
    reduced to dense components (`TextSettings.svd_components`)."""
    estimator = make_estimator(spec.estimator, spec.params, seed, schema.kind.classifies)
    dense = bool(schema.text) and not takes_sparse(estimator)
    return Pipeline(
        [("preprocess", build_preprocessor(schema, text, dense=dense)), ("model", estimator)]
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
    pipeline: Pipeline,
    features: pd.DataFrame,
    labels: np.ndarray,
    estimator: str,
    threads: int = 1,
) -> None:
    """Fit, with the estimator's own threads set for fitting, then one thread for serving.

    Built-in forests build on every core: joblib's threads sleep when they wait, so a forest
    sharing the cores with other tasks costs them little, and one left alone at the end of a
    foreach uses the whole machine. Any other estimator with a thread parameter (`n_jobs`,
    `n_threads`, `thread_count`: LightGBM, XGBoost, ...) gets `threads`, the core share of its
    foreach task. Either way it predicts on one thread afterwards: a thread pool per request
    would slow serving down. A thread count given in the candidate's params is kept.
    """
    model = pipeline.named_steps["model"]
    name = thread_param(model)
    forest = fits_on_every_core(estimator)
    given = name is not None and model.get_params()[name] is not None
    if name is None or given or not (forest or _is_plugin(estimator)):
        pipeline.fit(features, labels)  # e.g. logistic regression: its n_jobs is one-vs-rest only
        return
    model.set_params(**{name: joblib.cpu_count() if forest else threads})
    try:
        pipeline.fit(features, labels)
    finally:
        model.set_params(**{name: None if forest else 1})


def _is_plugin(estimator: str) -> bool:
    return ":" in estimator


def fit_candidate(
    spec: CandidateSpec,
    train: pd.DataFrame,
    schema: Schema,
    training: TrainingSettings,
    parallel_tasks: int = 1,
) -> CandidateResult:
    """Fit one candidate on part of the training data and score it on the rest.

    The validation part is a seeded split of `train` (stratified when classifying); the
    holdout is never seen. With `parallel_tasks` candidates fitting at once, each gets its
    `core_share`.

    Raises:
        DataValidationError: the training part is too small to split.
    """
    task = schema.kind
    fit_part, valid_part = task.split(train, schema.target, training.validation_size, training.seed)
    pipeline = build_pipeline(spec, schema, training.seed, training.text)
    started = time.perf_counter()
    share = core_share(parallel_tasks)
    with threadpool_limits(limits=share):
        fit_pipeline(
            pipeline,
            fit_part[schema.features],
            label_array(fit_part[schema.target]),
            spec.estimator,
            threads=share,
        )
    seconds = time.perf_counter() - started
    outputs = task.outputs(pipeline, valid_part[schema.features])
    values = task.compute_metrics(valid_part[schema.target], outputs, schema)
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
    model = build_pipeline(best.spec, schema, training.seed, training.text)
    fit_pipeline(
        model,
        train[schema.features],
        label_array(train[schema.target]),
        best.spec.estimator,
        threads=core_share(1),
    )
    return Selection(best=best, model=model, leaderboard=leaderboard)


def predict_table(model: Any, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The prediction (and one `proba_<class>` column per class when classifying), keyed by id
    when there is one, with the target when the frame has it."""
    task = schema.kind
    out = task.prediction_table(task.outputs(model, frame[schema.features]), schema)
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
    background: pd.DataFrame | None = None,
    max_evals: int = 1024,
    latency_calls: int = 0,
) -> Assessment:
    """Holdout metrics, the naive baseline's metrics, importances and predictions; with a
    `background` of training rows, the mean |SHAP| of each feature on `[training]
    explain_rows` holdout rows (`flowship.explain`); with `latency_calls`, the predict latency
    (`evaluate.measure_latency`)."""
    task = schema.kind
    y = holdout[schema.target]
    metrics = task.compute_metrics(y, task.outputs(model, holdout[schema.features]), schema)
    baseline = task.compute_metrics(
        y, task.baseline_outputs(train[schema.target], len(holdout), schema), schema
    )
    importances = compute_importances(
        model,
        holdout[schema.features],
        y,
        task.scorer(schema, training.metric),
        seed=training.seed,
        max_rows=training.importance_rows,
    )
    explanation = None
    if background is not None:
        explainer = RowExplainer(model, schema, background, max_evals)
        explained = explain_sample(
            explainer,
            holdout[schema.features],
            training.explain_rows,
            training.explain_max_predictions,
            training.seed,
        )
        explanation = global_importance(explained)
    return Assessment(
        metrics=metrics,
        baseline_metrics=baseline,
        importances=importances,
        predictions=predict_table(model, holdout, schema),
        explanation=explanation,
        latency=measure_latency(model, schema, holdout, latency_calls) if latency_calls else None,
    )
