"""Batch and transaction Bundles over the REST API, against the real store."""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from typing import Any

import orjson
from flask.testing import FlaskClient

from fhir_server.repository.mongo import MongoRepository
from fhir_server.services.bundles import BundleService
from tests.integration.helpers import headers, patient


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def observation(subject: str, code: str = "8867-4", value: float = 72) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def send(client: FlaskClient, body: dict[str, Any], **extra: str) -> Any:
    return client.post("/fhir", data=orjson.dumps(body), headers=headers(**extra))


def count(client: FlaskClient, query: str) -> int:
    response = client.get(f"/fhir/{query}", headers=headers())
    assert response.status_code == 200, response.json
    return int(response.json["total"])


def test_transaction_resolves_urn_uuid_references_everywhere(client: FlaskClient) -> None:
    patient_url, encounter_url = urn(), urn()
    obs = observation(patient_url)
    obs["encounter"] = {"reference": encounter_url}
    obs["extension"] = [
        {"url": "http://example.org/source-patient", "valueReference": {"reference": patient_url}}
    ]
    obs["hasMember"] = [{"reference": encounter_url.replace(encounter_url, patient_url)}]
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_url},
    }
    response = send(
        client,
        bundle(
            "transaction",
            post(obs, urn()),
            post(encounter, encounter_url),
            post(patient(), patient_url),
        ),
    )
    assert response.status_code == 200, response.json
    result = response.json
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created"] * 3
    locations = [e["response"]["location"] for e in result["entry"]]
    patient_id = locations[2].split("/")[1]
    encounter_id = locations[1].split("/")[1]
    for entry in result["entry"]:
        assert entry["response"]["etag"] == 'W/"1"'
        assert entry["response"]["lastModified"]
    stored = client.get(f"/fhir/{locations[0].rsplit('/_history', 1)[0]}", headers=headers()).json
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    assert stored["encounter"]["reference"] == f"Encounter/{encounter_id}"
    assert stored["extension"][0]["valueReference"]["reference"] == f"Patient/{patient_id}"
    assert stored["hasMember"][0]["reference"] == f"Patient/{patient_id}"
    # and the rewritten references are searchable
    assert count(client, f"Observation?subject=Patient/{patient_id}") == 1


def test_failing_last_entry_rolls_back_everything(client: FlaskClient) -> None:
    patient_url = urn()
    bad = observation(patient_url)
    bad["status"] = "not-a-status"  # violates the required binding: 422/400
    response = send(
        client,
        bundle(
            "transaction",
            post(patient(), patient_url),
            post(observation(patient_url), urn()),
            post(bad, urn()),
        ),
    )
    assert response.status_code in (400, 422)
    outcome = response.json
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(e.startswith("Bundle.entry[2]") for e in outcome["issue"][0]["expression"])
    assert count(client, "Patient") == 0
    assert count(client, "Observation") == 0
    history = client.get("/fhir/_history", headers=headers()).json
    assert history["total"] == 0


