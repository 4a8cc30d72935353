"""Serving speed against what users would pick instead: one fitted pipeline, served by each
peer and by flowship's Bento, on the same machine, in the same run, under the same load.

Usage:
    python benchmarks/serving.py                 # 20 s per load test (the issue's setting)
    python benchmarks/serving.py --duration 5    # quicker
    python benchmarks/serving.py --only flowship --only noop   # servers whose name has these
    python benchmarks/serving.py --config config/delivery.toml   # the regression Bento

Trains the config (default: config/project.toml, the churn classifier) with TrainFlow in a
temporary datastore and builds its Bento in a temporary BentoML home. Then every server of
`SERVERS` serves that pipeline on 127.0.0.1 (a free port, stopped by PID): the peers
(MLServer's scikit-learn runtime with and without adaptive batching, `mlflow models serve`,
BentoML as its quickstart writes it, a naive FastAPI app), the bare HTTP limit (a no-op ASGI
app answering a constant of the same size) and flowship's Bento. The peers are installed
from the pins in benchmarks/peers.txt, each into its own venv under build/peers/ (never the
project's venv); a peer that cannot be installed is reported with the reason, and the rest go
on. Each server must answer the in-process pipeline's probabilities (or values) on a few
holdout rows before it is timed. Load: wrk, 32 connections of 1-row requests, then 4
connections of 1000-row requests. Prints one table, the targets, and as its last line one
JSON object (`peers`, `best_peer`, `flowship_rps`, `vs_best_peer`, `vs_noop`,
`flowship_p99_ms`, ...).

Targets: flowship >= 1.5x the best peer's req/s with p99 <= 50 ms and >= 40% of the no-op
limit; 1000-row requests >= 80% of raw in-process predict_proba rows/s; serve -> ready <= 5 s;
the prediction log costs <= 10% of req/s; the API-key check <= 5%; a shadow challenger keeps the
champion's p99 within 1.5x. It also prints /explain's rows/s.

Adding a server (a flowship variant with auth headers, a shadow Bento, another peer) is one
more `Server` entry in `SERVERS`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVER_APPS = REPO / "benchmarks" / "servers"
PEERS_FILE = REPO / "benchmarks" / "peers.txt"
PEER_VENVS = REPO / "build" / "peers"
SPEC_FILE = "flowship/bento_model.json"  # the Bento's own settings (flowship.bento.SPEC_FILE)
EXPLAIN_ROWS = 10  # rows per /explain request
# The pickled pipeline's own libraries: every peer gets the project venv's versions of these.
MODEL_LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "threadpoolctl")
ONE_ROW_CONNECTIONS, BIG_ROWS, BIG_CONNECTIONS = 32, 1000, 4
TELEMETRY_OFF = {
    "BENTOML_DO_NOT_TRACK": "True",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


# ---------------------------------------------------------------------------------------------
# What every server is built from, made once per run
# ---------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """The fitted pipeline and what the servers need of it."""

    tmp: Path
    env: dict[str, str]  # the project's: temporary datastore and BentoML home, telemetry off
    model: Any
    schema: Any  # flowship.schema.Schema
    model_file: Path  # the pipeline, joblib
    bento_tag: str
    requirements: list[str]  # MODEL_LIBRARIES (and a plug-in estimator's) pinned
    api_key: str  # flowship's Bento refuses requests without a key ([serving] auth = "keys")
    challenger_tag: str = ""  # the Bento with a challenger (built when a server needs it)
    venvs: dict[str, Path] = field(default_factory=dict)  # installed peers
    noop_answers: Path | None = None

    @property
    def predict_fn(self) -> str:
        return "predict_proba" if self.schema.kind.classifies else "predict"

    def outputs(self, frame: Any) -> Any:
        """The in-process pipeline's probabilities (or values), one row per input row."""
        import numpy as np

        values = self.schema.kind.outputs(self.model, frame[self.schema.features])
        return np.asarray(values, dtype=float).reshape(len(frame), -1)


