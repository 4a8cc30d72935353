"""What the make targets and the demo loop do, as Python functions: run a flow, package the
champion, send generated traffic, and the retrain policy (monitor → retrain → rebuild)."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from flowship.cli.scope import Scope
from flowship.errors import FlowError, RegistryError, ServingError

MONITOR_CARD = Path("reports/monitor_card.html")
TAG_FILE = Path(".bento-tag")


def stage(text: str) -> None:
    """A headline between the steps of a long command."""
    print(f"\n==> {text}", flush=True)


# How Metaflow prints a task's exception: "<stamp> [<run>/<step>/<task> (pid N)] <text>"
_TASK_LINE = re.compile(r"^\S+ \S+ \[[^\]]+\] ?(?P<text>.*)$")
_OUR_ERROR = re.compile(r"^flowship\.errors\.(?P<kind>\w+): (?P<message>.*)$")


def run_flow(flow: str, scope: Scope, args: Sequence[str] = ()) -> None:
    """Run one of the project's flows with the scope's config and branch, as `make train` and
    `make monitor` do; its output streams through.

    Raises:
        FlowshipError: the flow failed on a user error (our message, read from its output, so
            it is the last line the user sees); or it failed otherwise (see its output).
    """
    from flowship.wiring import flow_path

    run_options = ["--max-workers", str(scope.settings.training.max_workers)]
    if "--max-workers" in args:
        run_options = []
    cmd = [sys.executable, str(flow_path(flow)), "--no-pylint", *scope.flow_options()]
    cmd += ["--config", "config", scope.config, "run", *run_options, *args]
    print("$ " + " ".join(cmd[1:]), flush=True)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    error: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        error = _error_lines(line, error)
    if proc.wait() != 0:
        if error:
            raise FlowError("\n".join(error))
        raise FlowError(f"{flow} failed (exit {proc.returncode}); its output above says why")


def _error_lines(line: str, so_far: list[str]) -> list[str]:
    """The message of our error in a task's output, continued over its following lines."""
    match = _TASK_LINE.match(line.rstrip("\n"))
    text = match.group("text") if match else line.rstrip("\n")
    ours = _OUR_ERROR.match(text)
    if ours:
        return [ours.group("message")]
    if so_far and text.startswith("  - "):  # a multi-line message (every config problem)
        return [*so_far, text]
    return so_far


def champion_pathspec(scope: Scope) -> str | None:
    """The champion of the scope's branch, or None."""
    from flowship.registry import find_champion

    run = find_champion(scope.project, scope.branch_name)
    return str(run.pathspec) if run else None


def package(
    scope: Scope,
    pathspec: str | None = None,
    tag_file: Path | None = TAG_FILE,
    challenger: str | None = None,
) -> str:
    """Export the champion (or `pathspec`, which must have passed its gate), build its Bento,
    write its tag to `tag_file`; returns the Bento tag. With `challenger` (a run pathspec, or
    `latest`: the newest passed run that is not the champion) the Bento serves both, in the
    `[serving] challenger_mode`.

    Raises:
        RegistryError: no champion yet, a run did not pass its gate, or the challenger is the
            champion, of another branch or of another contract.
        ServingError: the build failed.
    """
    from flowship.bento import package_run
    from flowship.registry import find_champion, newest_passed_run
    from flowship.runs import get_run, in_branch

    run = get_run(pathspec) if pathspec else find_champion(scope.project, scope.branch_name)
    if run is None:
        raise RegistryError(
            f"no champion in project '{scope.project}', branch '{scope.branch_name}': "
            "run `make train`"
        )
    rival = None
    if challenger == "latest":
        rival = newest_passed_run(scope.project, scope.branch_name, other_than=run.pathspec)
    elif challenger:
        rival = get_run(challenger)
        if not in_branch(rival, scope.project, scope.branch_name):
            raise RegistryError(
                f"{challenger} is not a run of project {scope.project!r}, branch "
                f"{scope.branch_name!r}: a challenger must compete on the champion's branch"
            )
    model_tag, bento_tag = package_run(
        run, scope.project, scope.settings.serving, Path.cwd(), challenger=rival
    )
    print(f"exported {run.pathspec} as model {model_tag}", file=sys.stderr)
    if rival is not None:
        mode = scope.settings.serving.challenger_mode
        print(f"challenger {rival.pathspec} ({mode} mode) is in the Bento", file=sys.stderr)
    if tag_file is not None:
        tag_file.write_text(bento_tag + "\n")
    print(f"built Bento {bento_tag} from model {model_tag}", file=sys.stderr)
    return bento_tag


