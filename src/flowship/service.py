"""The BentoML service: the champion answering `/predict`, explaining itself at `/explain`,
describing itself at `/metadata`; with a challenger in shadow or A/B mode when the Bento has
one (`make bento CHALLENGER=...`).

`make bento` exports the model(s) and builds the Bento with `flowship/bento_model.json` (the
model tags, the input schema and the `[serving]` settings) beside this module; the request
schema below is generated from it, so `/docs.json` documents the real fields.
`FLOWSHIP_BENTO_SPEC` points to another spec (tests, development).

Access control (`[serving] auth = "keys"`, the default): every endpoint but the health probes
and `[serving] open_paths` needs `Authorization: Bearer <key>` (`flowship.auth`); without keys
the service refuses to start.

Serve the built Bento with `make serve` (it runs `bentoml serve <bento tag>`)."""

import gc
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI
from pydantic import Field, create_model
from threadpoolctl import threadpool_limits

from flowship.auth import KeySource
from flowship.bentoml_patches import patch_error_schema, patch_timeout_middleware
from flowship.challenger import Shadowed, ShadowScorer, assigned_to_challenger
from flowship.config import ServingSettings
from flowship.middleware import KEY_ID, ApiKeyAuth, BodyLimit, JsonOnly
from flowship.predict import (
    FastPredictor,
    Job,
    MicroBatcher,
    PredictionLog,
    Predictions,
    answer_model,
    answers,
    predict_rows,
    probe_rows,
    row_model,
    split_results,
    unknown_categories,
)
from flowship.schema import Schema

_log = logging.getLogger("flowship.service")
patch_error_schema()  # /docs.json documents a 400's detail as BentoML sends it


def _spec_path() -> Path:
    """FLOWSHIP_BENTO_SPEC, else the Bento's own copy (a served Bento runs in its src/ folder,
    where an editable install of flowship could otherwise shadow it), else next to this file."""
    if os.environ.get("FLOWSHIP_BENTO_SPEC"):
        return Path(os.environ["FLOWSHIP_BENTO_SPEC"])
    in_bento = Path.cwd() / "flowship" / "bento_model.json"
    return in_bento if in_bento.is_file() else Path(__file__).with_name("bento_model.json")


SPEC_PATH = _spec_path()
if not SPEC_PATH.is_file():
    raise RuntimeError(
        f"{SPEC_PATH} is missing: run `make bento` (it exports the champion and writes it) "
        "or set FLOWSHIP_BENTO_SPEC"
    )
SPEC = json.loads(SPEC_PATH.read_text())
SCHEMA = Schema.model_validate(SPEC["schema"])
SERVING = ServingSettings.model_validate(SPEC["serving"])
CHALLENGER_TAG: str | None = (SPEC.get("challenger") or {}).get("model_tag")
AB = CHALLENGER_TAG is not None and SERVING.challenger_mode == "ab"
# Keys are read now: without them the service refuses to start (`bentoml serve` fails here).
KEYS = KeySource.from_environment(SERVING.api_keys_file) if SERVING.auth == "keys" else None
if KEYS is None:
    _log.warning(
        'ACCESS CONTROL IS OFF ([serving] auth = "none"): anyone who reaches this port can '
        "call /predict, /explain and /metadata"
    )
Row: Any = row_model(SCHEMA, SERVING.max_string_length, SERVING.max_text_length)


Answer: Any = answer_model(SCHEMA, per_row_model=AB)  # the class and probabilities, or value
PredictResponse: Any = create_model(
    "PredictResponse",
    request_id=(str, ...),
    model_version=(str, Field(description="BentoML model tag, traceable with /metadata")),
    predictions=(list[Answer], ...),
)
RowExplanation: Any = create_model(
    "RowExplanation",
    output=(
        float,
        Field(
            description="the explained output: P(positive class) (binary), P(predicted class) "
            "(multiclass) or the predicted value (regression)"
        ),
    ),
    base_value=(float, Field(description="the average output over training rows")),
    contributions=(
        dict[str, float],
        Field(description="each feature's contribution: base_value + their sum = output"),
    ),
    **{"class": (str | int | bool | None, Field(None, description="the explained class"))},  # type: ignore[call-overload]
)
ExplainResponse: Any = create_model(
    "ExplainResponse",
    request_id=(str, ...),
    model_version=(str, Field(description="the model explained (the champion)")),
    explanations=(list[RowExplanation], ...),
)


