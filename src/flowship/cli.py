"""`python -m flowship …`: the commands behind the make targets."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowship.config import DEFAULT_CONFIG_PATH, ConfigError, read_settings
from flowship.sample_data import SCENARIOS, write_sample


class _UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


def _cmd_sample(args: argparse.Namespace) -> int:
    path = write_sample(args.out, rows=args.rows, seed=args.seed, scenario=args.scenario)
    print(f"wrote {args.rows:,} rows ({args.scenario}, seed {args.seed}) to {path}")
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    from flowship.registry import latest_successful_run, write_card

    project, branch = _scope(args)
    run = latest_successful_run(args.flow, project, branch)
    path = write_card(run, args.step, Path(args.out or f"reports/{args.step}_card.html"))
    print(f"{run.pathspec} card for step '{args.step}' written to {path}")
    return 0


def _scope(args: argparse.Namespace) -> tuple[str, str]:
    from flowship.registry import branch_name

    settings = read_settings(args.config)
    return settings.project.name, branch_name(args.branch, args.production)


def _cmd_champion(args: argparse.Namespace) -> int:
    from flowship.registry import describe_run, find_champion

    project, branch = _scope(args)
    run = find_champion(project, branch)
    if run is None:
        raise _UserError(
            f"no champion in project '{project}', branch '{branch}' yet: run `make train`"
        )
    print(run.pathspec if args.pathspec_only else describe_run(run))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from flowship.registry import history

    project, branch = _scope(args)
    events = history(project, branch)
    if not events:
        print(f"no promotions yet in project '{project}', branch '{branch}'")
        return 0
    print(f"{'when (UTC)':18} {'event':9} {'run':32} how")
    for e in events:
        print(f"{e.when:18} {e.event:9} {e.run:32} {e.how}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from flowship.registry import rollback

    project, branch = _scope(args)
    replaced = rollback(args.run, project, branch)
    print(f"{args.run} is the champion again (replacing {replaced or 'none'})")
    return 0


def _cmd_verdict(args: argparse.Namespace) -> int:
    from flowship.gate import format_verdict
    from flowship.registry import get_run, latest_successful_run, run_data

    project, branch = _scope(args)
    run = (
        latest_successful_run("TrainFlow", project, branch)
        if args.run == "latest"
        else get_run(args.run)
    )
    data = run_data(run)
    verdict = getattr(data, "verdict", None)
    if verdict is None:
        raise _UserError(f"{run.pathspec} has no verdict (it ran before the gate existed)")
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
            name = f"{i + 1}-{slug}.html"
            (out / name).write_text(html)
        print(f"{len(data.reports_html)} Evidently report(s) written to {out}", file=sys.stderr)
    if args.fail_on_block and not verdict.passed:
        return 1
    return 0


def _cmd_bento(args: argparse.Namespace) -> int:
    import tempfile

    from flowship.registry import build_bento, export_model, find_champion, get_run

    settings = read_settings(args.config)
    project, branch = _scope(args)
    run = get_run(args.run) if args.run else find_champion(project, branch)
    if run is None:
        raise _UserError(f"no champion in project '{project}', branch '{branch}': run `make train`")
    model_tag, metadata = export_model(run, project)
    print(f"exported {run.pathspec} as model {model_tag}", file=sys.stderr)
    spec = {
        "model_tag": model_tag,
        "schema": metadata["schema"],
        "serving": settings.serving.model_dump(mode="json"),
    }
    with tempfile.TemporaryDirectory(prefix="flowship-bento-") as tmp:
        bento_tag = build_bento(spec, Path.cwd(), Path(tmp))
    if args.tag_file:
        Path(args.tag_file).write_text(bento_tag + "\n")
    print(f"built Bento {bento_tag} from model {model_tag}", file=sys.stderr)
    print(bento_tag)
    return 0


def _cmd_argo(args: argparse.Namespace) -> int:
    import contextlib

    from flowship.scale import compile_argo, configured_s3_root, describe_template, local_s3

    read_settings(args.config)  # a bad config fails here, with our message
    scope = (
        ["--production"] if args.production else ["--branch", args.branch] if args.branch else []
    )
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
            template = compile_argo(flow, args.config, env, scope)
            path = out / f"{flow.lower()}.json"
            path.write_text(json.dumps(template, indent=2) + "\n")
            print("\n".join([f"wrote {path}", *describe_template(template)]))
    return 0


def _cmd_smoke(args: argparse.Namespace) -> int:
    import time

    import httpx

    from flowship.sample_data import generate_churn

    settings = read_settings(args.config)
    proc = None
    url = args.url
    if url is None:
        tag = args.bento or Path(args.tag_file).read_text().strip()
        url = f"http://127.0.0.1:{_free_port()}"
        started = time.monotonic()
        proc = _serve(tag, url, Path(settings.serving.prediction_log_dir).resolve())
        print(f"served {tag} on {url}: ready after {time.monotonic() - started:.1f} s")
    try:
        _wait_ready(url, proc)
        frame = generate_churn(3, seed=2024)
        features = [c for c in frame.columns if c not in {"customer_id", "signup_date", "churned"}]
        rows = json.loads(frame[features].to_json(orient="records"))
        answer = httpx.post(f"{url}/predict", json={"rows": rows}, timeout=30)
        answer.raise_for_status()
        print(f"POST /predict ({len(rows)} rows) ->\n{json.dumps(answer.json(), indent=2)}")
        meta = httpx.get(f"{url}/metadata", timeout=30).json()
        keep = ["model_version", "run", "git_sha", "data_fingerprint", "verdict", "metrics"]
        print(f"GET /metadata ->\n{json.dumps({k: meta.get(k) for k in keep}, indent=2)}")
        if args.expect_run and meta.get("run") != args.expect_run:
            raise _UserError(f"/metadata names run {meta.get('run')}, expected {args.expect_run}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    settings = read_settings(args.config)
    server = None
    if args.serve:
        log_dir = Path(settings.serving.prediction_log_dir).resolve()
        server = _serve(Path(args.tag_file).read_text().strip(), args.url, log_dir)
    try:
        _simulate(
            args.url, args.scenario, args.rows, args.seed, settings.monitor.feedback_dir, args.batch
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    return 0


def _simulate(
    url: str, scenario: str, rows: int, seed: int, feedback_dir: str, batch: int = 10
) -> Path:
    """Send generated rows to a running service; write their true labels as delayed feedback."""
    import time

    import httpx
    import pandas as pd

    from flowship.sample_data import ID_COLUMN, TARGET, generate_churn

    frame = generate_churn(rows, seed=seed, scenario=scenario)
    features = [c for c in frame.columns if c not in {"signup_date", TARGET}]
    labels = []
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30) as client:
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            answer = client.post(
                "/predict", json={"rows": json.loads(chunk[features].to_json(orient="records"))}
            )
            if answer.status_code != 200:
                raise _UserError(f"{url}/predict answered {answer.status_code}: {answer.text}")
            request_id = answer.json()["request_id"]
            for i, (cid, label) in enumerate(zip(chunk[ID_COLUMN], chunk[TARGET], strict=True)):
                labels.append({"request_id": request_id, "row": i, ID_COLUMN: cid, TARGET: label})
    out = Path(feedback_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"labels-{scenario}-{seed}-{time.strftime('%Y%m%dT%H%M%S')}.csv"
    pd.DataFrame(labels).to_csv(path, index=False)
    print(
        f"sent {len(frame):,} {scenario} rows to {url} in {time.monotonic() - started:.1f} s; "
        f"their true labels (arriving 'later') are in {path}"
    )
    return path


def _cmd_monitor_verdict(args: argparse.Namespace) -> int:
    from flowship.registry import latest_successful_run, run_data

    project, branch = _scope(args)
    run = latest_successful_run("MonitorFlow", project, branch)
    verdict = run_data(run).verdict
    if args.github_outputs:
        print(f"retrain={'true' if verdict.retrain else 'false'}")
        print(f"status={verdict.status}")
        return 0
    if args.markdown:
        print(f"### Monitor {run.pathspec}: **{verdict.status.upper()}** (verdict {verdict.id})\n")
        print("\n".join(f"- {reason}" for reason in verdict.reasons))
    elif not args.quiet:
        print(f"{run.pathspec}: {verdict.status.upper()} (verdict {verdict.id})")
        for reason in verdict.reasons:
            print(f"  - {reason}")
    if args.exit_on_retrain and verdict.retrain:
        return 1
    if args.fail_on_drift and verdict.status != "ok":
        return 1
    return 0


def _cmd_loop(args: argparse.Namespace) -> int:
    """The demo's monitoring loop: serve, send traffic, monitor, retrain, rebuild, re-serve."""
    import subprocess
    from datetime import UTC, datetime

    def make(*targets: str) -> None:
        subprocess.run(["make", "--no-print-directory", *targets], check=True)

    def stage(text: str) -> None:
        print(f"\n==> {text}", flush=True)

    settings = read_settings(args.config)
    log_dir = Path(settings.serving.prediction_log_dir).resolve()
    bento = Path(".bento-tag").read_text().strip()
    stage(f"serving {bento} on {args.url}")
    server = _serve(bento, args.url, log_dir)
    try:
        since = datetime.now(UTC).isoformat(timespec="seconds")
        stage("production traffic like the training data (baseline), with delayed labels")
        _simulate(args.url, "baseline", args.rows, 1001, settings.monitor.feedback_dir)
        stage("MonitorFlow on that window: expect no alarm")
        make("monitor", f"MONITOR_ARGS=--since {since}")
        since = datetime.now(UTC).isoformat(timespec="seconds")
        stage("the world changes: DSL customers now churn for other reasons (concept_shift)")
        _simulate(args.url, "concept_shift", args.shift_rows, 1002, settings.monitor.feedback_dir)
        stage("MonitorFlow: decay is caught -> TrainFlow --with-feedback -> gate -> Bento")
        make("monitor", f"MONITOR_ARGS=--since {since}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    stage("the rebuilt Bento answers and names the new champion")
    make("champion")
    champion = subprocess.run(
        [sys.executable, "-m", "flowship", "champion", "--config", args.config, "--pathspec-only"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "flowship",
            "smoke",
            "--config",
            args.config,
            "--expect-run",
            champion,
        ],
        check=True,
    )
    print("\nLook at: reports/gate_card.html, reports/monitor_card.html, and `make dashboard`.")
    return 0


def _serve(tag: str, url: str, log_dir: Path) -> Any:
    import subprocess
    import tempfile

    port = url.rsplit(":", 1)[-1]
    bentoml = Path(sys.executable).with_name("bentoml")
    env = {**os.environ, "FLOWSHIP_PREDICTION_LOG_DIR": str(log_dir)}
    server_log = Path(tempfile.mkstemp(prefix="flowship-serve-", suffix=".log")[1])
    proc = subprocess.Popen(
        [str(bentoml), "serve", tag, "--host", "127.0.0.1", "--port", port],
        env=env,
        stdout=server_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    _wait_ready(url, proc)
    return proc


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: Any, timeout: float = 60.0) -> float:
    import time

    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise _UserError(f"the server exited with status {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise _UserError(f"{url} was not ready after {timeout:.0f} s")


def _scoped(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG_PATH), help="project TOML")
    parser.add_argument(
        "--branch", default=None, help="project branch given to the flow's --branch"
    )
    parser.add_argument("--production", action="store_true", help="the production branch")
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flowship", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sample = sub.add_parser("sample", help="write a generated churn table to a file")
    sample.add_argument("--rows", type=int, default=20000, help="number of rows")
    sample.add_argument("--seed", type=int, default=7, help="generator seed")
    sample.add_argument("--scenario", choices=SCENARIOS, default="baseline", help="drift scenario")
    sample.add_argument("--out", required=True, help="output file (.parquet or .csv)")
    sample.set_defaults(func=_cmd_sample)

    card = _scoped(sub, "card", "write the newest successful run's card to an HTML file")
    card.add_argument("--flow", default="TrainFlow", help="flow name")
    card.add_argument("--step", default="evaluate", help="step whose card to write")
    card.add_argument("--out", help="output HTML file (default reports/<step>_card.html)")
    card.set_defaults(func=_cmd_card)

    champion = _scoped(sub, "champion", "show the champion: run, metrics, lineage, promoted when")
    champion.add_argument("--pathspec-only", action="store_true", help="print only the run")
    champion.set_defaults(func=_cmd_champion)
    hist = _scoped(sub, "history", "every promotion and demotion, oldest first")
    hist.set_defaults(func=_cmd_history)
    back = _scoped(sub, "rollback", "make an earlier run whose gate passed the champion again")
    back.add_argument("--run", required=True, help="run pathspec, e.g. TrainFlow/1732440000000000")
    back.set_defaults(func=_cmd_rollback)

    bento = _scoped(sub, "bento", "export the champion (or --run) and build its Bento")
    bento.add_argument("--run", help="a run whose gate passed (default: the champion)")
    bento.add_argument("--tag-file", help="also write the Bento tag to this file")
    bento.set_defaults(func=_cmd_bento)

    argo = _scoped(sub, "argo", "compile the flows into Argo WorkflowTemplates (JSON)")
    argo.add_argument("--out", default="build/argo", help="folder for <flow>.json")
    argo.add_argument(
        "--flows", nargs="+", default=["TrainFlow", "MonitorFlow"], help="flows to compile"
    )
    argo.add_argument(
        "--local-s3", action="store_true", help="use the local S3 stand-in even if S3 is set"
    )
    argo.set_defaults(func=_cmd_argo)

    smoke = _scoped(sub, "smoke", "serve the Bento (or use --url), send a sample, show lineage")
    smoke.add_argument("--url", help="an already running server, e.g. http://127.0.0.1:3000")
    smoke.add_argument("--bento", help="Bento tag to serve (default: the one in --tag-file)")
    smoke.add_argument("--tag-file", default=".bento-tag", help="file with the last Bento tag")
    smoke.add_argument("--expect-run", help="fail unless /metadata names this run")
    smoke.set_defaults(func=_cmd_smoke)

    simulate = _scoped(sub, "simulate", "send generated production traffic, write its labels")
    simulate.add_argument("--url", default="http://127.0.0.1:3000", help="the running service")
    simulate.add_argument(
        "--scenario", choices=SCENARIOS, default="baseline", help="drift scenario"
    )
    simulate.add_argument("--rows", type=int, default=1000, help="rows to send")
    simulate.add_argument("--seed", type=int, default=1001, help="generator seed")
    simulate.add_argument("--batch", type=int, default=10, help="rows per request")
    simulate.add_argument("--serve", action="store_true", help="serve the last Bento meanwhile")
    simulate.add_argument("--tag-file", default=".bento-tag", help="file with the Bento tag")
    simulate.set_defaults(func=_cmd_simulate)

    loop = _scoped(sub, "loop", "the demo's loop: serve, traffic, monitor, retrain, rebuild")
    loop.add_argument("--url", default="http://127.0.0.1:3000", help="where to serve")
    loop.add_argument("--rows", type=int, default=2000, help="baseline rows to send")
    loop.add_argument("--shift-rows", type=int, default=6000, help="concept_shift rows to send")
    loop.set_defaults(func=_cmd_loop)

    mverdict = _scoped(sub, "monitor-verdict", "print the newest MonitorFlow verdict")
    mverdict.add_argument("--fail-on-drift", action="store_true", help="exit 1 unless status ok")
    mverdict.add_argument("--exit-on-retrain", action="store_true", help="exit 1 on retrain")
    mverdict.add_argument("--quiet", action="store_true", help="print nothing")
    mverdict.add_argument("--markdown", action="store_true", help="Markdown (CI summaries)")
    mverdict.add_argument("--github-outputs", action="store_true", help="retrain=, status=")
    mverdict.set_defaults(func=_cmd_monitor_verdict)

    verdict = _scoped(sub, "verdict", "print a TrainFlow run's gate verdict")
    verdict.add_argument("--run", default="latest", help="run pathspec or 'latest'")
    verdict.add_argument("--fail-on-block", action="store_true", help="exit 1 when blocked")
    verdict.add_argument("--markdown", action="store_true", help="Markdown (CI summaries)")
    verdict.add_argument(
        "--github-outputs", action="store_true", help="print promoted=, run=, image= lines"
    )
    verdict.add_argument("--json", metavar="DIR", help="also write verdict.json to DIR")
    verdict.add_argument("--html", metavar="DIR", help="also write the Evidently reports to DIR")
    verdict.set_defaults(func=_cmd_verdict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; expected failures print one clear line and exit with status 2."""
    from flowship.data import DataValidationError
    from flowship.scale import ScaleError

    args = _parser().parse_args(argv)
    expected = (ConfigError, DataValidationError, LookupError, ValueError, ScaleError, _UserError)
    try:
        return int(args.func(args))
    except expected as exc:
        # LookupError covers RegistryError; ValueError covers GateError
        print(f"error: {exc}", file=sys.stderr)
        return 2