@dataclass(frozen=True)
class Launch:
    """How to start a server: the command, its working folder and environment additions."""

    cmd: list[str]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Server:
    """One server under test.

    Attributes:
        name: its row in the table.
        kind: "peer" (what a user would pick instead), "flowship" (the first one is the one the
            targets are about) or "limit" (the no-op).
        configured: how it was set up, printed below the table (and in the README).
        launch: `launch(setup, port)`: writes what it needs under `setup.tmp`, returns how to
            start it on 127.0.0.1:port.
        path: the URL path that predicts.
        body: `body(setup, frame)`: the request body for these holdout rows.
        outputs: `outputs(setup, answer)`: the answer's probabilities (or values) as one row per
            input row; None for the no-op, whose answer is a constant.
        venv: the peer (benchmarks/peers.txt) whose venv it runs in; None: the project's venv.
        headers: `headers(setup)`: extra request headers (e.g. the API key).
    """

    name: str
    kind: Literal["peer", "flowship", "limit"]
    configured: str
    launch: Callable[[Setup, int], Launch]
    path: str
    body: Callable[[Setup, Any], str]
    outputs: Callable[[Setup, Any], Any] | None
    venv: str | None = None
    headers: Callable[[Setup], Mapping[str, str]] = lambda setup: {}


# ---------------------------------------------------------------------------------------------
# Request bodies and answers, by API shape
# ---------------------------------------------------------------------------------------------


def _records(frame: Any) -> list[dict[str, Any]]:
    out = []
    for record in frame.astype(object).to_dict(orient="records"):
        out.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        )
    return out


def records_body(setup: Setup, frame: Any) -> str:
    """`{"rows": [{feature: value, ...}, ...]}`: flowship's /predict, the FastAPI app, BentoML."""
    return json.dumps({"rows": _records(frame[setup.schema.features])})


def v2_body(setup: Setup, frame: Any) -> str:
    """The Open Inference (V2) protocol MLServer speaks: one input per column, decoded into a
    DataFrame (`content_type: pd`), numbers as FP64 and categories or text as strings."""
    records = _records(frame[setup.schema.features])
    inputs = []
    for column in setup.schema.features:
        values = [r[column] for r in records]
        entry: dict[str, Any] = {"name": column, "shape": [len(frame)], "data": values}
        if column in setup.schema.numeric:
            entry["datatype"] = "FP64"
        else:
            entry.update(datatype="BYTES", parameters={"content_type": "str"})
        inputs.append(entry)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs})


def split_body(setup: Setup, frame: Any) -> str:
    """MLflow's `dataframe_split` (columns once, then rows of values)."""
    records = _records(frame[setup.schema.features])
    return json.dumps(
        {
            "dataframe_split": {
                "columns": setup.schema.features,
                "data": [list(r.values()) for r in records],
            }
        }
    )


def bearer(setup: Setup) -> dict[str, str]:
    """flowship's API key header (the benchmark's key, given to the Bento at start)."""
    return {"Authorization": f"Bearer {setup.api_key}"}


def flowship_outputs(setup: Setup, answer: Any) -> Any:
    """The probabilities of `answer["predictions"]` in the model's class order (or values)."""
    import numpy as np

    predictions = answer["predictions"]
    if not setup.schema.kind.classifies:
        return np.array([[p["prediction"]] for p in predictions], dtype=float)
    classes = [str(c) for c in setup.model.classes_]
    return np.array([[p["probabilities"][c] for c in classes] for p in predictions], dtype=float)


def v2_outputs(setup: Setup, answer: Any) -> Any:
    import numpy as np

    out = answer["outputs"][0]
    return np.asarray(out["data"], dtype=float).reshape(out["shape"][0], -1)


def plain_outputs(setup: Setup, answer: Any) -> Any:
    """An answer that is the array itself (BentoML) or under "predictions" (MLflow)."""
    import numpy as np

    values = answer["predictions"] if isinstance(answer, dict) else answer
    return np.asarray(values, dtype=float).reshape(len(values), -1)


# ---------------------------------------------------------------------------------------------
# How each server starts
# ---------------------------------------------------------------------------------------------


