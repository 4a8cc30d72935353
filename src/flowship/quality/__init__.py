"""The Evidently adapters, and the only modules that import Evidently.

- `adapter`: running a report and reading its test results back as `CheckResult`s;
- `reports`: the drift and model-quality reports both the gate and the monitor use;
- `release`: the gate's checks (training data quality, holdout quality, the champion);
- `production`: the monitor's checks (drift, data quality and decay of a production window);
- `workspace`: snapshots into the Evidently workspace behind `make dashboard`.

Evidently takes seconds to import: every module imports it inside the functions that use it.
"""