_EXAMPLE: list[dict[str, Any]] = [
    {
        **{c: (lo + hi) / 2 for c, (lo, hi) in SCHEMA.numeric_ranges.items()},
        **{c: next(iter(SCHEMA.categories.get(c, [])), None) for c in SCHEMA.categorical},
        **{c: "a typical text of a few words" for c in SCHEMA.text},
    }
]
UNKNOWN = bentoml.metrics.Counter(
    name="flowship_unknown_categories",
    documentation="Category values never seen in training (accepted; the model ignores them)",
    labelnames=["feature"],
)
ROWS = bentoml.metrics.Counter(
    name="flowship_predicted_rows", documentation="Rows answered", labelnames=["model"]
)
LOST = bentoml.metrics.Counter(
    name="flowship_prediction_log_lost_rows",
    documentation="Rows answered but not written to the prediction log (it was not writable)",
)
SHADOW_DROPPED = bentoml.metrics.Counter(
    name="flowship_shadow_dropped_rows",
    documentation="Rows the challenger did not score because it was behind (logged without)",
)
metadata_app = FastAPI(title="flowship model metadata")


def _log_enabled() -> bool:
    enabled = os.environ.get("FLOWSHIP_LOG_PREDICTIONS", str(SERVING.log_predictions))
    return enabled.lower() in {"1", "true", "yes"}