def _uvicorn(app: str, extra_env: Callable[[Setup], Mapping[str, str]]) -> Callable[..., Launch]:
    def launch(setup: Setup, port: int) -> Launch:
        cmd = [str(BIN / "uvicorn"), app, "--app-dir", str(SERVER_APPS), "--workers", "2"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        return Launch(cmd, env=extra_env(setup))

    return launch


def _bento(
    env: Mapping[str, str] | None = None,
    serving: Mapping[str, Any] | None = None,
    challenger: bool = False,
) -> Callable[[Setup, int], Launch]:
    """flowship's Bento (`bentoml serve <tag>`; with `challenger`, the Bento built with a
    challenger beside the champion), `[serving]` settings as built but for `serving`, `env`
    added."""

    def launch(setup: Setup, port: int) -> Launch:
        tag = setup.challenger_tag if challenger else setup.bento_tag
        variables = dict(env or {})
        if serving:  # the Bento's own spec with these settings, read from a file of ours
            name, version = tag.split(":")
            home = Path(setup.env["BENTOML_HOME"])
            spec = json.loads((home / "bentos" / name / version / "src" / SPEC_FILE).read_text())
            spec["serving"] = {**spec["serving"], **serving}
            path = setup.tmp / f"spec-{abs(hash(json.dumps(serving, sort_keys=True)))}.json"
            path.write_text(json.dumps(spec))
            variables["FLOWSHIP_BENTO_SPEC"] = str(path)
        cmd = [str(BIN / "bentoml"), "serve", tag, "--host", "127.0.0.1"]
        return Launch([*cmd, "--port", str(port)], env=variables)

    return launch


def _mlserver(
    batching: bool, env: Mapping[str, str] | None = None
) -> Callable[[Setup, int], Launch]:
    """MLServer's scikit-learn runtime on the joblib file, 2 inference workers; adaptive
    batching of up to 32 requests (the connection count) waiting at most 10 ms, or off."""

    def launch(setup: Setup, port: int) -> Launch:
        from flowship.processes import free_port

        root = setup.tmp / f"mlserver-{port}"
        model_dir = root / "pipeline"
        model_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(setup.model_file, model_dir / "model.joblib")
        model: dict[str, Any] = {
            "name": "pipeline",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "extra": {"predict_fn": setup.predict_fn}},
        }
        if batching:
            model.update(max_batch_size=ONE_ROW_CONNECTIONS, max_batch_time=0.01)
        (model_dir / "model-settings.json").write_text(json.dumps(model))
        settings = {
            "host": "127.0.0.1",
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 2,
        }
        (root / "settings.json").write_text(json.dumps(settings))
        mlserver = setup.venvs["mlserver"] / "bin" / "mlserver"
        return Launch([str(mlserver), "start", str(root)], env=dict(env or {}))

    return launch


def _mlflow(setup: Setup, port: int) -> Launch:
    """`mlflow models serve` of the pipeline saved as an MLflow sklearn model: 2 uvicorn
    workers, the local environment (`--env-manager local`), default timeout."""
    venv = setup.venvs["mlflow"]
    out = setup.tmp / "mlflow-model"
    if not out.exists():
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                str(SERVER_APPS / "mlflow_model.py"),
                str(setup.model_file),
                str(out),
                setup.predict_fn,
                *setup.requirements,
            ],
            env=_peer_env(setup, venv),
            check=True,
            capture_output=True,
        )
    cmd = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(out), "--env-manager"]
    return Launch([*cmd, "local", "-w", "2", "-h", "127.0.0.1", "-p", str(port)])


def _bentoml_quickstart(setup: Setup, port: int) -> Launch:
    """Plain BentoML (benchmarks/servers/bentoml_quickstart.py), its own model store."""
    venv = setup.venvs["bentoml"]
    home = setup.tmp / "bentoml-peer"
    env = {"BENTOML_HOME": str(home)}
    if not home.exists():
        subprocess.run(
            [str(venv / "bin" / "python"), "bentoml_quickstart.py", "save", str(setup.model_file)],
            cwd=SERVER_APPS,
            env={**_peer_env(setup, venv), **env},
            check=True,
            capture_output=True,
        )
    cmd = [str(venv / "bin" / "bentoml"), "serve", "bentoml_quickstart:Churn"]
    return Launch([*cmd, "--host", "127.0.0.1", "--port", str(port)], cwd=SERVER_APPS, env=env)


