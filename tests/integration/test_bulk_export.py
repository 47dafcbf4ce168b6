"""Bulk Data ``$export`` against the real store: the async pattern, filters, restart,
and a round trip (export, then import into a fresh database: the same resources)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from interop.cli import cli
from tests.integration.helpers import headers
from tests.population_data import generate, transaction

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def finish(client: FlaskClient, app: Flask, location: str) -> Any:
    """Poll the status URL until it stops answering 202, waiting on the worker in between."""
    job = location.rsplit("/", 1)[1]
    for _ in range(300):
        response = client.get(location)
        if response.status_code != 202:
            return response
        assert response.headers["X-Progress"]
        app.extensions["interop_exports"].wait(job, 0.2)
    raise AssertionError("the export did not finish")


def kick_off(client: FlaskClient, path: str, **params: str) -> str:
    response = client.get(path, query_string=params, headers=ASYNC)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.headers["Content-Location"]


def exported(client: FlaskClient, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        response = client.get(output["url"])
        assert response.status_code == 200
        assert response.mimetype == "application/fhir+ndjson"
        lines = [orjson.loads(line) for line in response.get_data().splitlines()]
        assert len(lines) == output["count"]
        found.setdefault(output["type"], []).extend(lines)
    return found


@pytest.fixture
def loaded(client: FlaskClient) -> Any:
    pop = generate(seed=3, patients=15)
    assert client.post("/fhir", json=transaction(pop.resources), headers=headers()).status_code == 200
    for key in sorted(pop.deleted):
        client.delete(f"/fhir/{key}")
    return pop


def test_system_export_lists_every_current_resource(client: FlaskClient, app: Flask, loaded: Any) -> None:
    location = kick_off(client, "/fhir/$export", _type="Patient,Observation")
    response = finish(client, app, location)
    assert response.status_code == 200
    manifest = response.get_json()
    assert manifest["requiresAccessToken"] is False
    assert manifest["request"].endswith("$export?_type=Patient,Observation")
    files = exported(client, manifest)
    assert set(files) == {"Patient", "Observation"}
    for resource_type in ("Patient", "Observation"):
        ids = sorted(r["id"] for r in files[resource_type])
        assert ids == sorted(r["id"] for r in loaded.current(resource_type))


def test_since_exports_only_later_changes(client: FlaskClient, app: Flask, loaded: Any) -> None:
    cut = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}).status_code == 200
    assert client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "male"}).status_code == 201
    files = exported(client, finish(client, app, kick_off(client, "/fhir/$export", _since=cut)).get_json())
    assert set(files) == {"Patient"}
    assert len(files["Patient"]) == 2 and "p1" in {r["id"] for r in files["Patient"]}


def test_patient_and_group_exports(client: FlaskClient, app: Flask, loaded: Any) -> None:
    extra = [
        {"resourceType": "Organization", "id": "org", "name": "Not about a patient"},
        {"resourceType": "Group", "id": "g", "type": "person", "actual": True,
         "member": [{"entity": {"reference": "Patient/p2"}}, {"entity": {"reference": "Patient/p3"}}]},
        {"resourceType": "Observation", "id": "about-group", "status": "final", "code": {"text": "x"},
         "subject": {"reference": "Group/g"}},
    ]  # fmt: skip
    assert client.post("/fhir", json=transaction(extra), headers=headers()).status_code == 200
    everyone = exported(client, finish(client, app, kick_off(client, "/fhir/Patient/$export")).get_json())
    assert "Organization" not in everyone  # not in the Patient compartment
    assert [r["id"] for r in everyone["Group"]] == ["g"]  # its members are patients
    observations = {r["id"] for r in everyone["Observation"]}
    assert "about-group" not in observations
    assert observations == {r["id"] for r in loaded.current("Observation")}

    members = exported(client, finish(client, app, kick_off(client, "/fhir/Group/g/$export")).get_json())
    subjects = {r["subject"]["reference"] for t in ("Observation", "Condition") for r in members.get(t, [])}
    assert subjects and subjects <= {"Patient/p2", "Patient/p3"}
    assert {r["id"] for r in members["Patient"]} <= {"p2", "p3"}
    expected = {r["id"] for r in loaded.current("Observation") if r["subject"]["reference"] in subjects}
    assert {r["id"] for r in members["Observation"]} == expected


@pytest.mark.parametrize(
    ("path", "params", "extra_headers", "status"),
    [
        ("/fhir/$export", {}, {"Prefer": "respond-sync"}, 400),
        ("/fhir/$export", {"_outputFormat": "text/csv"}, {}, 400),
        ("/fhir/$export", {"_typeFilter": "Patient?active=true"}, {}, 400),
        ("/fhir/Patient/$export", {"_type": "Organization"}, {}, 400),
        ("/fhir/Group/nope/$export", {}, {}, 404),
        ("/fhir/$export-status/0123abcd", {}, {}, 404),
    ],
)
def test_refusals(
    client: FlaskClient, path: str, params: dict[str, str], extra_headers: dict[str, str], status: int
) -> None:
    response = client.get(path, query_string=params, headers={**ASYNC, **extra_headers})
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_cancel_deletes_the_job_and_its_files(client: FlaskClient, app: Flask, loaded: Any) -> None:
    location = kick_off(client, "/fhir/$export", _type="Patient")
    manifest = finish(client, app, location).get_json()
    assert client.delete(location).status_code == 202
    assert client.get(location).status_code == 404
    assert client.get(manifest["output"][0]["url"]).status_code == 404


def test_a_job_whose_worker_died_is_run_again(
    client: FlaskClient, app: Flask, repository: MongoRepository, loaded: Any
) -> None:
    """As after a restart: the job is in progress, its run claimed, nobody beating."""
    stale = datetime.now(UTC) - timedelta(minutes=10)
    repository.create_export_job({
        "_id": "deadbeef", "status": "in-progress", "level": "system", "group": None, "types": ["Patient"],
        "since": None, "request": "http://x/fhir/$export", "transactionTime": "2020-01-01T00:00:00.000Z",
        "run": 1, "heartbeat": stale, "progress": "1 of 3 types", "output": [], "error": None,
    })  # fmt: skip
    assert repository.claim_export_run("deadbeef", 1, stale)
    response = finish(client, app, "/fhir/$export-status/deadbeef")
    assert response.status_code == 200
    assert repository.export_job("deadbeef")["run"] == 2
    files = exported(client, response.get_json())
    assert len(files["Patient"]) == len(loaded.current("Patient"))


@pytest.fixture
def fresh_settings(settings: Settings) -> Iterator[Settings]:
    other = settings.with_overrides(database=settings.database + "_copy")
    yield other
    assert other.mongodb_uri
    cleanup = MongoRepository(other.mongodb_uri, other.database)
    cleanup._client.drop_database(other.database)
    cleanup.close()


def _env(settings: Settings) -> dict[str, str]:
    assert settings.mongodb_uri
    return {"INTEROP_MONGODB_URI": settings.mongodb_uri, "INTEROP_MONGODB_DATABASE": settings.database,
            "INTEROP_LOG_LEVEL": "WARNING"}  # fmt: skip


def _contents(settings: Settings) -> dict[str, Any]:
    assert settings.mongodb_uri
    repository = MongoRepository(settings.mongodb_uri, settings.database)
    try:
        found = {}
        for resource_type in repository.resource_types_in_use():
            for stored in repository.search(resource_type, {}, [("_id", 1)], 0, 100_000):
                resource = dict(stored.resource or {})
                resource.pop("meta")
                found[f"{resource_type}/{stored.id}"] = resource
        return found
    finally:
        repository.close()


def test_round_trip_export_then_import_into_a_fresh_database(
    tmp_path: Path, settings: Settings, fresh_settings: Settings, loaded: Any
) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["export", str(tmp_path / "dump")], env=_env(settings))
    assert out.exit_code == 0, out.output
    assert "Patient.ndjson:" in out.output
    back = runner.invoke(cli, ["import", "--quiet", str(tmp_path / "dump")], env=_env(fresh_settings))
    assert back.exit_code == 0, back.output
    original = _contents(settings)
    assert len(original) > 50
    assert _contents(fresh_settings) == original
