"""The leak suite: a patient/*.rs token for patient A tries, in every way the API offers, to
reach patient B's records. Each attempt is refused or filtered; the same queries with a
system token see B's data; and every attempt left an AuditEvent."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.integration.helpers import patient
from tests.integration.smart import Mint, bearer
from tests.integration.test_scope_enforcement import LAB, VITALS, observation

JSON = {"Content-Type": "application/fhir+json"}
B_FAMILY = "Bexley"


@dataclass
class World:
    a: str
    b: str
    obs_a: str
    obs_b: str
    obs_b2: str
    condition_b: str
    group: str
    practitioner: str

    @property
    def b_ids(self) -> set[str]:
        return {self.b, self.obs_b, self.obs_b2, self.condition_b, self.group}


def _make(client: FlaskClient, token: str, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body, headers=bearer(token, **JSON))
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


@pytest.fixture
def world(secure_client: FlaskClient, mint: Mint) -> World:
    admin = mint("system/*.cruds")
    a = _make(secure_client, admin, patient(identifier=[{"system": "urn:mrn", "value": "A-1"}]))
    b = _make(
        secure_client,
        admin,
        patient(identifier=[{"system": "urn:mrn", "value": "B-1"}], name=[{"family": B_FAMILY}]),
    )
    practitioner = _make(secure_client, admin, {"resourceType": "Practitioner", "name": [{"family": "Doc"}]})
    performer = [{"reference": f"Practitioner/{practitioner}"}]
    obs_a = _make(secure_client, admin, {**observation(a, LAB), "performer": performer})
    obs_b = _make(
        secure_client,
        admin,
        {**observation(b, LAB, code="2345-7"), "performer": performer, "identifier": [{"value": "obs-b"}]},
    )
    obs_b2 = _make(
        secure_client, admin, {**observation(b, VITALS), "hasMember": [{"reference": f"Observation/{obs_b}"}]}
    )
    condition_b = _make(
        secure_client,
        admin,
        {"resourceType": "Condition", "subject": {"reference": f"Patient/{b}"}, "code": {"text": "secret"}},
    )
    group = _make(
        secure_client,
        admin,
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{a}"}}, {"entity": {"reference": f"Patient/{b}"}}],
        },
    )
    # B has a history of several versions
    secure_client.put(
        f"/fhir/Patient/{b}",
        json={**patient(name=[{"family": B_FAMILY}]), "id": b, "active": True},
        headers=bearer(admin, **JSON),
    )
    return World(a, b, obs_a, obs_b, obs_b2, condition_b, group, practitioner)


Attempt = Callable[[FlaskClient, dict[str, str], World], TestResponse]


def _get(path: str) -> Attempt:
    def run(client: FlaskClient, headers: dict[str, str], w: World) -> TestResponse:
        return client.get(path.format(w=w, family=B_FAMILY), headers=headers)

    run.__name__ = path
    return run


def _bundle(kind: str, *requests: dict[str, Any]) -> Attempt:
    def run(client: FlaskClient, headers: dict[str, str], w: World) -> TestResponse:
        entries = []
        for request in requests:
            request = orjson.loads(
                orjson.dumps(request).decode().replace("{B}", w.b).replace("{OBS_B}", w.obs_b)
            )
            entries.append(request)
        body = {"resourceType": "Bundle", "type": kind, "entry": entries}
        return client.post("/fhir", json=body, headers={**headers, **JSON})

    run.__name__ = f"{kind} {requests}"
    return run


def _post_search(client: FlaskClient, headers: dict[str, str], w: World) -> TestResponse:
    return client.post(
        "/fhir/Observation/_search",
        data=f"subject=Patient/{w.b}",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )


READS: list[Attempt] = [
    _get("/fhir/Patient/{w.b}"),
    _get("/fhir/Patient/{w.b}/_history"),
    _get("/fhir/Patient/{w.b}/_history/1"),
    _get("/fhir/Patient/{w.b}/_history/2"),
    _get("/fhir/Observation/{w.obs_b}"),
    _get("/fhir/Observation/{w.obs_b}/_history"),
    _get("/fhir/Observation/{w.obs_b}/_history/1"),
    _get("/fhir/Condition/{w.condition_b}"),
    _get("/fhir/Patient?_id={w.b}"),
    _get("/fhir/Patient?identifier=urn:mrn|B-1"),
    _get("/fhir/Patient?family={family}"),
    _get("/fhir/Patient"),
    _get("/fhir/Observation?subject=Patient/{w.b}"),
    _get("/fhir/Observation?patient={w.b}"),
    _get("/fhir/Observation?_id={w.obs_b}"),
    _get("/fhir/Observation?identifier=obs-b"),
    _get("/fhir/Observation?code=2345-7"),
    _get("/fhir/Observation?subject=Patient/{w.b}&_summary=count"),
    _get("/fhir/Condition?subject=Patient/{w.b}"),
    _get("/fhir/Observation?subject:Patient.family={family}"),
    _get("/fhir/Observation?subject.identifier=urn:mrn|B-1"),
    _get("/fhir/Observation?has-member.subject=Patient/{w.b}"),
    _get("/fhir/Patient?_has:Observation:subject:code=2345-7"),
    _get("/fhir/Patient?_has:Condition:subject:code:text=secret"),
    _get("/fhir/Practitioner?_revinclude=Observation:performer"),
    _get("/fhir/Practitioner?_revinclude=Observation:*"),
    _get("/fhir/Practitioner?_revinclude=Observation:performer&_include:iterate=Observation:subject"),
    _get("/fhir/Observation?_include=Observation:has-member"),
    _get("/fhir/Observation?_include=Observation:*&_include:iterate=Observation:*"),
    _get("/fhir/Patient?_revinclude=Observation:subject&_revinclude:iterate=Observation:has-member"),
    _get("/fhir/Patient?_revinclude=Group:member"),
    _get("/fhir/Patient/{w.b}/$everything"),
    _get("/fhir/Patient/{w.b}/*"),
    _get("/fhir/Patient/{w.b}/Observation"),
    _get("/fhir/Patient/{w.a}/Observation?subject=Patient/{w.b}"),
    _get("/fhir/Patient/{w.a}/$everything"),
    _get("/fhir/Observation/_history"),
    _get("/fhir/Patient/_history"),
    _get("/fhir/_history"),
    _get("/fhir?_type=Patient,Observation,Condition"),
    _get("/fhir/Group/{w.group}"),
    _get("/fhir/Group?member=Patient/{w.b}"),
    _get("/fhir/AuditEvent?patient=Patient/{w.b}"),
    _post_search,
    _bundle("batch", {"request": {"method": "GET", "url": "Patient/{B}"}}),
    _bundle("batch", {"request": {"method": "GET", "url": "Observation?subject=Patient/{B}"}}),
    _bundle("batch", {"request": {"method": "GET", "url": "Patient/{B}/_history/1"}}),
    _bundle("transaction", {"request": {"method": "GET", "url": "Observation/{OBS_B}"}}),
    _bundle("transaction", {"request": {"method": "GET", "url": "Condition?subject=Patient/{B}"}}),
]


def _resources(value: Any) -> list[dict[str, Any]]:
    """Every resource a response returns (Bundles opened, OperationOutcomes left out: they
    only echo what the request asked for)."""
    if not isinstance(value, dict) or value.get("resourceType") in (None, "OperationOutcome"):
        return []
    if value["resourceType"] != "Bundle":
        return [value]
    return [r for entry in value.get("entry", []) for r in _resources(entry.get("resource"))]


def _leaked(response: TestResponse, world: World) -> set[str]:
    """B's ids that appear in any resource the response returns."""
    text = orjson.dumps(_resources(response.get_json(silent=True))).decode()
    return {i for i in world.b_ids if i in text}


