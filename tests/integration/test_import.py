"""``interop import`` against the real store: in-process and over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from fhir_server.settings import Settings
from interop.cli import cli


def env(settings: Settings) -> dict[str, str]:
    assert settings.mongodb_uri
    return {"INTEROP_MONGODB_URI": settings.mongodb_uri, "INTEROP_MONGODB_DATABASE": settings.database,
            "INTEROP_LOG_LEVEL": "WARNING"}  # fmt: skip


def patient(id: str, family: str = "Doe") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": id, "name": [{"family": family}]}


def write_ndjson(path: Path, resources: list[Any]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))


def test_folder_of_ndjson_and_bundles(tmp_path: Path, settings: Settings, client: FlaskClient) -> None:
    write_ndjson(tmp_path / "Patient.ndjson", [patient(f"n{i}") for i in range(7)])
    (tmp_path / "sub").mkdir()
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b4a7a52-6e8f-4a7e-9b68-3c2b6d3f1a01", "resource": patient("ignored", "Tx"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "subject": {"reference": "urn:uuid:0b4a7a52-6e8f-4a7e-9b68-3c2b6d3f1a01"}},
         "request": {"method": "POST", "url": "Observation"}}]}  # fmt: skip
    (tmp_path / "sub" / "tx.json").write_bytes(orjson.dumps(transaction))
    collection = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": patient("n0", "Changed")}, {"resource": patient("k1")}]}  # fmt: skip
    (tmp_path / "sub" / "collection.json").write_bytes(orjson.dumps(collection))
    (tmp_path / "notes.txt").write_text("not imported")

    result = CliRunner().invoke(
        cli, ["import", "--quiet", "--batch-size", "3", str(tmp_path)], env=env(settings)
    )

    assert result.exit_code == 0, result.output
    assert "3 file(s): 10 created, 1 updated, 0 failed" in result.output
    assert client.get("/fhir/Patient/n6").status_code == 200
    assert client.get("/fhir/Patient/n0").get_json()["name"][0]["family"] == "Changed"
    observations = client.get("/fhir/Observation").get_json()
    subject = observations["entry"][0]["resource"]["subject"]["reference"]
    assert client.get(f"/fhir/{subject}").get_json()["name"][0]["family"] == "Tx"


def test_a_failing_transaction_writes_nothing(
    tmp_path: Path, settings: Settings, client: FlaskClient
) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("good"), "request": {"method": "PUT", "url": "Patient/good"}},
        {"resource": {"resourceType": "Patient", "id": "bad", "gender": "sometimes"},
         "request": {"method": "PUT", "url": "Patient/bad"}}]}  # fmt: skip
    (tmp_path / "tx.json").write_bytes(orjson.dumps(bundle))

    result = CliRunner().invoke(cli, ["import", "--quiet", str(tmp_path / "tx.json")], env=env(settings))

    assert result.exit_code == 1
    assert "0 created, 0 updated, 2 failed" in result.output
    assert "transaction refused, nothing written" in result.output
    assert "gender" in result.output
    assert client.get("/fhir/Patient/good").status_code == 404


def test_bad_ndjson_lines_are_reported_and_the_rest_lands(
    tmp_path: Path, settings: Settings, client: FlaskClient
) -> None:
    path = tmp_path / "mixed.ndjson"
    lines = [orjson.dumps(patient("a")), b"{not json", orjson.dumps({"resourceType": "Patient", "id": "b",
             "birthDate": "yesterday"}), orjson.dumps(patient("c")), b"", orjson.dumps([1, 2])]  # fmt: skip
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = CliRunner().invoke(cli, ["import", "--quiet", str(path)], env=env(settings))

    assert result.exit_code == 1
    assert "2 created, 0 updated, 3 failed" in result.output
    assert f"{path}:2: not valid JSON" in result.output
    assert f"{path}:3:" in result.output and "birthDate" in result.output
    assert f"{path}:6: not a FHIR resource" in result.output
    assert [client.get(f"/fhir/Patient/{i}").status_code for i in "abc"] == [200, 404, 200]


def test_over_http(tmp_path: Path, live_url: str, client: FlaskClient) -> None:
    write_ndjson(tmp_path / "p.ndjson", [patient(f"h{i}") for i in range(5)])
    runner = CliRunner()
    first = runner.invoke(cli, ["import", "--quiet", "--url", live_url, str(tmp_path)])
    again = runner.invoke(cli, ["import", "--quiet", "--url", live_url, str(tmp_path)])
    assert first.exit_code == 0 and "5 created, 0 updated, 0 failed" in first.output
    assert again.exit_code == 0 and "0 created, 5 updated, 0 failed" in again.output
    assert client.get("/fhir/Patient/h4").status_code == 200


def test_without_url_or_store_it_says_what_to_do(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "p.ndjson", [patient("x")])
    result = CliRunner().invoke(cli, ["import", str(tmp_path)], env={"INTEROP_MONGODB_URI": ""})
    assert result.exit_code != 0
    assert "--url" in result.output


@pytest.mark.parametrize("missing", ["nowhere", "nowhere.ndjson"])
def test_a_missing_path_is_an_error(tmp_path: Path, missing: str) -> None:
    result = CliRunner().invoke(cli, ["import", str(tmp_path / missing)])
    assert result.exit_code == 2
