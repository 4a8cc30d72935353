"""The commands behind the make targets: each reads its arguments, calls the library (or the
loop's functions) and prints. Heavy imports happen inside the command that needs them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flowship.cli import loop
from flowship.cli.scope import scope_of
from flowship.config import SAMPLE_ROWS, SAMPLE_SEED, read_settings
from flowship.errors import GateError, RegistryError

if TYPE_CHECKING:
    from flowship.compare import LiveComparison


def cmd_sample(args: argparse.Namespace) -> int:
    from flowship.sample_data import write_sample

    rows = SAMPLE_ROWS if args.rows is None else args.rows
    seed = SAMPLE_SEED if args.seed is None else args.seed
    path = write_sample(args.out, rows=rows, seed=seed, scenario=args.scenario, table=args.table)
    print(f"wrote {rows:,} rows ({args.scenario}, seed {seed}) to {path}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from flowship.errors import ConfigError
    from flowship.init import plan_project, project_name, render_config
    from flowship.sources import read_source

    out = Path(args.out or f"config/{project_name(args.table)}.toml")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it, or --out another file")
    plan = plan_project(read_source(args.table), args.table, args.target, args.task)
    print(f"{args.table}: {plan.rows:,} rows; task {plan.task.name} ({plan.task_reason})")
    print(f"{'column':28} {'role':12} why")
    for decision in plan.decisions:
        print(f"{decision.column[:28]:28} {decision.role:12} {decision.reason}")
    m = plan.measurement
    print(
        f"gate: {m.metric} {'>=' if m.bound >= m.baseline else '<='} {m.bound} (baseline "
        f"{m.baseline:.3f}, cross-validated cheapest model {m.model:.3f})"
    )
    for warning in plan.warnings:
        print(f"warning: {warning}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_config(plan))
    print(f"wrote {out}; next: make train CONFIG={out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    scope = scope_of(args)
    flow_args = _flow_args(args.flow_args)
    if args.max_workers:
        flow_args = ["--max-workers", str(args.max_workers), *flow_args]
    loop.run_flow("TrainFlow", scope, flow_args)
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    scope = scope_of(args)
    loop.monitor_and_retrain(scope, _flow_args(args.flow_args), retrain=not args.no_retrain)
    if args.fail_on_drift:
        return _monitor_verdict(args, quiet=True)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    scope = scope_of(args)
    workers = args.max_workers or scope.settings.score.max_workers or os.cpu_count() or 1
    flow_args = ["--max-workers", str(workers)]
    for option, value in (
        ("--input", args.input),
        ("--output", args.output),
        ("--model", args.model),
    ):
        if value:
            flow_args += [option, value]
    loop.run_flow("ScoreFlow", scope, [*flow_args, *_flow_args(args.flow_args)])
    return 0


def _flow_args(words: list[str]) -> list[str]:
    """Options passed through to the flow's `run` (after `--`)."""
    return words[1:] if words[:1] == ["--"] else list(words)


def cmd_card(args: argparse.Namespace) -> int:
    from flowship.runs import latest_successful_run, write_card

    scope = scope_of(args)
    run = latest_successful_run(args.flow, scope.project, scope.branch_name)
    path = write_card(run, args.step, Path(args.out or f"reports/{args.step}_card.html"))
    print(f"{run.pathspec} card for step '{args.step}' written to {path}")
    return 0


