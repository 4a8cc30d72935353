"""TrainFlow vs the same library calls in one plain Python process, same machine, same run.

Usage:
    python benchmarks/train.py                  # 1,000,000 rows (the issue's target)
    python benchmarks/train.py --rows 200000    # quicker

Both sides train the candidates of config/project.toml on the same generated table; the flow
runs them as parallel Metaflow tasks in a temporary local datastore, the baseline runs them one
after another in a single process. Prints wall time, peak memory (largest single process) and
the ratio flow / plain. Target: ratio <= 1.3 at 1M rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]


def _plain(config_path: str) -> None:
    """The baseline: the flow's library calls, in order, in this one process."""
    from flowship.config import read_settings
    from flowship.data import load_training_data, split_dataset
    from flowship.train import assess_model, expand_candidates, fit_candidate, select_best

    settings = read_settings(config_path)
    loaded = load_training_data(settings.data)
    train, holdout = split_dataset(
        loaded.frame, loaded.schema, settings.data.test_size, settings.data.split_seed
    )
    results = [
        fit_candidate(spec, train, loaded.schema, settings.training)
        for spec in expand_candidates(settings.training)
    ]
    selection = select_best(results, train, loaded.schema, settings.training)
    assessment = assess_model(selection.model, train, holdout, loaded.schema, settings.training)
    print(json.dumps({"best": selection.best.spec.name, "metrics": assessment.metrics}))


def _measured(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run `cmd` in a fresh child and report its wall time and the peak RSS of its process tree."""
    probe = (
        "import resource, subprocess, sys, time, json;"
        "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:]).returncode;"
        "wall = time.perf_counter() - t;"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
        "print(json.dumps({'rc': rc, 'wall': wall, 'peak_mb': rss / 1024}), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=env, cwd=cwd, capture_output=True, text=True
    )
    last = done.stderr.strip().splitlines()[-1]
    stats = json.loads(last)
    if stats["rc"] != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of generated data")
    parser.add_argument("--max-workers", type=int, default=4, help="TrainFlow --max-workers")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        _plain(args.plain)
        return

    config = tomllib.loads((REPO / "config" / "project.toml").read_text())
    config["data"]["source"] = f"sample:churn?rows={args.rows}&seed=7"
    with tempfile.TemporaryDirectory(prefix="flowship-bench-") as tmp:
        root = Path(tmp)
        (root / ".metaflow").mkdir()
        cfg = root / "bench.toml"
        cfg.write_text(tomli_w.dumps(config))
        env = {
            **os.environ,
            "USERNAME": os.environ.get("USERNAME", "bench"),
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(root),
        }
        plain = _measured([sys.executable, __file__, "--plain", str(cfg)], env, root)
        flow_cmd = [sys.executable, str(REPO / "flows" / "train_flow.py"), "--no-pylint"]
        flow_cmd += ["--quiet", "--config", "config", str(cfg), "run"]
        flow = _measured([*flow_cmd, "--max-workers", str(args.max_workers)], env, root)

    ratio = flow["wall"] / plain["wall"]
    print(f"TrainFlow benchmark: {args.rows:,} rows, candidates of config/project.toml")
    print(f"{'':24}{'wall s':>10}{'peak MB':>10}")
    print(f"{'plain Python process':24}{plain['wall']:>10.1f}{plain['peak_mb']:>10.0f}")
    print(f"{'TrainFlow (Metaflow)':24}{flow['wall']:>10.1f}{flow['peak_mb']:>10.0f}")
    verdict = "meets" if ratio <= 1.3 else "MISSES"
    print(f"ratio flow / plain: {ratio:.2f}  ({verdict} the target <= 1.3)")


if __name__ == "__main__":
    main()
