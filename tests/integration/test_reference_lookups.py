"""Reference searches answered from postings (repository/lookups.py), against the real store."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from flask.testing import FlaskClient

from fhir_server.repository.lookups import POSTINGS, Postings
from fhir_server.repository.mongo import MongoRepository
from tests.integration.helpers import headers, patient

SUBJECT = "subject\x1fr\x1fPatient/{}"


def post(client: FlaskClient, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", data=orjson.dumps(body), headers=headers())
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def observation(subject: str, code: str = "8867-4", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
        **extra,
    }


def found(client: FlaskClient, path: str) -> list[str]:
    bundle = client.get(f"/fhir/{path}", headers=headers()).json
    assert bundle["resourceType"] == "Bundle", bundle
    assert bundle["total"] == len(bundle.get("entry", []))
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def test_reference_searches_use_postings_and_stay_correct(
    client: FlaskClient, repository: MongoRepository
) -> None:
    alice, bob = post(client, patient()), post(client, patient(name=[{"family": "B"}]))
    first, second = post(client, observation(alice)), post(client, observation(alice, "718-7"))
    other = post(client, observation(bob))
    assert sorted(repository._candidate_ids("Observation", {"ix": SUBJECT.format(alice)}) or []) == sorted(
        [first, second]
    )
    for query in (
        f"Observation?subject=Patient/{alice}&_count=50",
        f"Observation?patient={alice}&_count=50",
        f"Patient/{alice}/Observation?_count=50",
    ):
        assert found(client, query) == sorted([first, second]), query
    assert found(client, f"Observation?patient={alice}&code=http://loinc.org|718-7") == [second]
    assert found(client, f"Observation?subject=Patient/{alice},Patient/{bob}&_count=50") == sorted(
        [first, second, other]
    )
    # The Observation moves to Bob: Alice's posting is stale and filtered out.
    moved = client.get(f"/fhir/Observation/{second}", headers=headers()).json
    moved["subject"] = {"reference": f"Patient/{bob}"}
    assert (
        client.put(f"/fhir/Observation/{second}", data=orjson.dumps(moved), headers=headers()).status_code
        == 200
    )
    assert found(client, f"Observation?patient={alice}") == [first]
    assert found(client, f"Observation?patient={bob}") == sorted([second, other])
    assert client.delete(f"/fhir/Observation/{first}").status_code in (200, 204)
    assert found(client, f"Observation?patient={alice}") == []


def test_an_update_that_keeps_its_references_posts_nothing(
    client: FlaskClient, repository: MongoRepository
) -> None:
    alice = post(client, patient())
    id = post(client, observation(alice))
    postings = repository._db[POSTINGS]
    before = postings.count_documents({})
    current = client.get(f"/fhir/Observation/{id}", headers=headers()).json
    current["status"] = "amended"
    assert (
        client.put(f"/fhir/Observation/{id}", data=orjson.dumps(current), headers=headers()).status_code
        == 200
    )
    assert postings.count_documents({}) == before


def test_a_transaction_posts_each_key_once_with_all_its_ids(
    client: FlaskClient, repository: MongoRepository
) -> None:
    entries: list[dict[str, Any]] = [
        {"fullUrl": "urn:uuid:p", "resource": patient(), "request": {"method": "POST", "url": "Patient"}}
    ]
    entries += [
        {
            "resource": {**observation("x"), "subject": {"reference": "urn:uuid:p"}},
            "request": {"method": "POST", "url": "Observation"},
        }
        for _ in range(30)
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = client.post("/fhir", data=orjson.dumps(bundle), headers=headers())
    assert response.status_code == 200, response.json
    locations = [e["response"]["location"] for e in response.json["entry"]]
    alice = locations[0].split("/")[1]
    observations = sorted(location.split("/")[1] for location in locations[1:])
    slots = list(repository._db[POSTINGS].find({"_id": {"$regex": f"^Observation/{SUBJECT.format(alice)}#"}}))
    assert len(slots) == 1 and sorted(slots[0]["ids"]) == observations
    assert found(client, f"Observation?patient={alice}&_count=100") == observations


def test_concurrent_writers_never_lose_a_posting(repository: MongoRepository) -> None:
    """Writers in several threads (and, through per-process slot memory, processes) post
    under one key at once: every id is readable afterwards, none twice."""
    writers = [Postings(repository._db) for _ in range(4)]  # separate slot memories
    posted: list[str] = []
    lock = threading.Lock()

    def write(postings: Postings, n: int) -> None:
        for i in range(15):
            id = f"w{n}-{i}"
            postings.add("Observation", id, [SUBJECT.format("shared")])
            with lock:
                posted.append(id)

    threads = [threading.Thread(target=write, args=(w, n)) for n, w in enumerate(writers * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = Postings(repository._db)
    reader.mark_built("Observation")
    ids = reader.ids("Observation", SUBJECT.format("shared"))
    assert ids is not None and sorted(ids) == sorted(posted) and len(ids) == 120


def test_a_writer_new_to_a_long_run_of_slots_finds_the_first_free_one(repository: MongoRepository) -> None:
    first = Postings(repository._db)
    for i in range(40):
        first.add("Observation", f"o{i}", ["patient\x1fi\x1fp1"])
    late = Postings(repository._db)  # a new process: no memory of the 40 slots
    late.add("Observation", "o40", ["patient\x1fi\x1fp1"])
    assert repository._db[POSTINGS].find_one({"_id": "Observation/patient\x1fi\x1fp1#40"})["ids"] == ["o40"]
    late.mark_built("Observation")
    assert late.ids("Observation", "patient\x1fi\x1fp1") == [f"o{i}" for i in range(41)]


def test_a_patients_results_of_one_code_are_fetched_alone(
    client: FlaskClient, repository: MongoRepository
) -> None:
    """``patient`` (or ``subject``) with ``code=system|code``: a composite posting names
    only the patient's resources of those codes; a changed code is posted again."""
    alice, bob = post(client, patient()), post(client, patient(name=[{"family": "B"}]))
    hb = [post(client, observation(alice, "718-7")) for _ in range(2)]
    others = [post(client, observation(alice, "8867-4")) for _ in range(3)]
    bobs = post(client, observation(bob, "718-7"))
    query = {
        "$and": [
            {"ix": f"subject\x1fr\x1fPatient/{alice}"},
            {
                "$or": [
                    {"ix": "code\x1fsc\x1fhttp://loinc.org|718-7"},
                    {"ix": "code\x1fsc\x1fhttp://loinc.org|2345-7"},
                ]
            },
        ]
    }
    assert sorted(repository._candidate_ids("Observation", query) or []) == sorted(hb)
    assert found(client, f"Observation?patient={alice}&code=http://loinc.org|718-7") == sorted(hb)
    assert found(
        client, f"Observation?subject=Patient/{alice}&code=http://loinc.org|718-7,http://loinc.org|1-1"
    ) == sorted(hb)
    assert found(client, f"Observation?patient={bob}&code=http://loinc.org|718-7") == [bobs]
    # The code of one result is corrected: it moves from one composite to the other.
    corrected = client.get(f"/fhir/Observation/{others[0]}", headers=headers()).json
    corrected["code"] = {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}
    assert (
        client.put(
            f"/fhir/Observation/{others[0]}", data=orjson.dumps(corrected), headers=headers()
        ).status_code
        == 200
    )
    assert found(client, f"Observation?patient={alice}&code=http://loinc.org|718-7") == sorted(
        [*hb, others[0]]
    )
    assert found(client, f"Observation?patient={alice}&code=http://loinc.org|8867-4") == sorted(others[1:])
