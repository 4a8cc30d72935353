"""Processes flowship starts: free ports, waiting for readiness, stopping with a fallback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from flowship.errors import ServingError
from flowship.processes import free_port, stop, wait_ready


def test_free_port_can_be_bound() -> None:
    """The port is free on 127.0.0.1 right after it is handed out."""
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_stop_terminates_a_process() -> None:
    """A process that honours SIGTERM ends with it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stop(proc, timeout=10) == -signal.SIGTERM


def test_stop_kills_a_process_that_ignores_sigterm() -> None:
    """A process that ignores SIGTERM is killed once the timeout passes."""
    code = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    assert stop(proc, timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_stop_of_a_finished_process_returns_its_status() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert stop(proc) == 3


def test_wait_ready_reports_a_server_that_exited() -> None:
    """A server that dies before it is ready is an error naming its exit status."""
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    proc.wait()
    with pytest.raises(ServingError, match="exited with status 4 before it was ready"):
        wait_ready(f"http://127.0.0.1:{free_port()}", proc, timeout=5)


def test_wait_ready_times_out() -> None:
    """Nothing listening: not ready after the timeout."""
    with pytest.raises(ServingError, match=r"was not ready after 1 s"):
        wait_ready(f"http://127.0.0.1:{free_port()}", None, timeout=1)