def test_update_in_a_failed_transaction_leaves_the_old_version(client: FlaskClient) -> None:
    created = client.post("/fhir/Patient", data=orjson.dumps(patient()), headers=headers()).json
    changed = {**created, "gender": "female"}
    response = send(
        client,
        bundle(
            "transaction",
            {"resource": changed, "request": {"method": "PUT", "url": f"Patient/{created['id']}"}},
            post(observation("urn:uuid:nowhere"), urn()),  # a reference to no entry: fails
        ),
    )
    assert response.status_code == 400
    assert response.json["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    current = client.get(f"/fhir/Patient/{created['id']}", headers=headers()).json
    assert current["gender"] == "male" and current["meta"]["versionId"] == "1"
    assert client.get(f"/fhir/Patient/{created['id']}/_history/2", headers=headers()).status_code == 404
    assert client.get(f"/fhir/Patient/{created['id']}/_history", headers=headers()).json["total"] == 1


def _with_identifier(value: str) -> dict[str, Any]:
    return patient(identifier=[{"system": "urn:mrn", "value": value}])


def test_conditional_references_need_exactly_one_match(client: FlaskClient) -> None:
    client.post("/fhir/Patient", data=orjson.dumps(_with_identifier("one")), headers=headers())
    for _ in range(2):
        client.post("/fhir/Patient", data=orjson.dumps(_with_identifier("two")), headers=headers())

    def attempt(value: str) -> Any:
        return send(
            client, bundle("transaction", post(observation(f"Patient?identifier=urn:mrn|{value}"), urn()))
        )

    one = attempt("one")
    assert one.status_code == 200, one.json
    obs_id = one.json["entry"][0]["response"]["location"].split("/")[1]
    patient_id = client.get("/fhir/Patient?identifier=urn:mrn|one", headers=headers()).json["entry"][0][
        "resource"
    ]["id"]
    stored = client.get(f"/fhir/Observation/{obs_id}", headers=headers()).json
    assert stored["subject"]["reference"] == f"Patient/{patient_id}"
    for value in ("none", "two"):
        failed = attempt(value)
        assert failed.status_code == 412, failed.json
        assert failed.json["issue"][0]["expression"][0].startswith("Bundle.entry[0]")
    assert count(client, "Observation") == 1


def test_conditional_create_is_resolved_once_per_identity(client: FlaskClient) -> None:
    first, second = urn(), urn()
    body = bundle(
        "transaction",
        post(_with_identifier("same"), first, ifNoneExist="identifier=urn:mrn|same"),
        post(_with_identifier("same"), second, ifNoneExist="identifier=urn:mrn|same"),
        post(observation(first), urn()),
        post(observation(second), urn()),
    )
    response = send(client, body)
    assert response.status_code == 200, response.json
    assert count(client, "Patient?identifier=urn:mrn|same") == 1
    locations = [e["response"]["location"] for e in response.json["entry"]]
    assert locations[0] == locations[1]
    patient_ref = "/".join(locations[0].split("/")[:2])
    assert count(client, f"Observation?subject={patient_ref}") == 2
    # sending it again matches the existing patient: 200, nothing new
    again = send(client, body)
    assert [e["response"]["status"] for e in again.json["entry"][:2]] == ["200 OK", "200 OK"]
    assert count(client, "Patient") == 1


def test_concurrent_transactions_create_one_conditional_identity(client: FlaskClient) -> None:
    def body() -> dict[str, Any]:
        patient_url = urn()
        return bundle(
            "transaction",
            post(_with_identifier("race"), patient_url, ifNoneExist="identifier=urn:mrn|race"),
            post(observation(patient_url), urn()),
        )

    threads = 6
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    app = client.application

    def run() -> None:
        local = app.test_client()
        barrier.wait()
        response = send(local, body())
        statuses.append(response.status_code)
        if response.status_code != 200:
            print(response.json)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses == [200] * threads
    assert count(client, "Patient?identifier=urn:mrn|race") == 1
    assert count(client, "Observation") == threads


def test_batch_entries_are_independent(client: FlaskClient) -> None:
    created = client.post("/fhir/Patient", data=orjson.dumps(patient()), headers=headers()).json
    response = send(
        client,
        bundle(
            "batch",
            post(patient(gender="female")),
            {
                "resource": {"resourceType": "Patient", "gender": "nonsense"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": f"Patient/{created['id']}"}},
            {"request": {"method": "GET", "url": "Patient?gender=female"}},
            {"request": {"method": "DELETE", "url": f"Patient/{created['id']}"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        ),
    )
    assert response.status_code == 200
    entries = response.json["entry"]
    assert response.json["type"] == "batch-response"
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith(("400", "422"))
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    assert entries[2]["resource"]["id"] == created["id"]
    assert entries[3]["resource"]["type"] == "searchset" and entries[3]["resource"]["total"] == 1
    assert entries[4]["response"]["status"] == "204 No Content"
    assert entries[5]["response"]["status"] == "404 Not Found"
    assert count(client, "Patient") == 1  # the female one; the first is deleted


def test_transaction_processes_deletes_first_and_honours_if_match(client: FlaskClient) -> None:
    old = client.post("/fhir/Patient", data=orjson.dumps(_with_identifier("old")), headers=headers()).json
    kept = client.post("/fhir/Patient", data=orjson.dumps(_with_identifier("kept")), headers=headers()).json
    patch = [{"op": "replace", "path": "/gender", "value": "female"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(orjson.dumps(patch)).decode(),
    }
    response = send(
        client,
        bundle(
            "transaction",
            {"request": {"method": "GET", "url": "Patient?identifier=urn:mrn|old"}},
            {
                "resource": binary,
                "request": {"method": "PATCH", "url": f"Patient/{kept['id']}", "ifMatch": 'W/"1"'},
            },
            {"request": {"method": "DELETE", "url": "Patient?identifier=urn:mrn|old"}},
        ),
    )
    assert response.status_code == 200, response.json
    entries = response.json["entry"]
    assert entries[0]["resource"]["total"] == 0  # the GET ran after the DELETE
    assert entries[1]["response"]["etag"] == 'W/"2"'
    assert entries[2]["response"]["status"] == "204 No Content"
    assert client.get(f"/fhir/Patient/{old['id']}", headers=headers()).status_code == 410
    assert client.get(f"/fhir/Patient/{kept['id']}", headers=headers()).json["gender"] == "female"
    stale = send(
        client,
        bundle(
            "transaction",
            {
                "resource": binary,
                "request": {"method": "PATCH", "url": f"Patient/{kept['id']}", "ifMatch": 'W/"1"'},
            },
        ),
    )
    assert stale.status_code == 412


def test_resending_an_update_changes_nothing(client: FlaskClient) -> None:
    entry = {
        "resource": {**_with_identifier("resend"), "id": "resend-1"},
        "request": {"method": "PUT", "url": "Patient/resend-1"},
    }
    first = send(client, bundle("transaction", entry))
    second = send(client, bundle("transaction", entry))
    assert first.json["entry"][0]["response"]["status"] == "201 Created"
    assert second.json["entry"][0]["response"]["status"] == "200 OK"
    assert second.json["entry"][0]["response"]["etag"] == 'W/"1"'


def test_limits_answer_413(client: FlaskClient) -> None:
    app = client.application
    bundles: BundleService = app.extensions["interop"].bundles
    limit = bundles._max_entries
    body = bundle("batch", *[{"request": {"method": "GET", "url": "Patient"}}] * (limit + 1))
    response = send(client, body)
    assert response.status_code == 413
    assert response.json["resourceType"] == "OperationOutcome"
    app.config["MAX_CONTENT_LENGTH"] = 1000
    big = send(
        client,
        bundle(
            "transaction", post(patient(text={"status": "generated", "div": "<div>" + "x" * 2000 + "</div>"}))
        ),
    )
    assert big.status_code == 413
    assert big.json["resourceType"] == "OperationOutcome"


def test_bad_bundles_are_rejected(client: FlaskClient) -> None:
    assert send(client, {"resourceType": "Patient"}).status_code == 400
    assert send(client, bundle("collection")).status_code == 400
    bad_method = send(client, bundle("transaction", {"request": {"method": "FETCH", "url": "Patient"}}))
    assert bad_method.status_code == 400
    assert bad_method.json["issue"][0]["expression"] == ["Bundle.entry[0].request.method"]
    twice = send(
        client,
        bundle(
            "transaction",
            {"resource": {**patient(), "id": "p1"}, "request": {"method": "PUT", "url": "Patient/p1"}},
            {"resource": {**patient(), "id": "p1"}, "request": {"method": "PUT", "url": "Patient/p1"}},
        ),
    )
    assert twice.status_code == 400
    assert count(client, "Patient") == 0


def test_a_reader_completes_a_transaction_left_half_applied(
    repository: MongoRepository, client: FlaskClient
) -> None:
    """A writer that died after the commit decision, half-way through making the
    versions current: the next reader that meets one of them applies all of it."""
    from fhir_server.repository import transactions

    original = transactions._duplicates
    died: list[str] = []

    def die_half_way(collection: Any, docs: list[dict[str, Any]]) -> list[int]:
        if collection.name == "search_Observation" and not died:
            died.append(collection.name)
            original(collection, docs[: len(docs) // 2])
            raise SystemExit("killed")  # the process dies here: journal and decision remain
        return original(collection, docs)

    transactions._duplicates = die_half_way  # type: ignore[assignment]
    try:
        patient_url = urn()
        body = bundle(
            "transaction",
            post(patient(), patient_url),
            *[post(observation(patient_url), urn()) for _ in range(6)],
        )
        with contextlib.suppress(SystemExit):
            send(client, body)
        assert died
        raw = repository._db["search_Observation"].count_documents({})
        assert raw == 3  # half of it reached the store
        # Any reader meeting a record of that transaction completes it first.
        searched = client.get("/fhir/Observation", headers=headers()).json
        assert searched["total"] == 6 and len(searched["entry"]) == 6
        assert count(client, "Patient") == 1
        assert repository._db["transactions"].count_documents({}) == 0
    finally:
        transactions._duplicates = original  # type: ignore[assignment]


def test_recovery_settles_what_a_dead_writer_left(repository: MongoRepository, client: FlaskClient) -> None:
    """Committed but not applied: recovery applies it. Undecided: stays invisible, and is
    aborted once its lease has run out."""
    from fhir_server.repository import transactions

    original_apply = transactions.TransactionWrites._apply
    original_decide = transactions.TransactionWrites._decide

    def no_apply(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed after the decision")

    transactions.TransactionWrites._apply = no_apply  # type: ignore[method-assign]
    try:
        with contextlib.suppress(SystemExit):
            send(client, bundle("transaction", post(_with_identifier("committed"))))
    finally:
        transactions.TransactionWrites._apply = original_apply  # type: ignore[method-assign]

    def no_decision(self: Any, tx: str, *, committed: bool) -> bool:
        if committed:
            raise SystemExit("killed before the decision")
        return original_decide(self, tx, committed=committed)

    transactions.TransactionWrites._decide = no_decision  # type: ignore[method-assign]
    try:
        try:
            put = {
                "resource": {**_with_identifier("undecided"), "id": "u1"},
                "request": {"method": "PUT", "url": "Patient/u1"},
            }
            send(client, bundle("transaction", put))
        except SystemExit:
            pass
    finally:
        transactions.TransactionWrites._decide = original_decide  # type: ignore[method-assign]

    assert count(client, "Patient?identifier=urn:mrn|undecided") == 0
    assert client.get("/fhir/Patient/u1", headers=headers()).status_code == 404
    assert repository.recover(None) >= 1
    assert count(client, "Patient?identifier=urn:mrn|committed") == 1
    assert count(client, "Patient?identifier=urn:mrn|undecided") == 0
    # The undecided one holds its claim on Patient/u1 until its lease runs out.
    journal = repository._db["transactions"]
    assert journal.count_documents({"claims": {"$exists": True}}) == 1
    journal.update_many(
        {"claims": {"$exists": True}}, {"$set": {"at": journal.find_one({})["at"] - transactions.LEASE * 2}}
    )
    repository.recover(None)
    assert journal.count_documents({}) == 0
    put = {
        "resource": {**_with_identifier("undecided"), "id": "u1"},
        "request": {"method": "PUT", "url": "Patient/u1"},
    }
    assert send(client, bundle("transaction", put)).status_code == 200
    assert client.get("/fhir/Patient/u1", headers=headers()).json["meta"]["versionId"] == "1"


def test_conditional_reference_to_a_conditional_create_in_the_same_bundle(client: FlaskClient) -> None:
    """Synthea-style: the patient points at ``Organization?identifier=...`` that the same
    Bundle creates with ifNoneExist."""
    org = {"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "o1"}], "name": "GH"}
    person = patient(managingOrganization={"reference": "Organization?identifier=urn:org|o1"})
    body = bundle(
        "transaction",
        post(person, urn()),
        post(org, urn(), ifNoneExist="identifier=urn:org|o1"),
    )
    response = send(client, body)
    assert response.status_code == 200, response.json
    org_id = response.json["entry"][1]["response"]["location"].split("/")[1]
    patient_id = response.json["entry"][0]["response"]["location"].split("/")[1]
    stored = client.get(f"/fhir/Patient/{patient_id}", headers=headers()).json
    assert stored["managingOrganization"]["reference"] == f"Organization/{org_id}"
    again = send(client, body)  # now the organization exists: the same one is referenced
    assert again.status_code == 200
    assert count(client, "Organization") == 1


def test_a_late_replay_of_a_create_does_not_undo_a_later_version(
    repository: MongoRepository, client: FlaskClient
) -> None:
    """A reader or recovery may apply a committed transaction after its owner did and
    after a later writer moved the resource on: the replay must change nothing."""
    from fhir_server.repository import transactions

    original_apply = transactions.TransactionWrites._apply
    captured: list[tuple[Any, ...]] = []

    def capture(self: Any, *args: Any, **kwargs: Any) -> None:
        captured.append(args)
        original_apply(self, *args, **kwargs)

    transactions.TransactionWrites._apply = capture  # type: ignore[method-assign]
    try:
        put = {
            "resource": {**_with_identifier("late"), "id": "late1"},
            "request": {"method": "PUT", "url": "Patient/late1"},
        }
        assert send(client, bundle("transaction", put)).status_code == 200
    finally:
        transactions.TransactionWrites._apply = original_apply  # type: ignore[method-assign]
    current = client.get("/fhir/Patient/late1", headers=headers()).json
    current["gender"] = "female"
    updated = client.put("/fhir/Patient/late1", data=orjson.dumps(current), headers=headers())
    assert updated.status_code == 200
    original_apply(repository, *captured[0])  # the late replay
    found = client.get("/fhir/Patient?identifier=urn:mrn|late&gender=female", headers=headers()).json
    assert found["total"] == 1 and found["entry"][0]["resource"]["meta"]["versionId"] == "2"
    assert client.get("/fhir/Patient/late1", headers=headers()).json["meta"]["versionId"] == "2"


def test_a_reader_in_another_process_trusts_an_applied_transaction_without_redoing_its_query(
    repository: MongoRepository, client: FlaskClient, mongo_uri: str
) -> None:
    """Records keep their transaction mark; a process that never saw the transaction
    learns in two queries that it was applied and keeps its query result."""
    entries = [post(_with_identifier(f"seen-{n}")) for n in range(3)]
    assert send(client, bundle("transaction", *entries)).status_code == 200
    other = MongoRepository(mongo_uri, repository._db.name)  # as another worker process
    try:
        docs = list(other._search_docs("Patient").find({"del": False}))
        marks = {d["tx"] for d in docs}
        assert len(docs) == 3 and len(marks) == 1
        assert other.unsettled(docs) is False
        assert other._is_applied(marks.pop())
    finally:
        other.close()