SERVERS: list[Server] = [
    Server(
        name="no-op (HTTP alone)",
        kind="limit",
        configured="a plain ASGI app on uvicorn, 2 workers: reads the body, answers a constant "
        "JSON as long as flowship's answer (benchmarks/servers/noop.py)",
        launch=_uvicorn("noop:app", lambda s: {"FLOWSHIP_NOOP_ANSWERS": str(s.noop_answers)}),
        path="/predict",
        body=records_body,
        outputs=None,
    ),
    Server(
        name="no-op FastAPI endpoint",
        kind="limit",
        configured="the same constant from a FastAPI endpoint that parses the JSON body, "
        "uvicorn, 2 workers (benchmarks/servers/noop.py)",
        launch=_uvicorn(
            "noop:fastapi_app", lambda s: {"FLOWSHIP_NOOP_ANSWERS": str(s.noop_answers)}
        ),
        path="/predict",
        body=records_body,
        outputs=None,
    ),
    Server(
        name="FastAPI, naive",
        kind="peer",
        configured="FastAPI + uvicorn, 2 workers, predict_proba per request on a DataFrame of "
        "the rows (benchmarks/servers/fastapi_naive.py), the project's venv",
        launch=_uvicorn(
            "fastapi_naive:app", lambda s: {"FLOWSHIP_BASELINE_MODEL": str(s.model_file)}
        ),
        path="/predict",
        body=records_body,
        outputs=flowship_outputs,
    ),
    Server(
        name="MLServer, adaptive batching",
        kind="peer",
        configured="mlserver start, scikit-learn runtime on the joblib file (predict_fn "
        "predict_proba), parallel_workers 2, max_batch_size 32, max_batch_time 0.01 s; V2 "
        "request with content_type pd",
        launch=_mlserver(batching=True),
        path="/v2/models/pipeline/infer",
        body=v2_body,
        outputs=v2_outputs,
        venv="mlserver",
    ),
    Server(
        name="MLServer, batching, 1 thread",
        kind="peer",
        configured="the same with OMP_NUM_THREADS=1 (not in MLServer's docs; our tuning, so "
        "its two workers do not oversubscribe OpenMP on two cores)",
        launch=_mlserver(batching=True, env={"OMP_NUM_THREADS": "1"}),
        path="/v2/models/pipeline/infer",
        body=v2_body,
        outputs=v2_outputs,
        venv="mlserver",
    ),
    Server(
        name="MLServer, no batching",
        kind="peer",
        configured="the same, adaptive batching off (MLServer's default)",
        launch=_mlserver(batching=False),
        path="/v2/models/pipeline/infer",
        body=v2_body,
        outputs=v2_outputs,
        venv="mlserver",
    ),
    Server(
        name="mlflow models serve",
        kind="peer",
        configured="mlflow.sklearn.save_model (pyfunc_predict_fn predict_proba, no signature), "
        "`mlflow models serve --env-manager local -w 2`; dataframe_split requests",
        launch=_mlflow,
        path="/invocations",
        body=split_body,
        outputs=plain_outputs,
        venv="mlflow",
    ),
    Server(
        name="BentoML quickstart",
        kind="peer",
        configured="one @bentoml.service(workers=2), one @bentoml.api calling predict_proba "
        "on a DataFrame of the rows, nothing tuned (benchmarks/servers/bentoml_quickstart.py)",
        launch=_bentoml_quickstart,
        path="/predict",
        body=records_body,
        outputs=plain_outputs,
        venv="bentoml",
    ),
    Server(
        name="flowship Bento",
        kind="flowship",
        configured="`bentoml serve <tag>` of `make bento`'s Bento, [serving] as configured "
        "(2 workers, API keys on), prediction log on",
        launch=_bento(),
        path="/predict",
        body=records_body,
        outputs=flowship_outputs,
        headers=bearer,
    ),
    Server(
        name="flowship Bento, log off",
        kind="flowship",
        configured="the same with FLOWSHIP_LOG_PREDICTIONS=0, to price the prediction log",
        launch=_bento({"FLOWSHIP_LOG_PREDICTIONS": "0"}),
        path="/predict",
        body=records_body,
        outputs=flowship_outputs,
        headers=bearer,
    ),
    Server(
        name="flowship Bento, auth off",
        kind="flowship",
        configured='the same with [serving] auth = "none", to price the API-key check',
        launch=_bento(serving={"auth": "none"}),
        path="/predict",
        body=records_body,
        outputs=flowship_outputs,
    ),
    Server(
        name="flowship Bento, shadow",
        kind="flowship",
        configured="the Bento of `make bento CHALLENGER=latest` (a second run of the same config "
        "as the challenger), shadow mode: the champion answers, the challenger scores every row "
        "off the response path",
        launch=_bento(challenger=True),
        path="/predict",
        body=records_body,
        outputs=flowship_outputs,
        headers=bearer,
    ),
]


# ---------------------------------------------------------------------------------------------
# Peer venvs
# ---------------------------------------------------------------------------------------------


def read_peers(path: Path = PEERS_FILE) -> dict[str, list[str]]:
    """benchmarks/peers.txt: peer name → its pinned requirements."""
    peers: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise SystemExit(f"{path}:{number}: expected '<peer> <requirement>', got {line!r}")
        peers.setdefault(parts[0], []).append(parts[1])
    return peers


