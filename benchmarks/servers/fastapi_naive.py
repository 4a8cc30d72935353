"""Baseline for benchmarks/serving.py: the FastAPI app a user would write instead of a Bento.

One pipeline loaded at start, a per-request `predict_proba` (a regressor: `predict`) on a
DataFrame of the posted rows, the same JSON shape as the Bento's /predict. Run by the benchmark as
`uvicorn benchmarks.fastapi_baseline:app --workers 2` with FLOWSHIP_BASELINE_MODEL set to a
joblib file of the pipeline.
"""

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

MODEL = joblib.load(os.environ["FLOWSHIP_BASELINE_MODEL"])
CLASSES = [str(c) for c in getattr(MODEL, "classes_", [])]  # none for a regressor
app = FastAPI()


class Request(BaseModel):
    rows: list[dict[str, Any]]


@app.post("/predict")
def predict(request: Request) -> dict[str, Any]:
    if not CLASSES:
        values = MODEL.predict(pd.DataFrame(request.rows))
        return {"predictions": [{"prediction": float(v)} for v in values]}
    proba = MODEL.predict_proba(pd.DataFrame(request.rows))
    return {
        "predictions": [
            {
                "prediction": CLASSES[p.argmax()],
                "probabilities": dict(zip(CLASSES, p.tolist(), strict=True)),
            }
            for p in proba
        ]
    }
