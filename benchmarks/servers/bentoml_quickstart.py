"""Plain BentoML as its quickstart writes it, for benchmarks/serving.py: one service class,
the model loaded once in `__init__`, one `@bentoml.api` calling the pipeline on the posted
rows; 2 workers and nothing else tuned (default threads, access log, no batching).

Run by the benchmark in its own venv (build/peers/bentoml):
    python bentoml_quickstart.py save model.joblib    # into the BentoML model store
    bentoml serve bentoml_quickstart:Churn --port N   # from this folder
"""

import sys
from typing import Any

import bentoml
import pandas as pd

MODEL_NAME = "peer_pipeline"


@bentoml.service(workers=2)
class Churn:
    model_ref = bentoml.models.BentoModel(f"{MODEL_NAME}:latest")

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)
        # a classifier's probabilities, or a regressor's values
        self.predict_fn = getattr(self.model, "predict_proba", self.model.predict)

    @bentoml.api
    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        return self.predict_fn(pd.DataFrame(rows)).tolist()


if __name__ == "__main__" and sys.argv[1:2] == ["save"]:
    import joblib

    bentoml.sklearn.save_model(MODEL_NAME, joblib.load(sys.argv[2]))
