"""Typed settings parsed from `config/project.toml`; every default lives here and only here."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from flowship.errors import ConfigError
from flowship.estimators import BUILTIN, is_known
from flowship.tasks import METRICS, RANKING_METRICS, get_task

DEFAULT_CONFIG_PATH = Path("config/project.toml")
# The embedded sample table's defaults: `sample:churn` alone means 20,000 rows of seed 7.
SAMPLE_ROWS = 20_000
SAMPLE_SEED = 7


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSettings(_Section):
    name: str = Field(default="churn", pattern=r"^[a-z][a-z0-9_]{0,127}$")


class DataSettings(_Section):
    source: str = f"sample:churn?rows={SAMPLE_ROWS}&seed={SAMPLE_SEED}"
    target: str = "churned"
    id_column: str | None = None
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    numeric_features: list[str] | None = None
    categorical_features: list[str] | None = None
    text_features: list[str] | None = None
    positive_class: str | int | bool | None = None
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    split_seed: int = 42
    downcast: bool = True

    @field_validator("numeric_features", "categorical_features", "text_features")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists a column twice")
        return value


class CandidateSettings(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    estimator: str
    params: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("estimator")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if not is_known(value):
            names = [repr(n) for n in BUILTIN]
            raise PydanticCustomError(
                "unknown_choice",
                "use {names}, or 'package.module:Class' for your own estimator",
                {"names": ", ".join(names[:-1]) + " or " + names[-1]},
            )
        return value

    @field_validator("params")
    @classmethod
    def _non_empty_grids(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, grid in value.items() if not grid]
        if empty:
            raise ValueError(f"params {empty} have an empty list; give at least one value each")
        return value


# The candidates of a project that lists none, by task.
DEFAULT_CANDIDATES = {
    "classification": [
        {"name": "logreg", "estimator": "logistic_regression", "params": {"C": [1.0]}},
        {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {}},
    ],
    "regression": [
        {"name": "ridge", "estimator": "ridge", "params": {"alpha": [1.0]}},
        {"name": "hgb", "estimator": "hist_gradient_boosting", "params": {}},
    ],
}


class TextSettings(_Section):
    """How text columns become features: TF-IDF of word n-grams, per column."""

    max_features: int = Field(default=20_000, ge=10)  # vocabulary cap per text column
    min_df: int = Field(default=2, ge=1)  # a word must appear in this many rows
    ngram_max: int = Field(default=2, ge=1, le=3)  # words and pairs of words
    # For estimators that take only dense input (hist_gradient_boosting): TF-IDF reduced to
    # this many components (TruncatedSVD); sparse-capable ones get the TF-IDF matrix itself.
    svd_components: int = Field(default=100, ge=2)


class TrainingSettings(_Section):
    metric: str = ""  # "": the task's default (roc_auc, f1 or rmse)
    seed: int = 42
    validation_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    importance_rows: int = Field(default=5000, ge=100)
    explain_rows: int = Field(default=200, ge=1)  # holdout rows of the card's mean |SHAP|
    # fewer rows when explaining them model-agnostically would predict more rows than this
    explain_max_predictions: int = Field(default=20_000_000, ge=1)
    max_workers: int = Field(default=4, ge=1, le=256)  # candidates fitting at once (local runs)
    text: TextSettings = Field(default_factory=TextSettings)
    candidates: list[CandidateSettings] | None = None  # None: the task's default candidates

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value and value not in RANKING_METRICS:
            raise ValueError(f"'{value}' is not a metric; allowed: {', '.join(RANKING_METRICS)}")
        return value

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, value: list[CandidateSettings] | None) -> list[CandidateSettings] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(
                "is empty; add at least one [[training.candidates]] with an estimator from "
                + ", ".join(BUILTIN)
            )
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique; repeated: {dupes}")
        return value


class GateSettings(_Section):
    mode: Literal["enforce", "dry-run"] = "enforce"
    min_rows: int = Field(default=500, ge=1)
    max_missing_share: float = Field(default=0.2, ge=0.0, le=1.0)
    min_class_share: float = Field(default=0.02, ge=0.0, le=0.5)
    max_drifted_share: float = Field(default=0.5, ge=0.0, le=1.0)
    drift_blocks: bool = False
    min_metrics: dict[str, float] | None = None  # None: the task's (roc_auc >= 0.75; r2 >= 0)
    max_regression: float = Field(default=0.01, ge=0.0)
    sample_rows: int = Field(default=200_000, ge=1000)
    sample_seed: int = 0
    # The challenger's in-process predict latency (p99, one thread), on the gate card;
    # over these limits it warns, or blocks with latency_blocks = true.
    max_latency_ms: float = Field(default=50.0, gt=0)  # one row per call
    max_batch_latency_ms: float = Field(default=250.0, gt=0)  # 100 rows per call
    latency_blocks: bool = False
    latency_calls: int = Field(default=300, ge=10)  # calls timed per batch size
    # `make promote-challenger`: the live comparison on labelled production rows must hold at
    # least this many rows, and the challenger's metric may be at most live_max_regression
    # worse than the champion's at the lower end of its 95% interval.
    live_min_labels: int = Field(default=500, ge=1)
    live_max_regression: float = Field(default=0.01, ge=0.0)

    @field_validator("min_metrics")
    @classmethod
    def _known_metrics(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        unknown = sorted(set(value or {}) - set(METRICS))
        if unknown:
            raise ValueError(f"has unknown metric(s) {unknown}; allowed: {', '.join(METRICS)}")
        return value


OpenPath = Literal["/metrics", "/docs.json"]


class ServingSettings(_Section):
    host: str = "127.0.0.1"  # where `make serve` listens (0.0.0.0: every interface)
    port: int = Field(default=3000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    max_rows: int = Field(default=1000, ge=1)
    max_batch_rows: int = Field(default=1024, ge=1)
    log_predictions: bool = True
    prediction_log_dir: str = "logs/predictions"
    log_rotate_mb: float = Field(default=64.0, gt=0)
    log_retain_mb: float = Field(default=4096.0, gt=0)  # oldest log files deleted past this
    timeout_s: int = Field(default=30, ge=1)
    max_body_mb: float = Field(default=8.0, gt=0)  # larger request bodies: 413
    max_string_length: int = Field(default=1000, ge=1)  # longer category values: 400
    max_text_length: int = Field(default=10_000, ge=1)  # longer text-feature values: 400
    # Access control: "keys" (every endpoint but the health probes and `open_paths` needs
    # `Authorization: Bearer <key>`; the service refuses to start without keys) or "none".
    auth: Literal["keys", "none"] = "keys"
    api_keys_file: str = ".flowship/api-keys"  # "<key id> sha256:<hex>" lines; see README
    # Prometheus scrapes /metrics without a key (deploy/); add "/docs.json" to publish the docs
    open_paths: list[OpenPath] = Field(default_factory=lambda: list[OpenPath](["/metrics"]))
    # A second model in the Bento (`make bento CHALLENGER=...`): "shadow" scores every request
    # off the response path; "ab" answers `challenger_share` of the rows with it.
    challenger_mode: Literal["shadow", "ab"] = "shadow"
    challenger_share: float = Field(default=0.1, gt=0.0, lt=1.0)
    challenger_key: str = ""  # A/B: the column whose value assigns a row ("": the id column)
    shadow_queue_rows: int = Field(default=20_000, ge=1)  # rows waiting for the challenger
    # the share of a worker's time the challenger's thread may take: after each batch it
    # pauses, so under full load rows are dropped (and counted) instead of slowing the champion
    shadow_time_share: float = Field(default=0.25, gt=0.0, le=1.0)
    # POST /explain: SHAP contributions of each feature (see flowship.explain)
    explain: bool = True
    explain_max_rows: int = Field(default=100, ge=1)
    explain_background_rows: int = Field(default=50, ge=1)
    explain_max_evals: int = Field(default=1024, ge=2)  # coalitions per row (model-agnostic)


class MonitorSettings(_Section):
    window_hours: float | None = Field(default=None, gt=0)
    window_rows: int | None = Field(default=None, ge=1)
    min_rows: int = Field(default=300, ge=1)
    feedback_dir: str = "logs/feedback"
    max_drifted_share: float = Field(default=0.2, ge=0.0, le=1.0)
    max_missing_increase: float = Field(default=0.1, ge=0.0, le=1.0)
    max_new_category_share: float = Field(default=0.05, ge=0.0, le=1.0)
    max_out_of_range_share: float = Field(default=0.05, ge=0.0, le=1.0)
    max_metric_drop: float = Field(default=0.05, ge=0.0)
    min_labels: int = Field(default=200, ge=1)
    sample_rows: int = Field(default=50_000, ge=1000)
    sample_seed: int = 0
    workspace: str = "monitoring/workspace"
    max_bad_log_share: float = Field(default=0.01, ge=0.0, le=1.0)  # unreadable log lines
    max_window_rows: int = Field(default=2_000_000, ge=1)  # the most log rows read (memory)


class DemoSettings(_Section):
    """Generated production traffic: `make simulate` and the demo loop (`make demo`)."""

    rows: int = Field(default=1000, ge=1)  # rows `make simulate` sends
    seed: int = 1001
    batch_rows: int = Field(default=10, ge=1)  # rows per request
    loop_rows: int = Field(default=2000, ge=1)  # the loop's first window, like the training data
    shift_scenario: str = "concept_shift"  # what changes before the loop's second window
    shift_rows: int = Field(default=6000, ge=1)


class ScoreSettings(_Section):
    """Batch scoring (ScoreFlow, `make score`)."""

    input: str = ""  # the table a run without --input scores (a scheduled run needs one)
    output: str = ""  # where it writes; "{date}" and "{run_id}" are filled in per run
    shard_rows: int = Field(default=1_000_000, ge=1)  # rows per parallel task (and its memory)
    # Rows the service would refuse (a text in a numeric column, a category longer than
    # [serving] max_string_length, ...) are written to <output>/_rejects/ with the reason;
    # past this share of the input the run fails and publishes nothing.
    max_reject_share: float = Field(default=0.01, ge=0.0, le=1.0)
    max_workers: int | None = Field(default=None, ge=1, le=256)  # shards at once; None: cores


class StepResources(_Section):
    cpu: int = Field(default=2, ge=1, le=256)
    memory_mb: int = Field(default=8192, ge=256)


class ScaleSettings(_Section):
    """How the flows run on Kubernetes / Argo Workflows (`make argo`); local runs ignore it."""

    data_steps: StepResources = Field(default_factory=lambda: StepResources(cpu=4, memory_mb=16384))
    candidate_steps: StepResources = Field(
        default_factory=lambda: StepResources(cpu=2, memory_mb=8192)
    )
    # each shard predicts on one thread, as each service worker does: one core per pod
    score_steps: StepResources = Field(default_factory=lambda: StepResources(cpu=1, memory_mb=4096))
    train_schedule: str = "0 3 * * 1"
    monitor_schedule: str = "0 6 * * *"
    score_schedule: str = ""  # e.g. "0 2 * * *" with [score] input and output: nightly scoring
    retrain_event: str = ""

    @field_validator("train_schedule", "monitor_schedule", "score_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value and len(value.split()) != 5:
            raise ValueError(
                f"is {value!r}: use a 5-field cron (minute hour day month weekday, UTC) "
                "such as '0 3 * * 1', or '' for no schedule"
            )
        return value

    @field_validator("retrain_event")
    @classmethod
    def _event(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}", value):
            raise ValueError(f"is {value!r}: use letters, digits, '.', '_' and '-' (<= 63)")
        return value


class Settings(_Section):
    project: ProjectSettings = Field(default_factory=ProjectSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    score: ScoreSettings = Field(default_factory=ScoreSettings)
    scale: ScaleSettings = Field(default_factory=ScaleSettings)

    @model_validator(mode="before")
    @classmethod
    def _default_retrain_event(cls, data: Any) -> Any:
        """`[scale] retrain_event` defaults to `<project name>.retrain`."""
        if not isinstance(data, Mapping):
            return data
        scale = dict(data.get("scale") or {})
        if not scale.get("retrain_event"):
            project = (data.get("project") or {}).get("name", ProjectSettings().name)
            scale["retrain_event"] = f"{project}.retrain"
        return {**data, "scale": scale}

    def for_task(self, task: str) -> Settings:
        """These settings with what depends on the task filled in: the metric, the gate's
        minimums and the candidates, where the configuration leaves them out.

        Raises:
            ConfigError: a configured metric or minimum that the task does not compute.
        """
        kind = get_task(task)
        training, gate = self.training, self.gate
        _check_task(self, task)
        candidates = training.candidates
        if candidates is None:
            family = "classification" if kind.classifies else "regression"
            candidates = [CandidateSettings(**c) for c in DEFAULT_CANDIDATES[family]]
        return self.model_copy(
            update={
                "training": training.model_copy(
                    update={
                        "metric": training.metric or kind.default_metric,
                        "candidates": candidates,
                    }
                ),
                "gate": gate.model_copy(
                    update={
                        "min_metrics": dict(
                            kind.default_min_metrics
                            if gate.min_metrics is None
                            else gate.min_metrics
                        )
                    }
                ),
            }
        )

    def fingerprint(self) -> str:
        """A short hash of the effective settings (defaults included), for lineage."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model that owns the key at `loc`, to list its allowed keys."""
    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = list(getattr(field.annotation, "__args__", (field.annotation,)))
        inner += [arg for a in inner for arg in getattr(a, "__args__", ())]  # list[X] | None
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model if isinstance(model, type) else None


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        allowed = ", ".join(owner.model_fields) if owner else "see README"
        return f"unknown key '{key}'; allowed keys here: {allowed}"
    if error["type"] == "literal_error":
        return f"'{key}' = {error['input']!r}: {error['msg'].replace('Input should be', 'use')}"
    if error["type"] == "unknown_choice":
        return f"'{key}' = {error['input']!r}: {error['msg']}"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}' {message}"


