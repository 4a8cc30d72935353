"""Batch scoring: ScoreFlow vs raw in-process predict_proba over the same Parquet file.

Usage:
    python benchmarks/score.py                                    # 5M rows; memory also at 1M
    python benchmarks/score.py --rows 1000000 --small-rows 200000  # quicker

Trains config/project.toml (the churn classifier on its 20,000 sample rows) with TrainFlow in a
temporary datastore and writes the table with `python -m flowship sample --out x.parquet`.
Then, each in a process of its own (peak memory: the process tree's RSS, summed):
  (a) raw, the limit: one Python process reads the model's columns of the Parquet file with
      pandas and calls the champion pipeline's predict_proba on every row (its threads: every
      core); timed from the read to the probabilities (imports and model load not counted);
  (b) ScoreFlow: `python flows/score_flow.py run` on the same file ([score] shard_rows rows a
      shard, --max-workers = cores), timed from launch to the published output: Metaflow's
      start, every task, the checks and the publication included.
Then ScoreFlow again on a table of --small-rows rows, for its peak memory.
Prints rows/s of both and the ratio (b) / (a), target >= 0.6 on 2 cores; and ScoreFlow's peak
memory at both sizes, target: bounded by the shard size (about equal), not by the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from train import _measured  # benchmarks/train.py: wall time and peak memory of a process tree

REPO = Path(__file__).resolve().parents[1]


def _raw(run: str, table: str, out: str) -> None:
    """The baseline, in this process: the model's columns read, predict_proba on all rows;
    writes the rows and the seconds that took to `out`."""
    import pandas as pd
    from metaflow import Run, namespace

    namespace(None)
    data = Run(run).data
    model, features = data.model, data.schema.features
    started = time.perf_counter()
    frame = pd.read_parquet(table, columns=features)
    probabilities = model.predict_proba(frame)
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"rows": len(probabilities), "seconds": seconds}))


def _cpu(measure: Any, *args: Any) -> dict[str, float]:
    """`measure(*args)` with the CPU seconds (user + system) its processes used, all of them
    (every process waits for its children): a figure the other jobs on a shared machine
    disturb less than wall time."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = dict(measure(*args))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the large table")
    parser.add_argument("--small-rows", type=int, default=1_000_000, help="rows of the small one")
    parser.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--raw", nargs=3, metavar=("RUN", "TABLE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw:
        _raw(*args.raw)
        return

    config = str(REPO / "config" / "project.toml")
    from flowship.config import read_settings

    shard_rows = read_settings(config).score.shard_rows
    with tempfile.TemporaryDirectory(prefix="flowship-score-bench-") as tmp:
        root = Path(tmp)
        (root / ".metaflow").mkdir()
        env = {
            **os.environ,
            "USERNAME": os.environ.get("USERNAME", "bench"),
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root),
        }
        print("training config/project.toml with TrainFlow (a minute or two)...", flush=True)
        train = [sys.executable, str(REPO / "flows" / "train_flow.py"), "--no-pylint", "--quiet"]
        subprocess.run(
            [*train, "--config", "config", config, "run"],
            cwd=root,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        os.environ.update(env)  # the client below reads the same datastore
        from metaflow import Flow, namespace

        namespace(None)
        run = Flow("TrainFlow").latest_successful_run
        print(f"champion {run.pathspec}: {run.data.best_candidate}", flush=True)

        flows = {}
        for rows in (args.rows, args.small_rows):
            table = root / f"table-{rows}.parquet"
            sample = [sys.executable, "-m", "flowship", "sample", "--rows", str(rows)]
            subprocess.run([*sample, "--out", str(table)], cwd=REPO, env=env, check=True)
            if rows == args.rows:
                print(f"(a) raw predict_proba on {rows:,} rows...", flush=True)
                raw_cmd = [sys.executable, __file__, "--raw", run.pathspec, str(table)]
                raw = _cpu(_measured, [*raw_cmd, str(root / "raw.json")], env, root)
                timed = json.loads((root / "raw.json").read_text())
            print(f"(b) ScoreFlow on {rows:,} rows...", flush=True)
            flow = [sys.executable, str(REPO / "flows" / "score_flow.py"), "--no-pylint"]
            flow += ["--quiet", "--config", "config", config, "run", "--input", str(table)]
            flow += ["--output", str(root / f"scores-{rows}"), "--model", run.pathspec]
            flow += ["--max-workers", str(args.max_workers)]
            flows[rows] = _cpu(_measured, flow, env, root)
            table.unlink()

    raw_rate = timed["rows"] / timed["seconds"]
    big = flows[args.rows]
    flow_rate = args.rows / big["wall"]
    print(
        f"\nBatch scoring: {args.rows:,} rows (Parquet), {args.max_workers} workers, "
        f"{os.cpu_count()} cores (a shared machine: figures move from run to run)"
    )
    print(f"{'':40}{'rows/s':>10}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}")
    for name, rate, seconds, stats in (
        ("(a) raw predict_proba, one process", raw_rate, timed["seconds"], raw),
        ("(b) ScoreFlow, launch to publication", flow_rate, big["wall"], big),
    ):
        print(f"{name:40}{rate:>10,.0f}{seconds:>9.1f}{stats['cpu']:>8.1f}{stats['peak_mb']:>9.0f}")
    ratio = flow_rate / raw_rate
    verdict = "meets" if ratio >= 0.6 else "MISSES"
    print(f"ratio (b) / (a): {ratio:.2f}  ({verdict} the target >= 0.6)")
    print(
        "CPU seconds (b) / (a), whole processes (the raw one's imports and model load "
        f"included): {big['cpu'] / raw['cpu']:.2f}"
    )
    small = flows[args.small_rows]
    growth = big["peak_mb"] / small["peak_mb"]
    print(
        f"ScoreFlow peak memory, every process at once: {small['peak_mb']:.0f} MB at "
        f"{args.small_rows:,} rows, {big['peak_mb']:.0f} MB at {args.rows:,} ({growth:.2f}x "
        f"for {args.rows / args.small_rows:.0f}x the rows; shards at once: "
        f"{min(args.max_workers, -(-args.small_rows // shard_rows))} and "
        f"{min(args.max_workers, -(-args.rows // shard_rows))}); the largest process "
        f"{small['largest_mb']:.0f} MB and {big['largest_mb']:.0f} MB (a shard of "
        f"{shard_rows:,} rows)"
    )


if __name__ == "__main__":
    main()
