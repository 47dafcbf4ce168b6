"""`interop client create`, `interop user create` and `interop token` against the real store."""

from __future__ import annotations

import json

from click.testing import CliRunner
from flask.testing import FlaskClient

from fhir_server.settings import Settings
from interop.cli import cli
from tests.integration.smart import bearer, ec_key, public_jwks


def _env(settings: Settings) -> dict[str, str]:
    assert settings.mongodb_uri
    return {"INTEROP_MONGODB_URI": settings.mongodb_uri, "INTEROP_MONGODB_DATABASE": settings.database}


def test_cli_token_is_accepted_by_the_server(settings: Settings, secure_client: FlaskClient) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["token", "--scopes", "system/Patient.rs"], env=_env(settings))
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert secure_client.get("/fhir/Patient", headers=bearer(token)).status_code == 200
    assert secure_client.get("/fhir/Observation", headers=bearer(token)).status_code == 403
    bad = runner.invoke(cli, ["token", "--scopes", "system/Patient.xyz"], env=_env(settings))
    assert bad.exit_code != 0
    no_patient = runner.invoke(cli, ["token", "--scopes", "patient/*.rs"], env=_env(settings))
    assert no_patient.exit_code != 0
    assert "--patient" in no_patient.output


def test_cli_creates_clients_and_users(settings: Settings, secure_client: FlaskClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    secret = runner.invoke(
        cli,
        ["client", "create", "--name", "Lab feed", "--scopes", "system/*.rs", "--secret"],
        env=_env(settings),
    )
    assert secret.exit_code == 0, secret.output
    lines = dict(line.split(": ", 1) for line in secret.output.splitlines() if ": " in line)
    assert lines["token_endpoint"] == "http://127.0.0.1:8080/auth/token"
    issued = secure_client.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": lines["client_id"],
            "client_secret": lines["client_secret"],
        },
    )
    assert issued.status_code == 200

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(ec_key())))
    backend = runner.invoke(
        cli,
        ["client", "create", "--name", "bulk", "--scopes", "system/*.rs", "--jwks", str(jwks)],
        env=_env(settings),
    )
    assert backend.exit_code == 0, backend.output
    assert "private_key_jwt" in backend.output
    assert "client_secret" not in backend.output

    made = runner.invoke(
        cli,
        ["user", "create", "--username", "ann", "--patient", "p1"],
        input="long enough\nlong enough\n",
        env=_env(settings),
    )
    assert made.exit_code == 0, made.output
    again = runner.invoke(
        cli, ["user", "create", "--username", "ann", "--password", "long enough"], env=_env(settings)
    )
    assert again.exit_code != 0