def model_requirements(model: Any) -> list[str]:
    """The pipeline's libraries at the versions loaded here (and a plug-in's distribution)."""
    from flowship.estimators import distribution_of

    pins = []
    for name in MODEL_LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            pins.append(f"{name}=={version(name)}")
    plugin = distribution_of(model.named_steps["model"])
    return [*pins, *([plugin] if plugin else [])]


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """build/peers/<name>, created and installed unless it already holds these requirements.

    The project's src/ goes on its path (a .pth file): the pipeline's own transformers live
    in `flowship.features`, as a user's would in their own package.

    Raises:
        RuntimeError: venv creation or pip failed; the message is pip's error.
    """
    venv = PEER_VENVS / name
    stamp = venv / ".flowship-peer"
    wanted = "\n".join(requirements) + "\n"
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv
    print(f"installing peer {name} into {venv.relative_to(REPO)} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", *requirements],
    ]  # fmt: skip
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [
                line for line in (done.stderr or done.stdout).splitlines() if "ERROR" in line
            ] or (done.stderr or done.stdout).splitlines()[-1:]
            raise RuntimeError(" / ".join(lines[-2:]) or f"exit {done.returncode}")
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", purelib], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(site, "flowship-src.pth").write_text(str(REPO / "src") + "\n")
    stamp.write_text(wanted)
    return venv


def _peer_env(setup: Setup, venv: Path) -> dict[str, str]:
    """A peer's environment: its venv first on PATH (its own uvicorn, gunicorn, ...)."""
    env = {k: v for k, v in setup.env.items() if k not in {"PYTHONPATH", "BENTOML_HOME"}}
    return {**env, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}


