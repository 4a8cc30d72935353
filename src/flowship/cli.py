"""`python -m flowship …`: the commands behind the make targets."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flowship.config import DEFAULT_CONFIG_PATH, ConfigError, read_settings
from flowship.sample_data import SCENARIOS, write_sample


class _UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


def _cmd_sample(args: argparse.Namespace) -> int:
    path = write_sample(args.out, rows=args.rows, seed=args.seed, scenario=args.scenario)
    print(f"wrote {args.rows:,} rows ({args.scenario}, seed {args.seed}) to {path}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from flowship.registry import branch_name, latest_successful_run, write_card

    settings = read_settings(args.config)
    branch = branch_name(args.branch, args.production)
    run = latest_successful_run(args.flow, settings.project.name, branch)
    path = write_card(run, args.step, Path(args.out))
    print(f"{run.pathspec} card for step '{args.step}' written to {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flowship", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample", help="write a generated churn table to a file")
    sample.add_argument("--rows", type=int, default=20000, help="number of rows")
    sample.add_argument("--seed", type=int, default=7, help="generator seed")
    sample.add_argument("--scenario", choices=SCENARIOS, default="baseline", help="drift scenario")
    sample.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    sample.set_defaults(func=_cmd_sample)

    card = sub.add_parser("card", help="write the newest successful run's card to an HTML file")
    card.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="project TOML")
    card.add_argument("--flow", default="TrainFlow", help="flow name")
    card.add_argument("--step", default="evaluate", help="step whose card to write")
    card.add_argument("--branch", default=None, help="project branch given to the flow's --branch")
    card.add_argument("--production", action="store_true", help="the production branch")
    card.add_argument("--out", default="reports/train_card.html", help="output HTML file")
    card.set_defaults(func=_cmd_card)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one clear line and exit with status 2."""
    from flowship.data import DataValidationError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, DataValidationError, LookupError, ValueError, _UserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