def send_traffic(url: str, scope: Scope, scenario: str, rows: int, seed: int, batch: int) -> Path:
    """Send rows of the configured sample table (`[data] source = "sample:<name>…"`) to a
    running service, only the columns its model takes; write their true labels as delayed
    feedback (`[monitor] feedback_dir`).

    Raises:
        ServingError: the source is not an embedded sample, or the service refused a request.
    """
    import httpx
    import pandas as pd

    from flowship.auth import client_headers
    from flowship.sample_data import sample_table
    from flowship.schema import Schema
    from flowship.sources import parse_sample

    source = scope.settings.data.source
    if not source.startswith("sample:"):
        raise ServingError(
            f"make simulate generates traffic from the embedded sample tables, and [data] source "
            f"is {source!r}: send your own traffic to {url}/predict, and its labels to "
            f"{scope.settings.monitor.feedback_dir} (request_id,row,<target> CSV files)"
        )
    table = sample_table(parse_sample(source).name)
    frame = table.generate(rows, seed, scenario)
    labels = []
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=30, headers=client_headers()) as client:
        schema = Schema.model_validate(_metadata(client)["schema"])
        columns = [c for c in [schema.id_column, *schema.features] if c]
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            body = {"rows": json.loads(chunk[columns].to_json(orient="records"))}
            answer = client.post("/predict", json=body)
            if answer.status_code != 200:
                raise ServingError(f"{url}/predict answered {answer.status_code}: {answer.text}")
            request_id = answer.json()["request_id"]
            for i, (key, label) in enumerate(
                zip(chunk[table.id_column], chunk[table.target], strict=True)
            ):
                labels.append(
                    {"request_id": request_id, "row": i, table.id_column: key, table.target: label}
                )
    out = Path(scope.settings.monitor.feedback_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"labels-{scenario}-{seed}-{time.strftime('%Y%m%dT%H%M%S')}.csv"
    pd.DataFrame(labels).to_csv(path, index=False)
    print(
        f"sent {len(frame):,} {scenario} rows to {url} in {time.monotonic() - started:.1f} s; "
        f"their true labels (arriving 'later') are in {path}"
    )
    return path


def _metadata(client: object) -> dict[str, object]:
    """`GET /metadata` of a served Bento.

    Raises:
        ServingError: it did not answer 200.
    """
    answer = client.get("/metadata")  # type: ignore[attr-defined]
    if answer.status_code == 401:
        raise ServingError(
            "the service wants an API key: set FLOWSHIP_API_KEY (or keep the one `make serve` "
            "wrote to .flowship/api-key)"
        )
    if answer.status_code != 200:
        raise ServingError(f"/metadata answered {answer.status_code}: {answer.text}")
    return dict(answer.json())


def serving_env(scope: Scope, log_dir: str | None = None) -> dict[str, str]:
    """The environment of a Bento we serve locally: its prediction-log folder (absolute) and,
    with access control on and no keys given in the environment, the project's keys file,
    where a local key is created on first use (`.flowship/api-key`, which the clients here
    send)."""
    import os

    from flowship.auth import KEYS_ENV, KEYS_FILE_ENV, ensure_local_key

    serving = scope.settings.serving
    env = {"FLOWSHIP_PREDICTION_LOG_DIR": str(log_folder(log_dir or serving.prediction_log_dir))}
    if serving.auth == "keys" and not (os.environ.get(KEYS_ENV) or os.environ.get(KEYS_FILE_ENV)):
        keys_file = Path(serving.api_keys_file).resolve()
        created = ensure_local_key(keys_file)
        if created:
            print(
                f"created an API key for this machine in .flowship/api-key (its hash is in "
                f'{keys_file}); send it as: -H "Authorization: Bearer $(cat .flowship/api-key)"',
                file=sys.stderr,
            )
        env[KEYS_FILE_ENV] = str(keys_file)
    return env


def log_folder(path: str) -> Path:
    """The prediction-log folder for the service: absolute as given, else from the current
    directory (`make serve PREDICTION_LOG_DIR=/var/log/x` is /var/log/x, not <repo>/var/...)."""
    return Path(path).expanduser().resolve()


def monitor_and_retrain(scope: Scope, flow_args: Sequence[str] = (), retrain: bool = True) -> bool:
    """The retrain policy: MonitorFlow; on a RETRAIN verdict, TrainFlow with the labelled
    traffic (`--with-feedback`); when its gate promotes, the new champion's Bento.

    Returns whether the monitor asked for retraining.
    """
    from flowship.runs import latest_successful_run, run_data, write_card

    run_flow("MonitorFlow", scope, flow_args)
    monitor = latest_successful_run("MonitorFlow", scope.project, scope.branch_name)
    write_card(monitor, "decide", MONITOR_CARD)
    verdict = run_data(monitor).verdict
    if not verdict.retrain:
        print("no retraining needed")
        return False
    if not retrain:
        print("retraining needed: the train workflow retrains")
        return True
    before = champion_pathspec(scope)
    run_flow("TrainFlow", scope, ["--with-feedback", "True"])
    after = champion_pathspec(scope)
    if after != before:
        print(f"new champion {after}: rebuilding the Bento")
        package(scope)
    else:
        print(f"the gate kept the champion {before}: nothing to rebuild")
    return True


def mark_phase(path: Path, name: str) -> None:
    """Note that the demo's phase `name` ended now (`make demo` notes the ones before)."""
    with path.open("a") as out:
        out.write(f"{name} {time.time():.3f}\n")


def phase_report(path: Path, target_s: float = 180.0) -> list[str]:
    """The demo's phases from `path` (`<name> <epoch seconds>` lines, the first one `start`):
    how long each took, and the time to the first served prediction against `target_s`."""
    marks: list[tuple[str, float]] = []
    for line in path.read_text().splitlines():
        name, _, stamp = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            marks.append((name, float(stamp)))
    if len(marks) < 2 or marks[0][0] != "start":
        return [f"no demo phases in {path} (run `make demo`)"]
    lines = [
        f"  {name:16}{stamp - before:>7.1f} s"
        for (_, before), (name, stamp) in itertools.pairwise(marks)
    ]
    first = dict(marks).get("first answer")
    if first is not None:
        took = first - marks[0][1]
        verdict = "meets" if took <= target_s else "MISSES"
        lines.append(
            f"  time to the first served prediction: {took:.0f} s ({verdict} the target of "
            f"{target_s / 60:.0f} minutes)"
        )
    return lines


def _first_prediction(url: str) -> None:
    """One typical row to the service, its answer printed: the demo's first prediction.

    Raises:
        ServingError: the service did not answer 200.
    """
    import httpx

    from flowship.auth import client_headers
    from flowship.predict import probe_rows
    from flowship.schema import Schema

    with httpx.Client(base_url=url, timeout=30, headers=client_headers()) as client:
        schema = Schema.model_validate(_metadata(client)["schema"])
        answer = client.post("/predict", json={"rows": probe_rows(schema)[:1]})
    if answer.status_code != 200:
        raise ServingError(f"{url}/predict answered {answer.status_code}: {answer.text}")
    print(f"first prediction: {json.dumps(answer.json()['predictions'][0])}")


def demo_loop(scope: Scope, url: str, phases: Path | None = None) -> None:
    """The demo's monitoring loop: serve, send traffic, monitor, retrain, rebuild, re-serve.
    With `phases` (`make demo`'s file of phase marks), it notes when the service was ready and
    first answered, and prints how long each phase took at the end.

    Raises:
        ServingError: no Bento built yet, or it did not serve.
    """
    from datetime import UTC, datetime
    from urllib.parse import urlsplit

    from flowship.processes import served_bento

    if not TAG_FILE.is_file():
        raise ServingError("no Bento built yet: run `make bento`")
    demo = scope.settings.demo
    env = serving_env(scope)
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or scope.settings.serving.port
    bento = TAG_FILE.read_text().strip()
    stage(f"serving {bento} on {url}")
    with served_bento(bento, host, port, env):
        if phases:
            mark_phase(phases, "serve ready")
        _first_prediction(url)
        if phases:
            mark_phase(phases, "first answer")
        since = datetime.now(UTC).isoformat(timespec="seconds")
        stage("production traffic like the training data (baseline), with delayed labels")
        send_traffic(url, scope, "baseline", demo.loop_rows, demo.seed, demo.batch_rows)
        stage("MonitorFlow on that window: expect no alarm")
        monitor_and_retrain(scope, ["--since", since])
        since = datetime.now(UTC).isoformat(timespec="seconds")
        stage(f"the world changes ({demo.shift_scenario})")
        send_traffic(
            url, scope, demo.shift_scenario, demo.shift_rows, demo.seed + 1, demo.batch_rows
        )
        stage("MonitorFlow: the change is caught -> TrainFlow --with-feedback -> gate -> Bento")
        monitor_and_retrain(scope, ["--since", since])
    stage("the rebuilt Bento answers and names the new champion")
    champion = champion_pathspec(scope)
    smoke(scope, TAG_FILE.read_text().strip(), expect_run=champion)
    print("\nLook at: reports/gate_card.html, reports/monitor_card.html, and `make dashboard`.")
    if phases:
        mark_phase(phases, "monitoring loop")
        stage("how long each phase took")
        print("\n".join(phase_report(phases)))


def smoke(
    scope: Scope, bento: str | None = None, url: str | None = None, expect_run: str | None = None
) -> None:
    """Send a sample to a served Bento (serving `bento` meanwhile when no `url` is given) and
    show its answer and its lineage from `/metadata`.

    Raises:
        ServingError: the answer failed, or `/metadata` names another run than `expect_run`.
    """
    import httpx

    from flowship.auth import client_headers
    from flowship.predict import probe_rows
    from flowship.processes import free_port, served_bento
    from flowship.schema import Schema

    with contextlib.ExitStack() as stack:
        if url is None:
            if bento is None:
                raise ServingError("give a Bento tag or the URL of a running service")
            started = time.monotonic()
            url = stack.enter_context(
                served_bento(bento, "127.0.0.1", free_port(), serving_env(scope))
            )
            print(f"served {bento} on {url}: ready after {time.monotonic() - started:.1f} s")
        client = stack.enter_context(
            httpx.Client(base_url=url, timeout=30, headers=client_headers())
        )
        schema = Schema.model_validate(_metadata(client)["schema"])
        rows = probe_rows(schema)[:3]  # typical values of every feature
        answer = client.post("/predict", json={"rows": rows})
        if answer.status_code != 200:
            raise ServingError(f"{url}/predict answered {answer.status_code}: {answer.text}")
        print(f"POST /predict ({len(rows)} rows) ->\n{json.dumps(answer.json(), indent=2)}")
        meta = client.get("/metadata").json()
        keep = ["model_version", "run", "git_sha", "data_fingerprint", "verdict", "metrics"]
        print(f"GET /metadata ->\n{json.dumps({k: meta.get(k) for k in keep}, indent=2)}")
        if expect_run and meta.get("run") != expect_run:
            raise ServingError(f"/metadata names run {meta.get('run')}, expected {expect_run}")