def load_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate a parsed configuration into typed settings.

    Args:
        raw: the TOML content as a mapping (e.g. Metaflow's `Config` value).

    Raises:
        ConfigError: naming every invalid key and what is allowed instead.
    """
    try:
        settings = Settings.model_validate(_plain(raw))
    except ValidationError as exc:
        lines = "\n  - ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid configuration:\n  - {lines}") from None
    if settings.data.task != "auto":
        _check_task(settings, settings.data.task)
    return settings


def _check_task(settings: Settings, task: str) -> None:
    try:
        get_task(task).check_metrics(settings.training.metric or None, settings.gate.min_metrics)
    except ConfigError as exc:
        raise ConfigError(f"invalid configuration:\n  - {exc}") from None


def parse_config(text: str) -> dict[str, Any]:
    """Parse TOML for Metaflow's `Config(parser=...)`; `load_settings` validates the rest.

    The `[scale]` section is validated and completed with its defaults here, because the
    flows' decorators (`@resources`, `@schedule`, `@trigger`) read it when the flow is
    defined: a missing key would fail there with Metaflow's error, not ours.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the configuration is not valid TOML: {exc}") from None
    known = load_settings({"project": raw.get("project", {}), "scale": raw.get("scale", {})})
    return {**raw, "scale": known.scale.model_dump()}


def read_settings(path: str | Path = DEFAULT_CONFIG_PATH) -> Settings:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no configuration file at {path}; pass CONFIG=path/to/project.toml")
    return load_settings(parse_config(path.read_text()))


def _plain(value: Any) -> Any:
    """Turn Metaflow's immutable ConfigValue (and nested mappings) into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