@bentoml.service(
    name="flowship",
    workers=SERVING.workers,
    traffic={"timeout": SERVING.timeout_s},
    logging={"access": {"enabled": False}},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(metadata_app, path="/")
class Flowship:
    """One tabular model (and, optionally, its challenger): the pipeline takes raw records and
    returns class probabilities or values."""

    model_ref = bentoml.models.BentoModel(SPEC["model_tag"])
    if CHALLENGER_TAG is not None:
        challenger_ref = bentoml.models.BentoModel(CHALLENGER_TAG)

    def __init__(self) -> None:
        patch_timeout_middleware()
        # One OpenMP/BLAS thread per worker: workers = cores, so threads never oversubscribe.
        self._limits = threadpool_limits(limits=1)
        self.model = bentoml.sklearn.load_model(self.model_ref)
        self.fast = FastPredictor.build(self.model, SCHEMA, probe_rows(SCHEMA))
        self.version = str(self.model_ref.tag)
        self.metadata: dict[str, Any] = {
            "model_version": self.version,
            **self.model_ref.info.metadata,
        }
        log_dir = os.environ.get("FLOWSHIP_PREDICTION_LOG_DIR", SERVING.prediction_log_dir)
        self.log = (
            PredictionLog(
                log_dir,
                self.version,
                SERVING.log_rotate_mb,
                self.metadata.get("run", ""),
                retain_mb=SERVING.log_retain_mb,
            )
            if _log_enabled()
            else None
        )
        self.challenger: Any = None
        self.shadow: ShadowScorer | None = None
        if CHALLENGER_TAG is not None:
            self._load_challenger()
        self.batcher = MicroBatcher(self._predict_batch, SERVING.max_batch_rows)
        self._explainer: Any = None
        self._explainer_lock = threading.Lock()
        # The model and libraries never die: keep them out of the collector's way, which
        # otherwise rescans them in full collections and stalls requests (latency tail).
        gc.collect()
        gc.freeze()

    def _load_challenger(self) -> None:
        ref = self.challenger_ref
        self.challenger = bentoml.sklearn.load_model(ref)
        self.challenger_fast = FastPredictor.build(self.challenger, SCHEMA, probe_rows(SCHEMA))
        self.challenger_version = str(ref.tag)
        info = ref.info.metadata
        self.challenger_run = info.get("run", "")
        self.metadata["challenger"] = {
            "model_version": self.challenger_version,
            "mode": SERVING.challenger_mode,
            **({"share": SERVING.challenger_share} if AB else {}),
            **{k: info[k] for k in ("run", "candidate", "verdict", "metrics") if k in info},
        }
        self.shadow = ShadowScorer(
            lambda rows: predict_rows(self.challenger, SCHEMA, rows, self.challenger_fast),
            self._write_shadowed,
            SERVING.shadow_queue_rows,
            SERVING.max_batch_rows,
            SERVING.shadow_time_share,
        )

    def _predict_batch(self, jobs: list[Job]) -> list[tuple[Predictions, list[str] | None]]:
        """One model call for every queued request (two with an A/B challenger); each request
        is logged under its id, after the challenger scored it off the response path."""
        rows = [row for job in jobs for row in job.rows]
        sizes = [len(j.rows) for j in jobs]
        champion = split_results(sizes, predict_rows(self.model, SCHEMA, rows, self.fast))
        if self.challenger is None:
            if self.log is not None:
                for job, predictions in zip(jobs, champion, strict=True):
                    self._log_request(job, predictions)
                self.log.flush()
            ROWS.labels(model="champion").inc(len(rows))
            return [(p, None) for p in champion]
        return [self._with_challenger(job, p) for job, p in zip(jobs, champion, strict=True)]

    def _log_request(self, job: Job, predictions: Predictions, **fields: Any) -> None:
        assert self.log is not None
        if job.key_id is not None:
            fields["key_id"] = job.key_id
        if not self.log.write(job.request_id, job.rows, predictions, job.received, **fields):
            LOST.inc(len(job.rows))  # answered all the same: see PredictionLog

    def _with_challenger(
        self, job: Job, champion: Predictions
    ) -> tuple[Predictions, list[str] | None]:
        """The answers of one request (the champion's, or in A/B mode the challenger's for its
        share of rows); the request goes to the shadow scorer for the other predictions."""
        n = len(job.rows)
        ours: list[Any | None] = [None] * n
        ours_proba: list[list[float] | None] = [None] * n
        answered_by = [self.version] * n
        answer = champion
        if AB:
            assigned = [
                i
                for i, row in enumerate(job.rows)
                if assigned_to_challenger(
                    self._ab_key(job, row), SERVING.challenger_share, self.challenger_version
                )
            ]
            if assigned:
                theirs = predict_rows(
                    self.challenger, SCHEMA, [job.rows[i] for i in assigned], self.challenger_fast
                )
                labels, probabilities = list(champion.labels), list(champion.probabilities)
                for k, i in enumerate(assigned):
                    ours[i], ours_proba[i] = theirs.labels[k], theirs.probabilities[k]
                    labels[i], probabilities[i] = theirs.labels[k], theirs.probabilities[k]
                    answered_by[i] = self.challenger_version
                answer = Predictions(labels, probabilities, champion.classes)
        ROWS.labels(model="challenger").inc(n - answered_by.count(self.version))
        ROWS.labels(model="champion").inc(answered_by.count(self.version))
        if self.log is not None and self.shadow is not None:
            item = Shadowed(
                job.request_id,
                job.rows,
                job.received,
                champion,
                answered_by,
                ours,
                ours_proba,
                {"key_id": job.key_id} if job.key_id else {},
            )
            if not self.shadow.submit(item):
                SHADOW_DROPPED.inc(len(item.missing))
        return answer, answered_by if AB else None

    @staticmethod
    def _ab_key(job: Job, row: dict[str, Any]) -> Any:
        """What assigns a row in A/B mode: its key column's value, else the request id."""
        column = SERVING.challenger_key or SCHEMA.id_column
        value = row.get(column) if column else None
        return job.request_id if value is None else value

    def _write_shadowed(self, item: Shadowed) -> None:
        """Log a request with both models' predictions (called by the shadow scorer)."""
        assert self.log is not None
        job = Job(item.request_id, item.rows, item.received, item.fields.get("key_id"))
        self._log_request(
            job,
            item.champion,
            answered_by=item.answered_by,
            challenger={
                "model_version": self.challenger_version,
                "run": self.challenger_run,
                "predictions": item.challenger,
                "probabilities": item.challenger_probabilities if SCHEMA.kind.classifies else None,
            },
        )
        self.log.flush()

    @bentoml.api
    async def predict(
        self,
        rows: Annotated[
            list[Row],
            Field(min_length=1, max_length=SERVING.max_rows, examples=[_EXAMPLE]),
        ],
    ) -> PredictResponse:
        """Predict each record (the class and every class's probability, or the value); at most
        `[serving] max_rows` records per request."""
        records = [r.model_dump() for r in rows]
        for feature, n in unknown_categories(SCHEMA, records).items():
            UNKNOWN.labels(feature=feature).inc(n)
        job = Job(uuid.uuid4().hex, records, time.time(), KEY_ID.get())
        result, models = await self.batcher.submit(job)
        return PredictResponse.model_construct(
            request_id=job.request_id,
            model_version=self.version,
            predictions=answers(result, models),
        )

    if SERVING.explain:

        @bentoml.api
        def explain(
            self,
            rows: Annotated[
                list[Row],
                Field(min_length=1, max_length=SERVING.explain_max_rows, examples=[_EXAMPLE]),
            ],
        ) -> ExplainResponse:
            """Each feature's contribution to each record's output (SHAP values on the input
            features; base_value + contributions = output); at most `[serving]
            explain_max_rows` records per request."""
            from flowship.predict import frame_of

            explainer, seconds_per_row = self._row_explainer()
            most = max(1, int(SERVING.timeout_s / 2 / seconds_per_row))
            if len(rows) > most:
                raise bentoml.exceptions.InvalidArgument(
                    f"explaining {len(rows)} rows takes about {len(rows) * seconds_per_row:.0f} s "
                    f"with this model ({explainer.method} explanations), more than half the "
                    f"{SERVING.timeout_s} s timeout: send at most {most} rows per request"
                )
            explanations = explainer.explain(frame_of([r.model_dump() for r in rows], SCHEMA))
            return ExplainResponse.model_construct(
                request_id=uuid.uuid4().hex,
                model_version=self.version,
                explanations=[
                    RowExplanation.model_construct(
                        output=e.output,
                        base_value=e.base_value,
                        contributions=e.contributions,
                        **{"class": e.label},
                    )
                    for e in explanations
                ],
            )

    def _row_explainer(self) -> tuple[Any, float]:
        """The champion's explainer and the seconds it takes per row (timed on a probe row),
        built at the first `/explain` of this worker (shap is imported then, not at start-up)."""
        with self._explainer_lock:
            if self._explainer is None:
                from flowship.explain import RowExplainer
                from flowship.predict import frame_of

                background = frame_of(self.model_ref.custom_objects["explain_background"], SCHEMA)
                explainer = RowExplainer(self.model, SCHEMA, background, SERVING.explain_max_evals)
                started = time.perf_counter()
                explainer.explain(frame_of(probe_rows(SCHEMA)[:1], SCHEMA))
                self._explainer = (explainer, max(time.perf_counter() - started, 1e-4))
            return self._explainer

    @bentoml.on_shutdown
    def _finish_shadow(self) -> None:
        """Log what the challenger has not scored yet before the worker stops."""
        if self.shadow is not None:
            self.shadow.close()
        if self.log is not None:
            self.log.close()

    @metadata_app.get("/metadata")
    def model_metadata(self) -> dict[str, Any]:
        """Which model this is: run, commit, data, verdict, metrics, input schema (and the
        challenger, when the Bento has one)."""
        return self.metadata


# Outermost first: the caller's key (401), then the body's type (415) and size (413), before
# BentoML reads the body.
SERVICE: Any = Flowship  # a bentoml Service once decorated
if KEYS is not None:
    SERVICE.add_asgi_middleware(ApiKeyAuth, keys=KEYS, open_paths=SERVING.open_paths)
SERVICE.add_asgi_middleware(JsonOnly)
SERVICE.add_asgi_middleware(BodyLimit, max_bytes=int(SERVING.max_body_mb * 1024 * 1024))
