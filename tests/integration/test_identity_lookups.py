"""Identifier searches answered from postings (repository/lookups.py), against the real store."""

from __future__ import annotations

import orjson
import pytest
from flask.testing import FlaskClient

from fhir_server.repository import lookups
from fhir_server.repository.lookups import POSTINGS
from fhir_server.repository.mongo import MongoRepository
from tests.integration.helpers import headers, patient


def create(client: FlaskClient, value: str, system: str = "urn:mrn") -> str:
    body = patient(identifier=[{"system": system, "value": value}])
    response = client.post("/fhir/Patient", data=orjson.dumps(body), headers=headers())
    assert response.status_code == 201
    return str(response.json["id"])


def ids(client: FlaskClient, query: str) -> list[str]:
    bundle = client.get(f"/fhir/Patient?{query}&_count=200", headers=headers()).json
    assert bundle["total"] == len(bundle.get("entry", []))
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def test_identifier_searches_use_postings_and_stay_correct(
    client: FlaskClient, repository: MongoRepository
) -> None:
    first, second = create(client, "A-1"), create(client, "A-2")
    postings = repository._db[POSTINGS]
    assert postings.find_one({"_id": "Patient/identifier\x1fsc\x1furn:mrn|A-1#0"})["ids"] == [first]
    assert ids(client, "identifier=urn:mrn|A-1") == [first]
    assert ids(client, "identifier=A-2") == [second]  # without a system: answered by a scan
    assert ids(client, "identifier=urn:mrn|A-1,urn:mrn|A-2") == sorted([first, second])
    assert ids(client, "identifier=urn:mrn|A-1&gender=female") == []
    # The identifier moves to another resource: the old posting is stale and filtered out.
    moved = {**client.get(f"/fhir/Patient/{first}", headers=headers()).json}
    moved["identifier"] = [{"system": "urn:mrn", "value": "A-9"}]
    assert (
        client.put(f"/fhir/Patient/{first}", data=orjson.dumps(moved), headers=headers()).status_code == 200
    )
    assert ids(client, "identifier=urn:mrn|A-1") == []
    assert ids(client, "identifier=urn:mrn|A-9") == [first]
    client.delete(f"/fhir/Patient/{second}")
    assert ids(client, "identifier=urn:mrn|A-2") == []


def test_a_shared_identifier_falls_back_to_a_scan(
    client: FlaskClient, repository: MongoRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "MAX_SLOTS", 4)
    created = [create(client, "shared") for _ in range(lookups.MAX_SLOTS + 3)]
    assert ids(client, "identifier=urn:mrn|shared") == sorted(created)
    assert repository._candidate_ids("Patient", {"ix": "identifier\x1fsc\x1furn:mrn|shared"}) is None


def test_data_written_before_postings_is_back_filled(
    client: FlaskClient, repository: MongoRepository, mongo_uri: str
) -> None:
    first = create(client, "B-1")
    repository._db[POSTINGS].delete_many({})  # as a database from before postings
    fresh = MongoRepository(mongo_uri, repository._db.name)
    try:
        # Without postings a search still finds it (the store scans) ...
        assert [
            s.id for s in fresh.search("Patient", {"ix": "identifier\x1fsc\x1furn:mrn|B-1"}, [], 0, 10)
        ] == [first]
        assert fresh._candidate_ids("Patient", {"ix": "identifier\x1fsc\x1furn:mrn|B-1"}) is None
        # ... and the first write of the type in a process posts what was there.
        fresh.ensure_indexes("Patient")
        assert fresh._candidate_ids("Patient", {"ix": "identifier\x1fsc\x1furn:mrn|B-1"}) == [first]
    finally:
        fresh.close()


def test_the_same_identifier_under_two_types(client: FlaskClient) -> None:
    """A filler number names both a ServiceRequest and its DiagnosticReport: each type
    keeps its own postings (a shared cache once put the second type's first posting at
    slot 1, where no search looked)."""
    identifier = [{"system": "urn:filler", "value": "F101"}]
    create(client, "P-1", system="urn:filler")  # a Patient posted first under another key
    for resource_type in ("ServiceRequest", "DiagnosticReport"):
        body = {
            "resourceType": resource_type,
            "status": "final" if resource_type == "DiagnosticReport" else "active",
            "identifier": identifier,
            "code": {"text": "panel"},
        }
        if resource_type == "ServiceRequest":
            body.update(intent="order", subject={"reference": "Patient/x"})
        created = client.post(f"/fhir/{resource_type}", data=orjson.dumps(body), headers=headers())
        assert created.status_code == 201, created.json
        found = client.get(f"/fhir/{resource_type}?identifier=urn:filler|F101", headers=headers()).json
        assert found["total"] == 1, resource_type
