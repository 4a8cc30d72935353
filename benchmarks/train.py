"""TrainFlow vs the same library calls in one plain Python process, same machine, same run.

Usage:
    python benchmarks/train.py                             # 1,000,000 rows: flow vs plain
    python benchmarks/train.py --rows 5000000 --flow-only --runs 1  # 5M rows: TrainFlow's memory
    python benchmarks/train.py --rows 200000 --runs 1      # quicker

Both sides train the candidates of config/project.toml on the same generated table, written
once to Parquet (with one column the config does not use, which the column-only read skips);
the flow runs them as parallel Metaflow tasks in a temporary local datastore, the baseline runs
them one after another in a single process. Prints wall time, the peak memory of the whole
process tree (every task that runs at once, summed: what must fit in the machine) and of its
largest process, the ratio flow / plain of each of `--runs` pairs (each flow run in a fresh
datastore) and their median, and where the last flow run's time went (each step's tasks from
the Metaflow client: start, end, task time, artifact bytes stored). Targets: median ratio
<= 1.2 at 1M rows; at 5M rows the flow completes within 24 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.2


def _plain(config_path: str) -> None:
    """The baseline: the flow's library calls, in order, in this one process, without
    Metaflow (no tasks, no artifacts, no cards, no registry): what the flow costs on top."""
    from flowship.cards import render_gate_card
    from flowship.checks import all_checks
    from flowship.config import read_settings
    from flowship.data import load_training_data, split_dataset
    from flowship.evaluate import latency_report
    from flowship.explain import background_sample
    from flowship.gate import decide_promotion
    from flowship.lineage import collect_lineage
    from flowship.quality.release import check_training_data, release_checks
    from flowship.train import assess_model, fit_candidate, plan_candidates, select_best

    settings = read_settings(config_path)
    lineage = collect_lineage(REPO / "flows", settings.fingerprint())
    loaded = load_training_data(settings.data, settings.gate.max_missing_share)
    schema = loaded.schema
    specs = plan_candidates(settings, schema.task)
    settings = settings.for_task(schema.task)
    quality = check_training_data(loaded.frame, schema, settings.gate)
    train, holdout = split_dataset(
        loaded.frame,
        schema,
        settings.data.test_size,
        settings.data.split_seed,
        settings.training.validation_size,
    )
    results = [fit_candidate(spec, train, schema, settings.training) for spec in specs]
    selection = select_best(results, train, schema, settings.training)
    serving = settings.serving
    background = background_sample(
        train, schema, serving.explain_background_rows, settings.training.seed
    )
    assessment = assess_model(
        selection.model,
        train,
        holdout,
        schema,
        settings.training,
        background=background,
        max_evals=serving.explain_max_evals,
        latency_calls=settings.gate.latency_calls,
    )
    metric = settings.training.metric
    reports = [
        quality,
        *release_checks(selection.model, train, holdout, schema, settings.gate, metric),
        latency_report(assessment.latency, settings.gate),
    ]
    verdict = decide_promotion(all_checks(reports), mode="enforce", challenger="plain")
    render_gate_card(verdict, reports, lineage)
    print(json.dumps({"best": selection.best.spec.name, "metrics": assessment.metrics}))


def _measured(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run `cmd`; its wall time, and its process tree's peak summed and largest-process RSS."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    root = psutil.Process(proc.pid)
    peak_total = peak_single = 0.0
    while proc.poll() is None:
        sizes = []
        with contextlib.suppress(psutil.Error):  # a process exited between listing and reading
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    sizes.append(p.memory_info().rss)
        peak_total = max(peak_total, sum(sizes))
        peak_single = max(peak_single, max(sizes, default=0))
        time.sleep(0.2)
    wall = time.perf_counter() - started
    reader.join()
    if proc.returncode != 0:
        tail = b"".join(out)[-3000:].decode(errors="replace")
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{tail}")
    return {"wall": wall, "peak_mb": peak_total / 2**20, "largest_mb": peak_single / 2**20}


def _timeline(root: Path) -> list[str]:
    """Where the flow's time went: per step, when its tasks started and finished (seconds from
    the run's start, from the Metaflow client), their summed task time and the size of the
    artifacts they stored."""
    os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(root)
    from metaflow import Flow, metadata, namespace

    metadata(f"local@{root}")
    namespace(None)
    run = Flow("TrainFlow").latest_run
    steps = sorted(run.steps(), key=lambda s: s.created_at)
    tasks = {step.id: list(step.tasks()) for step in steps}
    begin = min(t.created_at for ts in tasks.values() for t in ts)
    lines = [f"{'step':10}{'tasks':>6}{'start s':>9}{'end s':>8}{'task s':>8}{'stored MB':>11}"]
    seen: set[str] = set()  # an artifact carried on unchanged is stored once (content hash)
    for step in steps:
        starts = [(t.created_at - begin).total_seconds() for t in tasks[step.id]]
        ends = [(t.finished_at - begin).total_seconds() for t in tasks[step.id]]
        busy = sum(e - s for s, e in zip(starts, ends, strict=True))
        stored = 0
        for task in tasks[step.id]:
            for artifact in task.artifacts:
                if artifact.sha not in seen:
                    seen.add(artifact.sha)
                    stored += artifact.size
        lines.append(
            f"{step.id:10}{len(tasks[step.id]):>6}{min(starts):>9.1f}{max(ends):>8.1f}"
            f"{busy:>8.1f}{stored / 2**20:>11.1f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of generated data")
    parser.add_argument("--runs", type=int, default=3, help="plain/flow pairs (median ratio)")
    parser.add_argument("--max-workers", type=int, default=4, help="TrainFlow --max-workers")
    parser.add_argument("--flow-only", action="store_true", help="skip the plain baseline")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    parser.add_argument("--timeline", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        _plain(args.plain)
        return
    if args.timeline:
        print("\n".join(_timeline(Path(args.timeline))))
        return

    from flowship.sample_data import generate_churn

    config = tomllib.loads((REPO / "config" / "project.toml").read_text())
    runs: list[tuple[dict[str, float] | None, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="flowship-bench-") as tmp:
        table = Path(tmp) / "churn.parquet"
        generate_churn(args.rows, seed=7).to_parquet(table)
        config["data"]["source"] = str(table)
        cfg = Path(tmp) / "bench.toml"
        cfg.write_text(tomli_w.dumps(config))
        flow_cmd = [sys.executable, str(REPO / "flows" / "train_flow.py"), "--no-pylint"]
        flow_cmd += ["--quiet", "--config", "config", str(cfg), "run"]
        flow_cmd += ["--max-workers", str(args.max_workers)]
        for i in range(args.runs):
            root = Path(tmp) / f"run{i}"  # a fresh datastore: no champion from an earlier run
            (root / ".metaflow").mkdir(parents=True)
            env = {
                **os.environ,
                "USERNAME": os.environ.get("USERNAME", "bench"),
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root),
            }
            plain = None
            if not args.flow_only:
                plain = _measured([sys.executable, __file__, "--plain", str(cfg)], env, root)
            flow = _measured(flow_cmd, env, root)
            runs.append((plain, flow))
            line = f"run {i + 1}: TrainFlow {flow['wall']:.1f} s"
            if plain:
                line += f", plain {plain['wall']:.1f} s: {flow['wall'] / plain['wall']:.2f}x"
            print(line, flush=True)
        timeline = subprocess.run(
            [sys.executable, __file__, "--timeline", str(root)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    print(f"\nTrainFlow benchmark: {args.rows:,} rows (Parquet), candidates of config/project.toml")
    print(f"{'':24}{'wall s':>10}{'peak MB':>10}{'largest MB':>12}")
    for i, (plain, flow) in enumerate(runs, 1):
        for name, stats in ((f"plain process, run {i}", plain), (f"TrainFlow, run {i}", flow)):
            if stats:
                print(
                    f"{name:24}{stats['wall']:>10.1f}{stats['peak_mb']:>10.0f}"
                    f"{stats['largest_mb']:>12.0f}"
                )
    print(f"\nwhere the last TrainFlow run's time went:\n{timeline}")
    if all(plain for plain, _ in runs):
        ratios = sorted(flow["wall"] / plain["wall"] for plain, flow in runs if plain)
        ratio = statistics.median(ratios)
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        spread = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"ratio flow / plain, median of {len(ratios)}: {ratio:.2f}x ({spread}; {verdict} "
            f"the target <= {TARGET_RATIO}x)"
        )
    peak = max(flow["peak_mb"] for _, flow in runs)
    verdict = "within" if peak <= 24 * 1024 else "ABOVE"
    print(f"TrainFlow peak memory {peak / 1024:.1f} GB ({verdict} 24 GB)")


if __name__ == "__main__":
    main()
