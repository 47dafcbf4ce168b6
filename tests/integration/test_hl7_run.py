"""``interop run`` (what ``make run`` starts) serves MLLP beside HTTP and stops both on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hl7_listener.client import ack_code
from interop.cli import listener_argv
from tests.integration.hl7_helpers import adt, send

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "interop run exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.1)  # doubles as the pause between attempts
    raise AssertionError(f"nothing listens on {port}")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _poll(probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """The probe's first truthy answer: the listener processes behind its ACK."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answer := probe():
            return answer
        time.sleep(0.05)  # a poll interval, not a timing assumption: the deadline decides
    raise AssertionError(f"no answer within {timeout} s")


def test_listener_command_line() -> None:
    assert listener_argv() == [sys.executable, "-m", "interop.cli", "hl7", "listen"]


def test_run_serves_mllp_and_stops_cleanly(tmp_path: Path) -> None:
    mllp_port = _free_port()
    env = {
        **os.environ,
        "INTEROP_DATA_DIR": str(tmp_path),
        "INTEROP_AUTH": "disabled",
        "INTEROP_HTTP_PORT": str(_free_port()),
        "INTEROP_HTTP_WORKERS": "1",
        "INTEROP_MLLP_PORT": str(mllp_port),
        "INTEROP_MLLP_METRICS_PORT": "0",
        "INTEROP_LOG_LEVEL": "WARNING",
    }
    env.pop("INTEROP_MONGODB_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop.cli", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_port(mllp_port, proc)
        [reply] = send(("127.0.0.1", mllp_port), [adt("RUN1")])
        assert ack_code(reply) == "AA"
        # The HTTP worker caches what it reads (embedded store: INTEROP_READ_CACHE=auto is
        # on); the listener, another process, updates the patient; the next reads see it.
        base = f"http://127.0.0.1:{env['INTEROP_HTTP_PORT']}/fhir"
        found = _poll(lambda: _get(f"{base}/Patient?identifier=MRNRUN1").get("entry"))
        url = f"{base}/Patient/{found[0]['resource']['id']}"
        assert _get(url)["name"][0]["family"] == "Doe"
        [reply] = send(
            ("127.0.0.1", mllp_port), [adt("RUN2").replace(b"MRNRUN2", b"MRNRUN1").replace(b"Doe^", b"Roe^")]
        )
        assert ack_code(reply) == "AA"
        assert _poll(lambda: _get(url)["name"][0]["family"] == "Roe")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", mllp_port), 1):
            pass  # the listener is gone with the rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
