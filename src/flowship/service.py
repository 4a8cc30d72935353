"""The BentoML service: the champion answering `/predict`, describing itself at `/metadata`.

`make bento` exports the champion and builds the Bento with `flowship/bento_model.json` (the
model tag, its input schema and the `[serving]` settings) beside this module; the request
schema below is generated from it, so `/docs.json` documents the real fields.
`FLOWSHIP_BENTO_SPEC` points to another spec (tests, development).

Serve the built Bento with `make serve` (it runs `bentoml serve <bento tag>`)."""

import gc
import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI
from pydantic import Field, create_model
from threadpoolctl import threadpool_limits

from flowship.bentoml_patches import patch_timeout_middleware
from flowship.config import ServingSettings
from flowship.middleware import BodyLimit
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
Row: Any = row_model(SCHEMA, SERVING.max_string_length, SERVING.max_text_length)


Answer: Any = answer_model(SCHEMA)  # the class and its probabilities, or the value
PredictResponse: Any = create_model(
    "PredictResponse",
    request_id=(str, ...),
    model_version=(str, Field(description="BentoML model tag, traceable with /metadata")),
    predictions=(list[Answer], ...),
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
ROWS = bentoml.metrics.Counter(name="flowship_predicted_rows", documentation="Rows predicted")
LOST = bentoml.metrics.Counter(
    name="flowship_prediction_log_lost_rows",
    documentation="Rows answered but not written to the prediction log (it was not writable)",
)
metadata_app = FastAPI(title="flowship model metadata")


@bentoml.service(
    name="flowship",
    workers=SERVING.workers,
    traffic={"timeout": SERVING.timeout_s},
    logging={"access": {"enabled": False}},
    envs=[{"name": "OMP_NUM_THREADS", "value": "1"}],
)
@bentoml.asgi_app(metadata_app, path="/")
class Flowship:
    """One tabular model: its pipeline takes raw records and returns class probabilities or
    values."""

    model_ref = bentoml.models.BentoModel(SPEC["model_tag"])

    def __init__(self) -> None:
        patch_timeout_middleware()
        # One OpenMP/BLAS thread per worker: workers = cores, so threads never oversubscribe.
        self._limits = threadpool_limits(limits=1)
        self.model = bentoml.sklearn.load_model(self.model_ref)
        self.fast = FastPredictor.build(self.model, SCHEMA, probe_rows(SCHEMA))
        self.version = str(self.model_ref.tag)
        self.metadata = {"model_version": self.version, **self.model_ref.info.metadata}
        log_dir = os.environ.get("FLOWSHIP_PREDICTION_LOG_DIR", SERVING.prediction_log_dir)
        enabled = os.environ.get("FLOWSHIP_LOG_PREDICTIONS", str(SERVING.log_predictions))
        self.log = (
            PredictionLog(
                log_dir,
                self.version,
                SERVING.log_rotate_mb,
                self.metadata.get("run", ""),
                retain_mb=SERVING.log_retain_mb,
            )
            if enabled.lower() in {"1", "true", "yes"}
            else None
        )
        self.batcher = MicroBatcher(self._predict_batch, SERVING.max_batch_rows)
        # The model and libraries never die: keep them out of the collector's way, which
        # otherwise rescans them in full collections and stalls requests (latency tail).
        gc.collect()
        gc.freeze()

    def _predict_batch(self, jobs: list[Job]) -> list[Predictions]:
        """One model call for every queued request; each request is logged under its id."""
        rows = [row for job in jobs for row in job.rows]
        results = split_results(
            [len(j.rows) for j in jobs], predict_rows(self.model, SCHEMA, rows, self.fast)
        )
        if self.log is not None:
            for job, predictions in zip(jobs, results, strict=True):
                if not self.log.write(job.request_id, job.rows, predictions, job.received):
                    LOST.inc(len(job.rows))  # answered all the same: see PredictionLog
            self.log.flush()
        ROWS.inc(len(rows))
        return results

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
        job = Job(request_id=uuid.uuid4().hex, rows=records, received=time.time())
        result: Predictions = await self.batcher.submit(job)
        return PredictResponse.model_construct(
            request_id=job.request_id, model_version=self.version, predictions=answers(result)
        )

    @metadata_app.get("/metadata")
    def model_metadata(self) -> dict[str, Any]:
        """Which model this is: run, commit, data, verdict, metrics, input schema."""
        return self.metadata


# Bodies are refused past [serving] max_body_mb before BentoML reads them.
SERVICE: Any = Flowship  # a bentoml Service once decorated
SERVICE.add_asgi_middleware(BodyLimit, max_bytes=int(SERVING.max_body_mb * 1024 * 1024))