def cmd_champion(args: argparse.Namespace) -> int:
    from flowship.registry import champion_standing, describe_run

    scope = scope_of(args)
    standing = champion_standing(scope.project, scope.branch_name)
    for skipped in standing.incomplete:
        print(
            f"note: {skipped.pathspec} is tagged champion but never finished its gate step; "
            "it is skipped",
            file=sys.stderr,
        )
    run = standing.champion
    if run is None:
        raise RegistryError(
            f"no champion in project '{scope.project}', branch '{scope.branch_name}' yet: "
            "run `make train`"
        )
    print(run.pathspec if args.pathspec_only else describe_run(run))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from flowship.registry import history

    scope = scope_of(args)
    events = history(scope.project, scope.branch_name)
    if not events:
        print(f"no promotions yet in project '{scope.project}', branch '{scope.branch_name}'")
        return 0
    print(f"{'when (UTC)':18} {'event':9} {'run':32} how")
    for e in events:
        print(f"{e.when:18} {e.event:9} {e.run:32} {e.how}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from flowship.registry import rollback

    scope = scope_of(args)
    replaced = rollback(args.run, scope.project, scope.branch_name)
    print(f"{args.run} is the champion again (replacing {replaced or 'none'})")
    return 0


def cmd_verdict(args: argparse.Namespace) -> int:
    from flowship.gate import format_verdict
    from flowship.runs import get_run, latest_successful_run, model_artifacts

    scope = scope_of(args)
    run = (
        latest_successful_run("TrainFlow", scope.project, scope.branch_name)
        if args.run == "latest"
        else get_run(args.run)
    )
    data = model_artifacts(run)
    verdict = getattr(data, "verdict", None)
    if verdict is None:
        raise GateError(f"{run.pathspec} has no verdict (it ran before the gate existed)")
    if args.github_outputs:
        image = os.environ.get("IMAGE_REPO", "flowship").lower()
        sha = os.environ.get("GITHUB_SHA", "local")[:12]
        print(f"promoted={'true' if verdict.promote else 'false'}")
        print(f"run={run.pathspec}")
        print(f"image={image}:{run.id}-{sha}")
        return 0
    text = format_verdict(verdict, markdown=args.markdown)
    print(text)
    if args.markdown and args.json:
        (Path(args.json) / "summary.md").parent.mkdir(parents=True, exist_ok=True)
        (Path(args.json) / "summary.md").write_text(text + "\n")
    if args.json:
        out = Path(args.json)
        out.mkdir(parents=True, exist_ok=True)
        (out / "verdict.json").write_text(verdict.to_json())
        print(f"verdict written to {out / 'verdict.json'}", file=sys.stderr)
    if args.html:
        out = Path(args.html)
        out.mkdir(parents=True, exist_ok=True)
        for i, (title, html) in enumerate(data.reports_html.items()):
            slug = "".join(ch if ch.isalnum() else "-" for ch in title.lower())
            (out / f"{i + 1}-{slug}.html").write_text(html)
        print(f"{len(data.reports_html)} Evidently report(s) written to {out}", file=sys.stderr)
    if args.fail_on_block and not verdict.passed:
        return 1
    return 0


def cmd_bento(args: argparse.Namespace) -> int:
    tag_file = Path(args.tag_file) if args.tag_file else None
    print(loop.package(scope_of(args), args.run, tag_file, challenger=args.challenger))
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    from flowship.auth import append_key, new_key

    keys_file = Path(args.keys_file or read_settings(args.config).serving.api_keys_file)
    key = new_key()
    append_key(keys_file, args.id, key)
    print(key)
    print(
        f"added key {args.id!r} to {keys_file} (only its hash); this is the only time the key "
        "is shown: keep it secret, send it as 'Authorization: Bearer <key>'. A running service "
        "picks the change up within a second.",
        file=sys.stderr,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`bentoml serve` of the last built Bento, in place of this process (Ctrl-C stops it)."""
    from flowship.errors import ServingError

    scope = scope_of(args)
    serving = scope.settings.serving
    tag_file = Path(args.tag_file)
    if not tag_file.is_file() or not tag_file.read_text().strip():
        raise ServingError("no Bento built yet: run `make bento`")
    host = args.host or serving.host
    port = str(args.port or serving.port)
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    env = {**os.environ, **loop.serving_env(scope, args.log_dir)}
    print(
        f"serving on http://{host}:{port}; predictions are logged to "
        f"{env['FLOWSHIP_PREDICTION_LOG_DIR']}",
        flush=True,
    )
    os.execve(
        bentoml,
        [bentoml, "serve", tag_file.read_text().strip(), "--host", host, "--port", port],
        env,
    )


def cmd_argo(args: argparse.Namespace) -> int:
    import contextlib

    from flowship.scale import compile_argo, configured_s3_root, describe_template, local_s3

    scope = scope_of(args)  # a bad config fails here, with our message
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = None if args.local_s3 else configured_s3_root()
    with contextlib.ExitStack() as stack:
        if root:
            env: dict[str, str] = {}
            print(f"compiling against the configured S3 datastore {root}", file=sys.stderr)
        else:
            env = stack.enter_context(local_s3())
            print(
                "no S3 datastore configured: compiling against a local S3 stand-in (moto) at "
                f"{env['METAFLOW_S3_ENDPOINT_URL']}; set METAFLOW_DATASTORE_SYSROOT_S3 (or "
                "~/.metaflowconfig) for your own bucket",
                file=sys.stderr,
            )
        for flow in args.flows:
            template = compile_argo(flow, args.config, env, scope.flow_options())
            path = out / f"{flow.lower()}.json"
            path.write_text(json.dumps(template, indent=2) + "\n")
            print("\n".join([f"wrote {path}", *describe_template(template)]))
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    scope = scope_of(args)
    bento = None
    if args.url is None:
        bento = args.bento or Path(args.tag_file).read_text().strip()
    loop.smoke(scope, bento=bento, url=args.url, expect_run=args.expect_run)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import contextlib
    from urllib.parse import urlsplit

    from flowship.processes import served_bento

    scope = scope_of(args)
    demo, serving = scope.settings.demo, scope.settings.serving
    url = args.url or f"http://{serving.host}:{serving.port}"
    with contextlib.ExitStack() as stack:
        if args.serve:
            address = urlsplit(url)
            stack.enter_context(
                served_bento(
                    Path(args.tag_file).read_text().strip(),
                    address.hostname or serving.host,
                    address.port or serving.port,
                    loop.serving_env(scope),
                )
            )
        loop.send_traffic(
            url,
            scope,
            args.scenario,
            args.rows or demo.rows,
            demo.seed if args.seed is None else args.seed,
            args.batch or demo.batch_rows,
        )
    return 0


def cmd_monitor_verdict(args: argparse.Namespace) -> int:
    return _monitor_verdict(args, quiet=args.quiet)


def _monitor_verdict(args: argparse.Namespace, quiet: bool) -> int:
    from flowship.runs import latest_successful_run, run_data

    scope = scope_of(args)
    run = latest_successful_run("MonitorFlow", scope.project, scope.branch_name)
    verdict = run_data(run).verdict
    if getattr(args, "github_outputs", False):
        print(f"retrain={'true' if verdict.retrain else 'false'}")
        print(f"status={verdict.status}")
        return 0
    if getattr(args, "markdown", False):
        print(f"### Monitor {run.pathspec}: **{verdict.status.upper()}** (verdict {verdict.id})\n")
        print("\n".join(f"- {reason}" for reason in verdict.reasons))
    elif not quiet:
        print(f"{run.pathspec}: {verdict.status.upper()} (verdict {verdict.id})")
        for reason in verdict.reasons:
            print(f"  - {reason}")
    if getattr(args, "exit_on_retrain", False) and verdict.retrain:
        return 1
    if args.fail_on_drift and verdict.status != "ok":
        return 1
    return 0


def cmd_loop(args: argparse.Namespace) -> int:
    scope = scope_of(args)
    serving = scope.settings.serving
    phases = Path(args.phases) if args.phases else None
    loop.demo_loop(scope, args.url or f"http://{serving.host}:{serving.port}", phases)
    return 0


def _live_comparison(args: argparse.Namespace) -> tuple[LiveComparison, str]:
    """The champion against the challenger on the labelled rows of the prediction log."""
    from datetime import datetime

    from flowship.compare import compare_live, live_window, paired_rows
    from flowship.registry import find_champion_or_fail, load_champion

    scope = scope_of(args)
    settings = scope.settings
    champion = find_champion_or_fail(scope.project, scope.branch_name)
    reference = load_champion(champion)
    assert reference is not None
    since = datetime.fromisoformat(args.since) if args.since else None
    window = live_window(
        args.log_dir or settings.serving.prediction_log_dir,
        settings.monitor.feedback_dir,
        reference.schema,
        since,
    )
    paired = paired_rows(window, reference.schema, champion)
    return compare_live(paired, reference.schema, reference.metric, settings.gate, champion)


def cmd_compare(args: argparse.Namespace) -> int:
    from flowship.cards import render_live_page
    from flowship.compare import describe

    comparison, html = _live_comparison(args)
    print("\n".join(describe(comparison)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(comparison.to_json())
    (out / "compare.html").write_text(render_live_page(comparison, html))
    print(f"written to {out / 'comparison.json'} and {out / 'compare.html'}", file=sys.stderr)
    return 0


def cmd_promote_challenger(args: argparse.Namespace) -> int:
    from flowship.compare import describe
    from flowship.registry import promote_challenger

    comparison, _ = _live_comparison(args)
    print("\n".join(describe(comparison)))
    scope = scope_of(args)
    replaced = promote_challenger(comparison, scope.project, scope.branch_name)
    audit = Path(args.out) / f"promotion-{comparison.id}.json"
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.write_text(comparison.to_json())
    print(
        f"{comparison.challenger_run} is the champion (replacing {replaced}); the evidence is "
        f"in {audit}. Rebuild the Bento: make bento"
    )
    return 0
