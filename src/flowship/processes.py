"""Processes flowship starts and stops itself: a free port, a served Bento, waiting until a
server is ready, stopping with a kill fallback. One copy of each, for the CLI and `scale`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from flowship.errors import ServingError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Stop a process we started: SIGTERM, then SIGKILL if it is still there after `timeout`
    seconds. Returns its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> float:
    """Wait until `url/readyz` answers 200; returns the seconds it took.

    Raises:
        ServingError: the process exited first, or `timeout` passed.
    """
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise ServingError(
                f"the server exited with status {proc.returncode} before it was ready"
                + _log_hint(proc)
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServingError(f"{url} was not ready after {timeout:.0f} s" + _log_hint(proc))


def _log_hint(proc: subprocess.Popen[bytes] | None) -> str:
    log = getattr(proc, "log_path", None)
    return f"; its output is in {log}" if log else ""


def start_bento(
    tag: str, host: str, port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`bentoml serve <tag>` in the background, its output in a temporary log file (named by
    the process's `log_path`). Not waited for: see `wait_ready`."""
    bentoml = Path(sys.executable).with_name("bentoml")
    handle, name = tempfile.mkstemp(prefix="flowship-serve-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        proc = subprocess.Popen(
            [str(bentoml), "serve", tag, "--host", host, "--port", str(port)],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = name  # type: ignore[attr-defined]
    return proc


@contextlib.contextmanager
def served_bento(
    tag: str, host: str, port: int, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Serve a Bento for the duration of a `with` block; yields its URL, stops it after.

    Raises:
        ServingError: the server did not become ready.
    """
    proc = start_bento(tag, host, port, env)
    try:
        url = f"http://{host}:{port}"
        wait_ready(url, proc)
        yield url
    finally:
        stop(proc)
