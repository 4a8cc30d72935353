"""`python -m flowship …`: the commands behind the make targets.

User errors (`FlowshipError`) print one line and exit 2; anything else is a bug and shows its
traceback. Modules: `commands` (one function per command), `loop` (running flows, packaging,
traffic, the retrain policy and the demo loop), `scope` (which project branch).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from flowship.config import DEFAULT_CONFIG_PATH
from flowship.errors import FlowshipError
from flowship.sample_data import ALL_SCENARIOS, SAMPLES


def _scoped(sub: Any, name: str, help: str, func: Callable[[argparse.Namespace], int]) -> Any:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="project TOML")
    parser.add_argument(
        "--branch", default=None, help="project branch given to the flow's --branch"
    )
    parser.add_argument("--production", action="store_true", help="the production branch")
    parser.set_defaults(func=func)
    return parser


def _parser() -> argparse.ArgumentParser:
    from flowship.cli import commands as c

    parser = argparse.ArgumentParser(prog="python -m flowship", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample", help="write a generated sample table to a file")
    sample.add_argument("--table", choices=list(SAMPLES), default="churn", help="which table")
    sample.add_argument("--rows", type=int, help="number of rows (default: 20,000)")
    sample.add_argument("--seed", type=int, help="generator seed (default: 7)")
    sample.add_argument(
        "--scenario", choices=ALL_SCENARIOS, default="baseline", help="drift scenario"
    )
    sample.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    sample.set_defaults(func=c.cmd_sample)

    init = sub.add_parser("init", help="write a commented config for your own table")
    init.add_argument("table", help="CSV / Parquet file, glob or s3:// URL (as [data] source)")
    init.add_argument("--target", required=True, help="the column to predict")
    init.add_argument(
        "--task", choices=["auto", "binary", "multiclass", "regression"], default="auto"
    )
    init.add_argument("--out", help="the config to write (default config/<table name>.toml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=c.cmd_init)

    train = _scoped(sub, "train", "run TrainFlow and its gate", c.cmd_train)
    train.add_argument("--max-workers", type=int, help="default: [training] max_workers")
    train.add_argument("flow_args", nargs=argparse.REMAINDER, help="after --: TrainFlow options")

    monitor = _scoped(
        sub, "monitor", "run MonitorFlow; on RETRAIN retrain with feedback, rebuild", c.cmd_monitor
    )
    monitor.add_argument("--no-retrain", action="store_true", help="only monitor and report")
    monitor.add_argument("--fail-on-drift", action="store_true", help="exit 1 unless status ok")
    monitor.add_argument(
        "flow_args", nargs=argparse.REMAINDER, help="after --: MonitorFlow options"
    )

    score = _scoped(
        sub, "score", "run ScoreFlow: score a table with the champion (or --model)", c.cmd_score
    )
    score.add_argument("--input", help="CSV/Parquet file, glob or s3:// URL ([score] input)")
    score.add_argument("--output", help="folder or s3:// prefix to write ([score] output)")
    score.add_argument("--model", help="TrainFlow/<id> whose gate passed (default: champion)")
    score.add_argument("--max-workers", type=int, help="shards at once ([score] max_workers)")
    score.add_argument("flow_args", nargs=argparse.REMAINDER, help="after --: ScoreFlow options")

    card = _scoped(
        sub, "card", "write the newest successful run's card to an HTML file", c.cmd_card
    )
    card.add_argument("--flow", default="TrainFlow", help="flow name")
    card.add_argument("--step", default="evaluate", help="step whose card to write")
    card.add_argument("--out", help="output HTML file (default reports/<step>_card.html)")

    champion = _scoped(
        sub, "champion", "show the champion: run, metrics, lineage, promoted when", c.cmd_champion
    )
    champion.add_argument("--pathspec-only", action="store_true", help="print only the run")
    _scoped(sub, "history", "every promotion and demotion, oldest first", c.cmd_history)
    back = _scoped(
        sub, "rollback", "make an earlier run whose gate passed the champion again", c.cmd_rollback
    )
    back.add_argument("--run", required=True, help="run pathspec, e.g. TrainFlow/1732440000000000")

    bento = _scoped(sub, "bento", "export the champion (or --run) and build its Bento", c.cmd_bento)
    bento.add_argument("--run", help="a run whose gate passed (default: the champion)")
    bento.add_argument("--tag-file", help="also write the Bento tag to this file")
    bento.add_argument(
        "--challenger",
        help="a second model: a run whose gate passed, or 'latest' (the newest passed run that "
        "is not the champion); served as [serving] challenger_mode says",
    )

    api_key = sub.add_parser(
        "api-key", help="create an API key: prints it once, adds its hash to the keys file"
    )
    api_key.add_argument("--id", required=True, help="a name for the key (logged with requests)")
    api_key.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="project TOML")
    api_key.add_argument("--keys-file", help="default: [serving] api_keys_file")
    api_key.set_defaults(func=c.cmd_api_key)

    serve = _scoped(sub, "serve", "serve the last built Bento", c.cmd_serve)
    serve.add_argument("--host", help="default: [serving] host")
    serve.add_argument("--port", type=int, help="default: [serving] port")
    serve.add_argument("--log-dir", help="default: [serving] prediction_log_dir")
    serve.add_argument("--tag-file", default=".bento-tag", help="file with the last Bento tag")

    argo = _scoped(sub, "argo", "compile the flows into Argo WorkflowTemplates (JSON)", c.cmd_argo)
    argo.add_argument("--out", default="build/argo", help="folder for <flow>.json")
    argo.add_argument(
        "--flows",
        nargs="+",
        default=["TrainFlow", "MonitorFlow", "ScoreFlow"],
        help="flows to compile",
    )
    argo.add_argument(
        "--local-s3", action="store_true", help="use the local S3 stand-in even if S3 is set"
    )

    smoke = _scoped(
        sub, "smoke", "serve the Bento (or use --url), send a sample, show lineage", c.cmd_smoke
    )
    smoke.add_argument("--url", help="an already running server, e.g. http://127.0.0.1:3000")
    smoke.add_argument("--bento", help="Bento tag to serve (default: the one in --tag-file)")
    smoke.add_argument("--tag-file", default=".bento-tag", help="file with the last Bento tag")
    smoke.add_argument("--expect-run", help="fail unless /metadata names this run")

    simulate = _scoped(
        sub, "simulate", "send generated production traffic, write its labels", c.cmd_simulate
    )
    simulate.add_argument("--url", help="the running service (default: [serving] host and port)")
    simulate.add_argument(
        "--scenario", choices=ALL_SCENARIOS, default="baseline", help="drift scenario"
    )
    simulate.add_argument("--rows", type=int, help="rows to send (default: [demo] rows)")
    simulate.add_argument("--seed", type=int, help="generator seed (default: [demo] seed)")
    simulate.add_argument("--batch", type=int, help="rows per request (default: [demo] batch_rows)")
    simulate.add_argument("--serve", action="store_true", help="serve the last Bento meanwhile")
    simulate.add_argument("--tag-file", default=".bento-tag", help="file with the Bento tag")

    loop = _scoped(
        sub, "loop", "the demo's loop: serve, traffic, monitor, retrain, rebuild", c.cmd_loop
    )
    loop.add_argument("--url", help="where to serve (default: [serving] host and port)")
    loop.add_argument(
        "--phases", help="file of the demo's phase marks: note serving's, print them at the end"
    )

    for name, help_text, func in (
        (
            "compare",
            "champion vs challenger on the labelled rows of the prediction log",
            c.cmd_compare,
        ),
        (
            "promote-challenger",
            "promote the challenger when the live comparison favours it",
            c.cmd_promote_challenger,
        ),
    ):
        live = _scoped(sub, name, help_text, func)
        live.add_argument("--since", help="ISO time: only predictions logged since then")
        live.add_argument("--log-dir", help="default: [serving] prediction_log_dir")
        live.add_argument("--out", default="reports/compare", help="folder for the JSON and HTML")

    mverdict = _scoped(
        sub, "monitor-verdict", "print the newest MonitorFlow verdict", c.cmd_monitor_verdict
    )
    mverdict.add_argument("--fail-on-drift", action="store_true", help="exit 1 unless status ok")
    mverdict.add_argument("--exit-on-retrain", action="store_true", help="exit 1 on retrain")
    mverdict.add_argument("--quiet", action="store_true", help="print nothing")
    mverdict.add_argument("--markdown", action="store_true", help="Markdown (CI summaries)")
    mverdict.add_argument("--github-outputs", action="store_true", help="retrain=, status=")

    verdict = _scoped(sub, "verdict", "print a TrainFlow run's gate verdict", c.cmd_verdict)
    verdict.add_argument("--run", default="latest", help="run pathspec or 'latest'")
    verdict.add_argument("--fail-on-block", action="store_true", help="exit 1 when blocked")
    verdict.add_argument("--markdown", action="store_true", help="Markdown (CI summaries)")
    verdict.add_argument(
        "--github-outputs", action="store_true", help="print promoted=, run=, image= lines"
    )
    verdict.add_argument("--json", metavar="DIR", help="also write verdict.json to DIR")
    verdict.add_argument("--html", metavar="DIR", help="also write the Evidently reports to DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; user errors print one clear line and exit with status 2."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FlowshipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
