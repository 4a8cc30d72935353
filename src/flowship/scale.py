"""Scaling out: a local S3 stand-in, and compiling the flows into Argo WorkflowTemplates.

Moving to Kubernetes, Argo Workflows and S3 is Metaflow configuration, not code: the same flows
run with `METAFLOW_DEFAULT_DATASTORE=s3` and deploy with `argo-workflows create`. This module
proves both here, where no cloud is reachable: `local_s3` serves an S3 API on 127.0.0.1 (moto's
server mode) and `compile_argo` runs `argo-workflows create --only-json` against it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from flowship.errors import ScaleError
from flowship.processes import free_port, stop
from flowship.wiring import FLOW_FILES, flow_path

# What a standard Metaflow deployment on Kubernetes calls its services (Outerbounds' deployment
# templates): the metadata service (run tags are the champion registry, so pods need it) and
# the Argo Events objects `argo-workflows create` needs for @trigger. They fill in only what
# your Metaflow configuration (~/.metaflowconfig or METAFLOW_* variables) leaves unset.
DEPLOYMENT_DEFAULTS = {
    "METAFLOW_SERVICE_URL": "http://metadata-service.default:8080",
    "METAFLOW_ARGO_EVENTS_EVENT": "metaflow-event",
    "METAFLOW_ARGO_EVENTS_EVENT_BUS": "default",
    "METAFLOW_ARGO_EVENTS_EVENT_SOURCE": "argo-events-webhook",
    "METAFLOW_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa",
    "METAFLOW_ARGO_EVENTS_WEBHOOK_URL": (
        "http://argo-events-webhook-eventsource-svc.default:12000/metaflow-event"
    ),
}


def _require(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ScaleError(f"the '{module}' package is missing: pip install -e '.[{extra}]'")


@contextlib.contextmanager
def local_s3(bucket: str = "flowship", timeout: float = 30.0) -> Iterator[dict[str, str]]:
    """Serve an S3 API on 127.0.0.1 (moto's server mode) with `bucket` created; yield the
    environment that points Metaflow's S3 datastore at it. The server stops on exit.

    Raises:
        ScaleError: moto is not installed, or the server did not answer within `timeout`.
    """
    _require("moto", "dev")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                # moto accepts any credentials: creating the bucket is an unsigned PUT
                request = urllib.request.Request(f"{url}/{bucket}", method="PUT")
                urllib.request.urlopen(request, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise ScaleError(f"the local S3 server on {url} did not start") from None
                time.sleep(0.2)
        yield {
            "METAFLOW_DEFAULT_DATASTORE": "s3",
            "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/metaflow",
            "METAFLOW_S3_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "flowship-local",
            "AWS_SECRET_ACCESS_KEY": "flowship-local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        stop(server)


def configured_s3_root() -> str | None:
    """The S3 datastore root Metaflow is configured with (environment or ~/.metaflowconfig)."""
    from metaflow.metaflow_config import DATASTORE_SYSROOT_S3

    return DATASTORE_SYSROOT_S3 or None


def deployment_env() -> dict[str, str]:
    """DEPLOYMENT_DEFAULTS for what the Metaflow configuration leaves unset; with the default
    service URL, the metadata provider becomes the service too (pods cannot share a local one).
    """
    from metaflow import metaflow_config

    env = {
        key: value
        for key, value in DEPLOYMENT_DEFAULTS.items()
        if not getattr(metaflow_config, key.removeprefix("METAFLOW_"), None)
    }
    if "METAFLOW_SERVICE_URL" in env:
        env["METAFLOW_DEFAULT_METADATA"] = "service"
    return env


def compile_argo(
    flow: str,
    config: str | Path,
    env: Mapping[str, str],
    scope: list[str] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """`python flows/<flow>.py argo-workflows create --only-json`: the WorkflowTemplate that
    `argo-workflows create` would deploy, without a cluster. Uploads the code package to the
    configured S3 datastore (it must be reachable).

    Args:
        flow: "TrainFlow" or "MonitorFlow".
        config: the project TOML the flow is compiled with (schedules, resources, events).
        env: the environment (Metaflow's S3 and Argo Events settings).
        scope: top-level options such as ["--production"] or ["--branch", "x"].

    Raises:
        ScaleError: the compile failed or timed out (an unreachable S3 endpoint hangs it).
    """
    _require("kubernetes", "scale")
    if flow not in FLOW_FILES:
        raise ScaleError(f"unknown flow {flow!r}; use one of {sorted(FLOW_FILES)}")
    cmd = [sys.executable, str(flow_path(flow)), "--no-pylint", "--quiet"]
    cmd += [*(scope or []), "--config", "config", str(config)]
    cmd += ["argo-workflows", "create", "--only-json"]
    full_env = {**os.environ, **deployment_env(), **env}
    try:
        done = subprocess.run(
            cmd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ScaleError(
            f"compiling {flow} took over {timeout:.0f} s: is the S3 endpoint "
            f"{full_env.get('METAFLOW_S3_ENDPOINT_URL', '(AWS)')} reachable?"
        ) from None
    if done.returncode != 0:
        raise ScaleError(f"compiling {flow} for Argo failed:\n{done.stderr.strip()[-3000:]}")
    try:
        template: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ScaleError(
            f"{flow}: argo-workflows printed no JSON:\n{done.stdout[-2000:]}"
        ) from None
    return template


def describe_template(template: Mapping[str, Any]) -> list[str]:
    """What a WorkflowTemplate will do, in a few lines: steps, resources, schedule, triggers."""
    meta = template["metadata"]
    annotations = meta.get("annotations", {})
    graph = json.loads(annotations.get("metaflow/dag", "{}")).get("graph_structure", [])
    order = {name.replace("_", "-"): i for i, name in enumerate(_flatten(graph))}
    lines = [f"{meta['name']}"]
    for t in sorted(template["spec"]["templates"], key=lambda t: order.get(t["name"], 1 << 30)):
        requests = (t.get("container") or {}).get("resources", {}).get("requests")
        if requests and t["name"] in order:
            lines.append(
                f"  step {t['name']:<16} cpu {requests['cpu']:<5} memory {requests['memory']}"
            )
    cron = annotations.get("metaflow/cron")
    lines.append(f"  schedule {json.loads(cron)['schedule']} (UTC)" if cron else "  schedule none")
    triggers = annotations.get("metaflow/triggers")
    names = [t["name"] for t in json.loads(triggers)] if triggers else []
    lines.append(f"  triggered by events: {', '.join(names) or 'none'}")
    return lines


def _flatten(graph: Any) -> Iterator[str]:
    """Step names in order from Metaflow's nested graph structure (foreach bodies are lists)."""
    for item in graph:
        if isinstance(item, str):
            yield item
        else:
            yield from _flatten(item)
