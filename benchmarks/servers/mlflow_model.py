"""Save the benchmark's pipeline as an MLflow sklearn model, for `mlflow models serve`.

Run by benchmarks/serving.py in the mlflow peer's venv (build/peers/mlflow):
    python mlflow_model.py model.joblib out_dir predict_proba [requirement ...]

`pyfunc_predict_fn` makes the served model answer probabilities (or values for a regressor).
Serialized with cloudpickle: MLflow's default, skops, refuses the pipeline's own transformer
classes (`flowship.features`) unless each is listed as trusted. No signature: MLflow then
skips schema enforcement, the cheapest setting for it. The requirements are given, so MLflow
does not re-import the model to infer them.
"""

import sys

import joblib
import mlflow.sklearn

model_file, out, predict_fn = sys.argv[1:4]
mlflow.sklearn.save_model(
    joblib.load(model_file),
    out,
    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
    pyfunc_predict_fn=predict_fn,
    pip_requirements=sys.argv[4:],
)
