"""The ``interop`` command line: help on every command, configuration errors, the store command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pymongo import MongoClient

from fhir_server.settings import Settings
from interop.cli import cli, gunicorn_argv


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["run", "store", "INTEROP_"]),
        (["run"], ["INTEROP_MONGODB_URI", "SIGTERM", "gunicorn"]),
        (["store"], ["--data-dir", "URI"]),
    ],
)
def test_every_command_has_help(args: list[str], expected: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="interop")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: interop {' '.join(args)}".rstrip() + " [OPTIONS]")
    for text in expected:
        assert text in result.output


def test_invalid_configuration_is_reported_without_a_traceback() -> None:
    result = CliRunner().invoke(cli, ["run"], env={"INTEROP_AUTH": "sometimes"}, prog_name="interop")
    assert result.exit_code == 1
    assert "invalid configuration" in result.output
    assert "INTEROP_AUTH" in result.output


def test_gunicorn_command_line_follows_the_settings() -> None:
    argv = gunicorn_argv(Settings(http_host="0.0.0.0", http_port=9000, http_workers=3))
    assert argv[:4] == [sys.executable, "-m", "gunicorn", "fhir_server:create_app()"]
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:9000"
    assert argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--config") + 1] == "python:fhir_server.gunicorn_conf"
    assert argv[argv.index("--config") + 1] == "python:fhir_server.gunicorn_conf"
    assert gunicorn_argv(Settings(http_host="::1", http_port=80))[5] == "[::1]:80"


def test_store_command_prints_its_uri_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop.cli", "store", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        uri = proc.stdout.readline().decode().strip()
        if not uri:
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"interop store printed no URI: {err.decode()}")
        with MongoClient(uri) as client:
            assert client.admin.command("ping")["ok"] == 1.0
        port = int(uri.split(":")[2].split("/")[0])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        pass