def test_patient_token_cannot_reach_another_patients_data(
    secure_app: Flask, secure_client: FlaskClient, mint: Mint, world: World
) -> None:
    token_a = bearer(mint("patient/*.rs", patient=world.a))
    request_ids = []
    for attempt in READS:
        response = attempt(secure_client, token_a, world)
        request_ids.append(response.headers["X-Request-ID"])
        assert response.status_code in (200, 403, 404), (
            attempt.__name__,
            response.status_code,
            response.get_json(),
        )
        assert not _leaked(response, world), (attempt.__name__, _leaked(response, world))
    assert len(READS) >= 40
    # A's own data is there
    own = secure_client.get("/fhir/Observation", headers=token_a).get_json()
    assert [e["resource"]["id"] for e in own["entry"]] == [world.obs_a]
    assert own["total"] == 1
    everything = secure_client.get(f"/fhir/Patient/{world.a}/$everything", headers=token_a).get_json()
    assert {e["resource"]["id"] for e in everything["entry"]} == {world.a, world.obs_a}
    _assert_audited(secure_app, secure_client, mint, request_ids)


def test_system_token_sees_what_the_patient_token_cannot(
    secure_client: FlaskClient, mint: Mint, world: World
) -> None:
    system = bearer(mint("system/*.rs"))
    seen = set()
    for attempt in READS:
        response = attempt(secure_client, system, world)
        assert response.status_code in (200, 404), (attempt.__name__, response.status_code)
        seen |= _leaked(response, world)
    assert seen == world.b_ids