# ---------------------------------------------------------------------------------------------
# Load and measurement
# ---------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(
    url: str,
    body: str,
    headers: Mapping[str, str],
    duration: int,
    connections: int,
    workdir: Path,
) -> dict[str, Any]:
    """Run wrk against POST `url` with `body`; req/s, p50/p99 in ms, non-2xx and socket errors."""
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join([*lines, f"wrk.body = [==[{body}]==]", ""]))
    threads = min(2, connections)  # wrk refuses more threads than connections
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def pct(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": pct("50"),
        "p99": pct("99"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    }


def _raw(setup: Setup, frame: Any, seconds: float = 4.0) -> tuple[float, float]:
    """Rows/s of in-process predict_proba (predict): one row per call, and 1000-row frames;
    the better of one OpenMP thread and the default (every core), so the limit is the
    highest this process reached."""
    from threadpoolctl import threadpool_limits

    predict = getattr(setup.model, setup.predict_fn)
    features = frame[setup.schema.features]
    rows = [features.iloc[[i]] for i in range(200)]
    big = features.iloc[:BIG_ROWS]

    def rate(batches: list[Any], size: int) -> float:
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            predict(batches[n % len(batches)])
            n += 1
        return n * size / (time.perf_counter() - started)

    best = (0.0, 0.0)
    for threads in (1, None):
        with threadpool_limits(limits=threads):
            best = (max(best[0], rate(rows, 1)), max(best[1], rate([big], BIG_ROWS)))
    return best


class _TreeMemory:
    """The peak summed RSS of a process and its children, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                for proc in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.5)

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started and every process it started, by their PIDs."""
    import psutil

    from flowship.processes import stop

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    stop(proc)
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _post(url: str, body: str, headers: Mapping[str, str]) -> Any:
    import httpx

    answer = httpx.post(
        url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def _tail(log: Path) -> str:
    """The last lines of a server's output (the run's folder is removed at the end)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-2:]) or "no output"


def measure(
    server: Server, setup: Setup, args: argparse.Namespace, bodies: dict[Any, Any]
) -> dict[str, Any]:
    """Start the server, wait for its first correct answer, check it, load it, stop it."""
    import httpx
    import numpy as np

    from flowship.processes import free_port

    port = free_port()
    try:
        launch = server.launch(setup, port)
    except subprocess.CalledProcessError as exc:  # e.g. saving the model in the peer's format
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        return {"skipped": f"could not prepare it: {' '.join(exc.cmd[:3])}: {tail}"}
    env = _peer_env(setup, setup.venvs[server.venv]) if server.venv else dict(setup.env)
    log = setup.tmp / f"{re.sub(r'[^a-z0-9]+', '-', server.name.lower())}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            launch.cmd, cwd=launch.cwd, env={**env, **launch.env}, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}{server.path}"
    try:
        started, answer = time.monotonic(), None
        while answer is None:
            if proc.poll() is not None:
                return {"skipped": f"exited with {proc.returncode} before answering: {_tail(log)}"}
            if time.monotonic() - started > args.ready_timeout:
                return {"skipped": f"no answer after {args.ready_timeout} s: {_tail(log)}"}
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = _post(url, server.body(setup, bodies["check"]), server.headers(setup))
            if answer is None:
                time.sleep(0.05)
        ready = time.monotonic() - started
        if server.outputs is not None:
            got, expected = server.outputs(setup, answer), setup.outputs(bodies["check"])
            if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
                return {"skipped": f"its answers differ from the pipeline's: {got.tolist()} vs "
                        f"{expected.tolist()}"}  # fmt: skip
        time.sleep(1)
        with _TreeMemory(proc.pid) as memory:
            one = _wrk(url, bodies[(server.name, "one")], server.headers(setup), args.duration,
                       args.connections, setup.tmp)  # fmt: skip
        big = _wrk(url, bodies[(server.name, "big")], server.headers(setup),
                   max(5, args.duration // 2), BIG_CONNECTIONS, setup.tmp)  # fmt: skip
        return {
            **one,
            "ready_s": ready,
            "memory_mb": memory.peak / 2**20,
            "rows_s": big["rps"] * BIG_ROWS,
            "big_p99": big["p99"],
            "big_errors": big["errors"],
        }
    finally:
        _stop_tree(proc)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _train_and_build(
    config: str,
    env: dict[str, str],
    flow_args: tuple[str, ...] = (),
    bento_args: tuple[str, ...] = (),
) -> str:
    """TrainFlow on `config` in the temporary datastore, then its Bento; the Bento tag."""
    print(f"training {config} with TrainFlow (about a minute)...", flush=True)
    flow = [sys.executable, str(REPO / "flows/train_flow.py"), "--no-pylint", "--quiet"]
    subprocess.run(
        [*flow, "--config", "config", config, "run", *flow_args],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    built = subprocess.run(
        [sys.executable, "-m", "flowship", "bento", "--config", config, *bento_args],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return built.stdout.strip().splitlines()[-1]


def _explain_rate(setup: Setup, frame: Any, seconds: int) -> dict[str, float]:
    """/explain of flowship's Bento: rows/s with one client, and with two, sending
    EXPLAIN_ROWS-row requests, after a first call (which builds the explainer)."""
    from flowship.processes import free_port

    port = free_port()
    launch = _bento()(setup, port)
    log = setup.tmp / "explain.log"
    with log.open("w") as out:
        proc = subprocess.Popen(launch.cmd, env={**setup.env, **launch.env}, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/explain"
    body = records_body(setup, frame.iloc[:EXPLAIN_ROWS])
    try:
        started = time.monotonic()
        while True:
            with contextlib.suppress(Exception):
                _post(url, body, bearer(setup))
                break
            if proc.poll() is not None or time.monotonic() - started > 120:
                raise RuntimeError(f"/explain never answered: {_tail(log)}")
            time.sleep(0.2)
        one = _wrk(url, body, bearer(setup), seconds, 1, setup.tmp)
        two = _wrk(url, body, bearer(setup), seconds, 2, setup.tmp)
    finally:
        _stop_tree(proc)
    return {
        "rows_s_1": one["rps"] * EXPLAIN_ROWS,
        "rows_s_2": two["rps"] * EXPLAIN_ROWS,
        "p50_ms": one["p50"],
        "errors": one["errors"] + two["errors"],
    }


def _check_rows(holdout: Any) -> Any:
    """A few holdout rows for the answer check: the first three and two with a missing value."""
    import pandas as pd

    missing = holdout[holdout.isna().any(axis=1)].iloc[:2]
    return pd.concat([holdout.iloc[:3], missing])


def _noop_answers(setup: Setup, bodies: dict[Any, Any]) -> Path:
    """flowship's answers to the 1-row and 1000-row bodies, by body length, for the no-op."""
    from flowship.predict import Predictions, answers

    def answer(frame: Any) -> str:
        outputs = setup.outputs(frame)
        if setup.schema.kind.classifies:
            classes = [str(c) for c in setup.model.classes_]
            labels = [classes[i] for i in outputs.argmax(axis=1)]
            predictions = Predictions(labels, outputs.tolist(), classes)
        else:
            predictions = Predictions(outputs[:, 0].tolist(), [[] for _ in outputs], [])
        body = {
            "request_id": "0" * 32,
            "model_version": setup.bento_tag,
            "predictions": [a.model_dump() for a in answers(predictions)],
        }
        return json.dumps(body)

    path = setup.tmp / "noop-answers.json"
    sizes = {
        len(records_body(setup, bodies[size]).encode()): answer(bodies[size])
        for size in ("one", "big")
    }
    path.write_text(json.dumps(sizes))
    return path


def _report(
    results: dict[str, dict[str, Any]],
    raw: tuple[float, float],
    args: argparse.Namespace,
    task: str,
    explain: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Print the table and the targets; return the summary JSON."""
    measured = {n: r for n, r in results.items() if "rps" in r}
    kinds = {s.name: s.kind for s in SERVERS}
    ours_name = next((n for n in measured if kinds[n] == "flowship"), None)
    ours = measured.get(ours_name or "")
    print()
    print(
        f"Serving benchmark ({args.config}, {task}), {time.strftime('%Y-%m-%d')}: "
        f"{args.connections} connections of 1-row requests for {args.duration} s, then "
        f"{BIG_CONNECTIONS} of {BIG_ROWS}-row requests (wrk); the load generator shares the cores"
    )
    head = f"{'':30}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'rows/s@1000':>13}"
    print(head + f"{'ready s':>9}{'MB':>7}{'flowship/it':>13}")
    for name, r in results.items():
        if "rps" not in r:
            print(f"{name:30}  not measured: {r['skipped']}")
            continue
        vs = f"{ours['rps'] / r['rps']:.2f}x" if ours and r["rps"] else "-"
        print(
            f"{name:30}{r['rps']:>8.0f}{r['p50']:>8.1f}{r['p99']:>8.1f}"
            f"{r['errors'] + r['big_errors']:>8}{r['rows_s']:>13,.0f}{r['ready_s']:>9.1f}"
            f"{r['memory_mb']:>7.0f}{vs:>13}"
        )
    print(f"{'raw predict_proba, in-process':30}{raw[0]:>8.0f}{'':24}{raw[1]:>13,.0f}  (rows/s)")
    print()
    for server in SERVERS:
        if server.name in results:
            print(f"  {server.name}: {server.configured}")
    peers = {n: r["rps"] for n, r in measured.items() if kinds[n] == "peer"}
    best = max(peers, key=peers.__getitem__) if peers else None
    noop = next((r for n, r in measured.items() if kinds[n] == "limit"), None)
    summary: dict[str, Any] = {
        "config": args.config,
        "task": task,
        "peers": {n: round(v, 1) for n, v in peers.items()},
        "best_peer": best,
        "not_measured": {n: r["skipped"] for n, r in results.items() if "rps" not in r},
    }
    if ours is None:
        print("\nflowship's Bento was not measured: no ratios")
        return summary
    print()

    def target(label: str, value: str, ok: bool, goal: str) -> None:
        print(f"{label:36}{value:>10}   {'meets' if ok else 'MISSES'} {goal}")

    if best:
        vs_best = ours["rps"] / peers[best]
        target(f"flowship / best peer ({best})", f"{vs_best:.2f}x", vs_best >= 1.5, ">= 1.5x")
        summary["vs_best_peer"] = round(vs_best, 3)
    target("flowship p99", f"{ours['p99']:.1f} ms", ours["p99"] <= 50, "<= 50 ms")
    if noop:
        vs_noop = ours["rps"] / noop["rps"]
        target("flowship / no-op limit", f"{vs_noop:.0%}", vs_noop >= 0.4, ">= 40%")
        summary["vs_noop"] = round(vs_noop, 3)
    big_share = ours["rows_s"] / raw[1]
    target("1000-row rows/s / raw predict_proba", f"{big_share:.0%}", big_share >= 0.8, ">= 80%")
    target("serve -> first answer", f"{ours['ready_s']:.1f} s", ours["ready_s"] <= 5, "<= 5 s")
    unlogged = measured.get("flowship Bento, log off")
    if unlogged and ours_name == "flowship Bento":
        cost = 1 - ours["rps"] / unlogged["rps"]
        target("prediction log cost", f"{cost:.0%}", cost <= 0.10, "<= 10% of req/s")
        summary["log_cost"] = round(cost, 3)
    open_bento = measured.get("flowship Bento, auth off")
    if open_bento and ours_name == "flowship Bento":
        cost = 1 - ours["rps"] / open_bento["rps"]
        target("API-key check cost", f"{cost:.0%}", cost <= 0.05, "<= 5% of req/s")
        summary["auth_cost"] = round(cost, 3)
    shadow = measured.get("flowship Bento, shadow")
    if shadow and ours_name == "flowship Bento":
        ratio = shadow["p99"] / ours["p99"]
        target("p99 with a shadow challenger", f"{ratio:.2f}x", ratio <= 1.5, "<= 1.5x without")
        summary["shadow_p99_ratio"] = round(ratio, 3)
    if explain:
        print(
            f"{'/explain rows/s (1 / 2 clients)':36}{explain['rows_s_1']:>10,.0f} / "
            f"{explain['rows_s_2']:,.0f}   ({EXPLAIN_ROWS}-row requests, p50 "
            f"{explain['p50_ms']:.0f} ms, {explain['errors']:.0f} errors)"
        )
        summary["explain_rows_s"] = round(explain["rows_s_2"], 1)
    summary.update(
        flowship_rps=round(ours["rps"], 1),
        flowship_p99_ms=round(ours["p99"], 2),
        flowship_rows_s_1000=round(ours["rows_s"]),
        raw_rows_s_1000=round(raw[1]),
        vs_raw_1000=round(big_share, 3),
        flowship_ready_s=round(ours["ready_s"], 2),
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per 1-row load test")
    parser.add_argument("--connections", type=int, default=ONE_ROW_CONNECTIONS)
    parser.add_argument("--config", default="config/project.toml", help="the project to serve")
    parser.add_argument(
        "--only", action="append", default=[], help="servers whose name contains this (repeat)"
    )
    parser.add_argument("--ready-timeout", type=int, default=120, help="seconds to first answer")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install -y wrk (make bench needs it on PATH)"
        )
    servers = [
        s for s in SERVERS if not args.only or any(o.lower() in s.name.lower() for o in args.only)
    ]

    from flowship.auth import KEYS_ENV, key_line, new_key

    api_key = new_key()
    tmp = Path(tempfile.mkdtemp(prefix="flowship-serving-bench-"))
    (tmp / ".metaflow").mkdir()
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        "USERNAME": "bench",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp),
        "BENTOML_HOME": str(tmp / "bentoml"),
        "FLOWSHIP_PREDICTION_LOG_DIR": str(tmp / "predictions"),
        KEYS_ENV: key_line("bench", api_key),
    }
    os.environ.update(env)  # the Metaflow client below reads the same datastore
    try:
        bento_tag = _train_and_build(args.config, env)
        import joblib
        from metaflow import Flow, namespace

        namespace(None)
        data = Flow("TrainFlow").latest_successful_run.data
        setup = Setup(
            tmp=tmp,
            env=env,
            model=data.model,
            schema=data.schema,
            model_file=tmp / "model.joblib",
            bento_tag=bento_tag,
            requirements=model_requirements(data.model),
            api_key=api_key,
        )
        joblib.dump(setup.model, setup.model_file)
        if any(s.name == "flowship Bento, shadow" for s in servers):
            print("a challenger for the shadow Bento: the same config as a dry run...", flush=True)
            setup.challenger_tag = _train_and_build(
                args.config, env, ("--dry-run", "True"), ("--challenger", "latest")
            )
        holdout = data.holdout
        bodies: dict[Any, Any] = {
            "check": _check_rows(holdout[setup.schema.features]),
            "one": holdout.iloc[:1],
            "big": holdout.iloc[:BIG_ROWS],
        }
        for server in servers:
            bodies[(server.name, "one")] = server.body(setup, bodies["one"])
            bodies[(server.name, "big")] = server.body(setup, bodies["big"])
        setup.noop_answers = _noop_answers(setup, bodies)

        results: dict[str, dict[str, Any]] = {}
        peers = read_peers()
        for name in sorted({s.venv for s in servers if s.venv}):
            if name not in peers:
                raise SystemExit(f"{PEERS_FILE} has no lines for the peer {name!r}")
            try:
                setup.venvs[name] = ensure_venv(name, [*peers[name], *setup.requirements])
            except (RuntimeError, OSError) as exc:
                for server in servers:
                    if server.venv == name:
                        results[server.name] = {"skipped": f"{name} did not install: {exc}"}
                print(f"peer {name} did not install: {exc}", flush=True)

        print("raw in-process predict_proba...", flush=True)
        raw = _raw(setup, holdout)
        for server in servers:
            if server.name in results:
                continue
            print(f"{server.name}...", flush=True)
            results[server.name] = measure(server, setup, args, bodies)
            if "skipped" in results[server.name]:
                print(f"  not measured: {results[server.name]['skipped']}", flush=True)
        explain = None
        if any(s.name == "flowship Bento" for s in servers):
            print("flowship /explain...", flush=True)
            try:
                explain = _explain_rate(setup, holdout, max(5, args.duration // 2))
            except (RuntimeError, subprocess.CalledProcessError) as error:
                print(f"  not measured: {error}", flush=True)
        summary = _report(
            {s.name: results[s.name] for s in servers}, raw, args, data.schema.task, explain
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
