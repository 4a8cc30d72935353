"""The monitor's `check` step on 1M production rows vs the same per-column statistics in scipy.

Usage:
    python benchmarks/monitor.py                  # 1,000,000 current rows (the issue's setting)
    python benchmarks/monitor.py --rows 200000

A champion-like pipeline is fitted on 20,000 generated rows; its holdout is the reference.
The current window is 1M `price_increase` rows scored by that pipeline. Measured, each in a
forked child (wall time and peak RSS of the child):
  (1) flowship's check step (`quality.check_window`: Evidently drift + data quality), which
      samples windows above `[monitor] sample_rows` (50,000) with a seeded sample;
  (2) the raw baseline: scipy's normed Wasserstein distance (numeric columns) and
      Jensen-Shannon distance (categorical) on every row, drift when >= 0.1 (Evidently's
      defaults for these sizes).
Then the per-column drift verdicts of (1) are compared with (2) for 5 sampling seeds.
Targets: (1) <= 2x (2) wall time, <= 2 GB peak, verdicts equal.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from typing import Any

import numpy as np
import pandas as pd

from flowship.config import MonitorSettings, read_settings
from flowship.data import load_training_data, split_dataset
from flowship.monitoring import SCORE, Window, prepare_window, reference_frame
from flowship.quality.production import check_window
from flowship.sample_data import generate_churn
from flowship.train import expand_candidates, fit_candidate, predict_table, select_best

THRESHOLD = 0.1


def scipy_drift(
    current: pd.DataFrame, reference: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, bool]:
    """Per-column drift the plain way, on every row."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    verdict = {}
    for column in numeric:
        ref = reference[column].dropna().to_numpy(float)
        cur = current[column].dropna().to_numpy(float)
        norm = np.std(ref) or 1.0
        verdict[column] = wasserstein_distance(ref, cur) / norm >= THRESHOLD
    for column in categorical:
        ref = reference[column].astype(object).value_counts(normalize=True)
        cur = current[column].astype(object).value_counts(normalize=True)
        keys = sorted(set(ref.index) | set(cur.index), key=str)
        p = np.array([ref.get(k, 0.0) for k in keys])
        q = np.array([cur.get(k, 0.0) for k in keys])
        verdict[column] = float(jensenshannon(p, q)) >= THRESHOLD
    return verdict


def _timed(fn: Any, *args: Any) -> dict[str, Any]:
    """Run fn in a forked child; return its result, wall time and the child's peak RSS."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child() -> None:
        started = time.perf_counter()
        result = fn(*args)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put({"result": result, "wall": wall, "peak_mb": peak})

    proc = ctx.Process(target=child)
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="current window rows")
    args = parser.parse_args()

    settings = read_settings("config/project.toml")
    loaded = load_training_data(settings.data, settings.gate.max_missing_share)
    schema = loaded.schema
    train, holdout = split_dataset(loaded.frame, schema, 0.2, 42)
    results = [
        fit_candidate(s, train, schema, settings.training)
        for s in expand_candidates(settings.training)[2:3]
    ]
    model = select_best(results, train, schema, settings.training).model
    reference = reference_frame(holdout, predict_table(model, holdout, schema), schema)

    print(f"generating and scoring {args.rows:,} current rows...", flush=True)
    raw = generate_churn(args.rows, seed=99, scenario="price_increase")
    current = prepare_window(Window(raw.drop(columns=["churned"]), "bench", 0), schema, model)
    monitor: MonitorSettings = settings.monitor
    numeric = [*schema.numeric, SCORE]

    def flowship_check(seed: int) -> dict[str, bool]:
        m = monitor.model_copy(update={"sample_seed": seed})
        reports = check_window(current, reference, schema, m, {}, "roc_auc", SCORE)
        return {c.column: c.status != "pass" for c in reports[0].checks if c.name == "column drift"}

    def raw_check() -> dict[str, bool]:
        return scipy_drift(current, reference, numeric, list(schema.categorical))

    # warm imports in the parent so neither side pays for them
    check_window(current.head(2000), reference, schema, monitor, {}, "roc_auc", SCORE)
    raw_check_result = _timed(raw_check)
    ours = _timed(flowship_check, 0)
    agree = [flowship_check(seed) == raw_check_result["result"] for seed in range(5)]

    ratio = ours["wall"] / raw_check_result["wall"]
    print(f"\nMonitor check: {args.rows:,} current rows vs a {len(reference):,}-row reference")
    print(f"{'':44}{'wall s':>8}{'peak MB':>9}")
    base, name = raw_check_result, "(2) scipy per-column distances, all rows"
    print(f"{name:44}{base['wall']:>8.2f}{base['peak_mb']:>9.0f}")
    label = f"(1) flowship check (sample {monitor.sample_rows:,})"
    print(f"{label:44}{ours['wall']:>8.2f}{ours['peak_mb']:>9.0f}")
    drifted = sorted(k for k, v in raw_check_result["result"].items() if v)
    print(f"drifted columns (scipy, all rows): {drifted}")
    print(f"ratio flowship / scipy: {ratio:.2f}x  (target <= 2x)")
    print(f"peak: {ours['peak_mb'] / 1024:.2f} GB (target <= 2 GB)")
    print(f"drift verdicts equal to scipy's on all rows, sampling seeds 0-4: {agree}")


if __name__ == "__main__":
    main()