def test_paging_links_carry_no_authority(secure_client: FlaskClient, mint: Mint, world: World) -> None:
    system = bearer(mint("system/*.rs"))
    token_a = bearer(mint("patient/*.rs", patient=world.a))
    for first in (
        "/fhir/Observation?_count=1",
        "/fhir/Patient?_count=1&_sort=-_id",
        "/fhir/Observation?_count=1&_sort=code",
    ):
        page = secure_client.get(first, headers=system).get_json()
        links = [link["url"] for link in page["link"] if link["relation"] in ("next", "last", "self")]
        assert any("_offset=1" in url or "_cursor" in url for url in links), links
        for url in links:
            replay = secure_client.get(url.split("127.0.0.1:8080", 1)[1], headers=token_a)
            assert replay.status_code == 200
            assert not _leaked(replay, world), url


def test_patient_writes_stay_in_the_compartment(secure_client: FlaskClient, mint: Mint, world: World) -> None:
    admin = bearer(mint("system/*.rs"))
    token = mint("patient/*.cruds", patient=world.a)
    headers = bearer(token, **JSON)
    attempts = {
        "create for B": secure_client.post("/fhir/Observation", json=observation(world.b), headers=headers),
        "update B's": secure_client.put(
            f"/fhir/Observation/{world.obs_b}",
            json={**observation(world.a), "id": world.obs_b},
            headers=headers,
        ),
        "move A's to B": secure_client.put(
            f"/fhir/Observation/{world.obs_a}",
            json={**observation(world.b), "id": world.obs_a},
            headers=headers,
        ),
        "patch B's": secure_client.patch(
            f"/fhir/Observation/{world.obs_b}",
            json=[{"op": "replace", "path": "/status", "value": "amended"}],
            headers=bearer(token, **{"Content-Type": "application/json-patch+json"}),
        ),
        "delete B's": secure_client.delete(f"/fhir/Observation/{world.obs_b}", headers=headers),
        "probe B's content with a JSON Patch test (true)": secure_client.patch(
            f"/fhir/Observation/{world.obs_b}",
            json=[{"op": "test", "path": "/status", "value": "final"}],
            headers=bearer(token, **{"Content-Type": "application/json-patch+json"}),
        ),
        "probe B's content with a JSON Patch test (false)": secure_client.patch(
            f"/fhir/Observation/{world.obs_b}",
            json=[{"op": "test", "path": "/status", "value": "preliminary"}],
            headers=bearer(token, **{"Content-Type": "application/json-patch+json"}),
        ),
        "probe B's version with If-Match": secure_client.delete(
            f"/fhir/Observation/{world.obs_b}", headers={**headers, "If-Match": 'W/"7"'}
        ),
        "probe in a transaction": secure_client.post(
            "/fhir",
            json={
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Binary",
                            "contentType": "application/json-patch+json",
                            "data": base64.b64encode(
                                orjson.dumps([{"op": "test", "path": "/status", "value": "preliminary"}])
                            ).decode(),
                        },
                        "request": {
                            "method": "PATCH",
                            "url": f"Observation/{world.obs_b}",
                            "ifMatch": 'W/"9"',
                        },
                    }
                ],
            },
            headers=headers,
        ),
        "update B": secure_client.put(
            f"/fhir/Patient/{world.b}", json={**patient(), "id": world.b}, headers=headers
        ),
        "conditional update matching B's": secure_client.put(
            "/fhir/Observation?identifier=obs-b", json=observation(world.b), headers=headers
        ),
        "write a non-patient type": secure_client.post(
            "/fhir/Practitioner", json={"resourceType": "Practitioner"}, headers=headers
        ),
    }
    for why, response in attempts.items():
        assert response.status_code == 403, (why, response.status_code)
    # conditional delete and If-None-Exist only see A's compartment
    gone = secure_client.delete("/fhir/Observation?identifier=obs-b", headers=headers)
    assert gone.status_code == 200
    assert secure_client.get(f"/fhir/Observation/{world.obs_b}", headers=admin).status_code == 200
    created = secure_client.post(
        "/fhir/Observation",
        json=observation(world.a),
        headers={**headers, "If-None-Exist": "identifier=obs-b"},
    )
    assert created.status_code == 201
    assert created.get_json()["id"] != world.obs_b
    # a transaction with one forbidden entry fails whole: the allowed entry is not written
    before = secure_client.get(f"/fhir/Observation?subject=Patient/{world.a}", headers=admin).get_json()[
        "total"
    ]
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation(world.a), "request": {"method": "POST", "url": "Observation"}},
            {"resource": observation(world.b), "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    refused = secure_client.post("/fhir", json=transaction, headers=headers)
    assert refused.status_code == 403
    assert "Bundle.entry[1]" in refused.get_json()["issue"][0]["expression"][0]
    after = secure_client.get(f"/fhir/Observation?subject=Patient/{world.a}", headers=admin).get_json()[
        "total"
    ]
    assert after == before
    # ...and so does one whose read entry asks for a type the token cannot read
    reads = {
        **transaction,
        "entry": [transaction["entry"][0], {"request": {"method": "GET", "url": "Group"}}],
    }
    assert secure_client.post("/fhir", json=reads, headers=headers).status_code == 403
    ok = {**transaction, "entry": [transaction["entry"][0]]}
    assert secure_client.post("/fhir", json=ok, headers=headers).status_code == 200
    # in a batch, each entry is judged alone: the forbidden one is a 403 entry, the other written
    batch = secure_client.post("/fhir", json={**transaction, "type": "batch"}, headers=headers)
    assert batch.status_code == 200
    statuses = [entry["response"]["status"] for entry in batch.get_json()["entry"]]
    assert statuses[0].startswith("201")
    assert statuses[1].startswith("403")


def _assert_audited(app: Flask, client: FlaskClient, mint: Mint, request_ids: list[str]) -> None:
    audit = app.extensions["interop"].audit
    assert audit.flush(timeout=60)
    reader = bearer(mint("system/AuditEvent.rs"))
    found: dict[str, dict[str, Any]] = {}
    url: str | None = "/fhir/AuditEvent?_count=200"
    while url:
        page = client.get(url, headers=reader).get_json()
        for entry in page.get("entry", []):
            for entity in entry["resource"].get("entity", []):
                if "name" in entity:
                    found[entity["name"]] = entry["resource"]
        nexts = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nexts[0].split("127.0.0.1:8080", 1)[1] if nexts else None
    missing = [rid for rid in request_ids if rid not in found]
    assert not missing
    one = found[request_ids[0]]
    assert one["agent"][0]["altId"] == "tester"
    assert one["outcome"] in ("0", "4")
    assert any(e.get("what", {}).get("reference", "").startswith("Patient/") for e in one["entity"])
    searched = found[request_ids[8]]  # Patient?_id=B
    queries = [base64.b64decode(e["query"]).decode() for e in searched["entity"] if "query" in e]
    assert queries and queries[0].startswith("_id=")
    by_request = client.get(f"/fhir/AuditEvent?entity-name:exact={request_ids[0]}", headers=reader).get_json()
    assert by_request["total"] == 1
