"""Serving speed: raw predict_proba vs a bare FastAPI app vs our Bento, same model, same run.

Usage:
    python benchmarks/serving.py                 # 20 s per load test (the issue's setting)
    python benchmarks/serving.py --duration 5    # quicker
    python benchmarks/serving.py --config config/delivery.toml   # the regression Bento

Trains the config (default: config/project.toml, the churn classifier) with TrainFlow in a
temporary datastore, exports and builds the Bento in a temporary BentoML home, then measures
on 127.0.0.1:
  (a) raw in-process predict_proba (predict for regression): one row per call, and 1000-row
      frames (the limit);
  (b) the baseline a user would write: FastAPI + uvicorn, 2 workers, a naive per-request
      predict_proba on the same pipeline (benchmarks/fastapi_baseline.py);
  (c) our Bento (`bentoml serve <tag>`), 2 workers.
Load comes from a separate process, wrk (Debian's package), 32 connections, 1-row requests;
then 1000-row requests against the Bento. Prints req/s, p50 and p99, rows/s and the ratios.
Targets: (c) >= 2.0x (b) req/s with p99 <= 50 ms; 1000-row rows/s >= 50% of raw 1000-row
rows/s; serve -> ready <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server not ready after {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(url: str, body: str, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    """Run wrk against POST `url` with `body`; returns req/s, p50/p99 in ms, non-2xx count."""
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def pct(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(match.group(1)) * _UNITS[match.group(2)] if match else math.nan

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": pct("50"),
        "p99": pct("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


def _raw(model: Any, frame: Any, seconds: float = 5.0) -> tuple[float, float]:
    """Rows/s of in-process predict_proba: one row per call, and 1000-row frames."""
    predict = getattr(model, "predict_proba", model.predict)  # a regressor: its values
    rows = [frame.iloc[[i]] for i in range(200)]
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predict(rows[n % len(rows)])
        n += 1
    per_row = n / (time.perf_counter() - started)
    big = frame.iloc[:1000]
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predict(big)
        n += 1000
    return per_row, n / (time.perf_counter() - started)


def _bench_bento(
    tag: str,
    env: dict[str, str],
    args: argparse.Namespace,
    one_row: str,
    big_rows: str | None,
    tmp: Path,
    servers: list[subprocess.Popen[bytes]],
) -> tuple[float, dict[str, Any], dict[str, Any] | None]:
    """Serve the Bento, load it with 1-row (and optionally 1000-row) requests, stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers.append(proc)
    ready_s = _wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
    time.sleep(1)
    url = f"http://127.0.0.1:{port}/predict"
    one = _wrk(url, one_row, args.duration, args.connections, tmp)
    big = _wrk(url, big_rows, max(5, args.duration // 2), 4, tmp) if big_rows else None
    _stop(proc)
    return ready_s, one, big


def _records(frame: Any) -> list[dict[str, Any]]:
    out = []
    for record in frame.astype(object).to_dict(orient="records"):
        out.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per load test")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--config", default="config/project.toml", help="the project to serve")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install -y wrk (make bench needs it on PATH)"
        )

    tmp = Path(tempfile.mkdtemp(prefix="flowship-serving-bench-"))
    (tmp / ".metaflow").mkdir()
    env = {
        **os.environ,
        "USERNAME": "bench",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(tmp),
        "BENTOML_HOME": str(tmp / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "DO_NOT_TRACK": "1",
        "FLOWSHIP_PREDICTION_LOG_DIR": str(tmp / "predictions"),
    }
    os.environ.update(env)  # the Metaflow client below reads the same datastore
    servers: list[subprocess.Popen[bytes]] = []
    try:
        print(f"training {args.config} with TrainFlow (about a minute)...", flush=True)
        flow = [sys.executable, str(REPO / "flows/train_flow.py"), "--no-pylint", "--quiet"]
        subprocess.run(
            [*flow, "--config", "config", args.config, "run"],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        bento_tag = (
            subprocess.run(
                [sys.executable, "-m", "flowship", "bento", "--config", args.config],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )

        import joblib
        from metaflow import Flow, namespace

        namespace(None)
        data = Flow("TrainFlow").latest_successful_run.data
        model, features = data.model, data.schema.features
        holdout = data.holdout[features]
        joblib.dump(model, tmp / "model.joblib")
        one_row = json.dumps({"rows": _records(holdout.iloc[:1])})
        big_rows = json.dumps({"rows": _records(holdout.iloc[:1000])})

        print("(a) raw in-process predict_proba...", flush=True)
        raw_row, raw_batch = _raw(model, holdout)

        print("(b) FastAPI + uvicorn baseline, 2 workers...", flush=True)
        port = _free_port()
        base = subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "benchmarks.fastapi_baseline:app",
                "--workers",
                "2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env={**env, "FLOWSHIP_BASELINE_MODEL": str(tmp / "model.joblib")},
        )
        servers.append(base)
        _wait_ready(f"http://127.0.0.1:{port}/docs", base)
        time.sleep(1)
        url = f"http://127.0.0.1:{port}/predict"
        baseline = _wrk(url, one_row, args.duration, args.connections, tmp)
        baseline_big = _wrk(url, big_rows, max(5, args.duration // 2), 4, tmp)
        _stop(base)

        print(f"(c) Bento {bento_tag}, 2 workers...", flush=True)
        ready_s, ours, ours_big = _bench_bento(
            bento_tag, env, args, one_row, big_rows, tmp, servers
        )
        print("(c') the same Bento with the prediction log off, to price the log...", flush=True)
        _, unlogged, _ = _bench_bento(
            bento_tag, {**env, "FLOWSHIP_LOG_PREDICTIONS": "0"}, args, one_row, None, tmp, servers
        )
    finally:
        for proc in servers:
            if proc.poll() is None:
                _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)

    assert ours_big is not None
    ratio = ours["rps"] / baseline["rps"]
    big_share = ours_big["rps"] * 1000 / raw_batch
    print()
    print(
        f"Serving benchmark ({args.config}, {data.schema.task}): {args.connections} "
        "connections of 1-row requests for "
        f"{args.duration} s (wrk), 2 cores shared with the load generator"
    )
    print(f"{'':34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}")
    rows = (
        ("(b) FastAPI + uvicorn, 2 workers", baseline),
        ("(c) Bento, 2 workers", ours),
        ("(c') Bento, prediction log off", unlogged),
    )
    for name, r in rows:
        print(f"{name:34}{r['rps']:>10.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{r['non_2xx']:>10.0f}")
    print(f"{'(a) raw predict_proba, 1 row/call':34}{raw_row:>10.0f}  rows/s in-process")
    print()
    print(
        f"1000-row requests, 4 connections:  Bento {ours_big['rps'] * 1000:,.0f} rows/s "
        f"(p99 {ours_big['p99']:.0f} ms), FastAPI {baseline_big['rps'] * 1000:,.0f} rows/s, "
        f"raw 1000-row predict_proba {raw_batch:,.0f} rows/s"
    )
    print()
    print(f"Bento / FastAPI req/s:        {ratio:.2f}x   (target >= 2.0x)")
    print(f"Bento p99:                    {ours['p99']:.1f} ms (target <= 50 ms)")
    print(f"1000-row rows/s / raw:        {big_share:.0%}   (target >= 50%)")
    print(f"serve -> ready:               {ready_s:.1f} s  (target <= 5 s)")
    cost = 1 - ours["rps"] / unlogged["rps"]
    print(f"prediction log cost:          {cost:.0%} of req/s (target <= 10%)")


if __name__ == "__main__":
    main()
