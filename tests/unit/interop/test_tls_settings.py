"""TLS settings reach gunicorn; the TLS context refuses protocols older than 1.2."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from fhir_server import gunicorn_conf
from fhir_server.settings import Settings, SettingsError
from interop.cli import gunicorn_argv


def test_tls_files_are_passed_to_gunicorn_and_make_the_base_url_https() -> None:
    settings = Settings.from_env({"INTEROP_TLS_CERT": "/etc/x/cert.pem", "INTEROP_TLS_KEY": "/etc/x/key.pem"})
    argv = gunicorn_argv(settings)
    assert argv[argv.index("--certfile") + 1] == str(Path("/etc/x/cert.pem"))
    assert argv[argv.index("--keyfile") + 1] == str(Path("/etc/x/key.pem"))
    assert settings.base_url.startswith("https://")
    assert "--certfile" not in gunicorn_argv(Settings.from_env({}))


def test_tls_needs_both_files() -> None:
    with pytest.raises(SettingsError):
        Settings.from_env({"INTEROP_TLS_CERT": "/etc/x/cert.pem"})


def test_tls_context_minimum_version() -> None:
    def permissive() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        return context

    context = gunicorn_conf.ssl_context(None, permissive)
    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
