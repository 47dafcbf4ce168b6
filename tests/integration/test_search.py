"""Search through the REST API against the real store, per parameter type and modifier."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from flask.testing import FlaskClient

from tests.integration.helpers import headers

PATIENTS = [
    {
        "resourceType": "Patient",
        "id": "p-anna",
        "identifier": [
            {
                "system": "http://hospital.example/mrn",
                "value": "A1",
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                },
            }
        ],
        "name": [{"family": "Müller", "given": ["Anna"]}],
        "gender": "female",
        "birthDate": "1980-05-01",
        "telecom": [{"system": "email", "value": "anna@example.org"}],
        "managingOrganization": {"reference": "Organization/org-1"},
    },
    {
        "resourceType": "Patient",
        "id": "p-bob",
        "identifier": [{"system": "http://hospital.example/mrn", "value": "B2"}, {"value": "nosys"}],
        "name": [{"family": "Baker", "given": ["Bob", "Annan"]}],
        "gender": "male",
        "birthDate": "1975-01-01",
    },
    {
        "resourceType": "Patient",
        "id": "p-carl",
        "name": [{"family": "Carlsson", "given": ["Carl"]}],
        "gender": "male",
        "active": True,
    },
]
OBSERVATIONS = [
    {
        "resourceType": "Observation",
        "id": "o-hb",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}],
            "text": "Hemoglobin [Mass/volume] in Blood",
        },
        "subject": {"reference": "Patient/p-anna"},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
    },
    {
        "resourceType": "Observation",
        "id": "o-glu",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": "Patient/p-bob"},
    },
]


@pytest.fixture
def loaded(client: FlaskClient) -> FlaskClient:
    for resource in PATIENTS + OBSERVATIONS:
        response = client.put(
            f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers()
        )
        assert response.status_code == 201, response.get_json()
    return client


def ids(client: FlaskClient, query: str, **extra_headers: str) -> list[str]:
    response = client.get(f"/fhir/{query}", headers=extra_headers)
    assert response.status_code == 200, response.get_json()
    bundle = response.get_json()
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?identifier=A1", ["p-anna"]),
        ("Patient?identifier=http://hospital.example/mrn|B2", ["p-bob"]),
        ("Patient?identifier=http://other|B2", []),
        ("Patient?identifier=http://hospital.example/mrn|", ["p-anna", "p-bob"]),
        ("Patient?identifier=|nosys", ["p-bob"]),
        ("Patient?identifier=|A1", []),
        ("Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|A1", ["p-anna"]),
        ("Patient?gender=male", ["p-bob", "p-carl"]),
        ("Patient?gender=male,female", ["p-anna", "p-bob", "p-carl"]),
        ("Patient?gender:not=male", ["p-anna"]),
        ("Patient?active=true", ["p-carl"]),
        ("Patient?active:missing=true", ["p-anna", "p-bob"]),
        ("Patient?_id=p-bob", ["p-bob"]),
        ("Patient?_id=p-bob,p-carl", ["p-bob", "p-carl"]),
        ("Patient?email=anna@example.org", ["p-anna"]),
        ("Observation?code=http://loinc.org|718-7", ["o-hb"]),
        ("Observation?code:text=hemoglobin", ["o-hb"]),
        ("Observation?category=laboratory&status=final", ["o-hb"]),
    ],
)
def test_token(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    assert ids(loaded, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?name=ann", ["p-anna", "p-bob"]),  # starts-with on any name part, accent- and case-blind
        ("Patient?name=MULL", ["p-anna"]),
        ("Patient?family=muller", ["p-anna"]),
        ("Patient?family:exact=Müller", ["p-anna"]),
        ("Patient?family:exact=muller", []),
        ("Patient?name:contains=arls", ["p-carl"]),
        ("Patient?name=ann&gender=male", ["p-bob"]),
        ("Patient?given=bob,carl", ["p-bob", "p-carl"]),
        ("Patient?name=.*", []),  # regex characters are literals
        ("Patient?phonetic=mul", ["p-anna"]),  # shares the name index (same expression)
        ("Patient?phonetic:missing=true", []),
    ],
)
def test_string(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    assert ids(loaded, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Observation?subject=Patient/p-anna", ["o-hb"]),
        ("Observation?subject=p-bob", ["o-glu"]),
        ("Observation?patient=p-bob", ["o-glu"]),
        ("Observation?subject:Patient=p-anna", ["o-hb"]),
        ("Observation?subject:Group=p-anna", []),
        ("Observation?subject=http://127.0.0.1:8080/fhir/Patient/p-anna", ["o-hb"]),
        ("Patient?organization=Organization/org-1", ["p-anna"]),
        ("Patient?organization:missing=false", ["p-anna"]),
    ],
)
def test_reference(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    assert ids(loaded, query) == expected


def test_uri(client: FlaskClient) -> None:
    vs = {"resourceType": "ValueSet", "status": "active", "url": "http://example.org/fhir/ValueSet/colours"}
    client.post("/fhir/ValueSet", json=vs, headers=headers())
    assert len(ids(client, "ValueSet?url=http://example.org/fhir/ValueSet/colours")) == 1
    assert len(ids(client, "ValueSet?url:below=http://example.org/fhir")) == 1
    assert len(ids(client, "ValueSet?url:above=http://example.org/fhir/ValueSet/colours/v2")) == 1
    assert ids(client, "ValueSet?url=http://example.org/fhir") == []


def test_sort_paging_and_total(loaded: FlaskClient) -> None:
    first = loaded.get("/fhir/Patient?_sort=family&_count=2").get_json()
    assert first["total"] == 3
    assert [e["resource"]["id"] for e in first["entry"]] == ["p-bob", "p-carl"]
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    parsed = urlparse(nxt)
    second = loaded.get(f"{parsed.path}?{parsed.query}").get_json()
    assert [e["resource"]["id"] for e in second["entry"]] == ["p-anna"]
    assert not [link for link in second["link"] if link["relation"] == "next"]
    desc = loaded.get("/fhir/Patient?_sort=-family").get_json()
    assert [e["resource"]["id"] for e in desc["entry"]] == ["p-anna", "p-carl", "p-bob"]
    assert "total" not in loaded.get("/fhir/Patient?_total=none").get_json()
    count_only = loaded.get("/fhir/Patient?gender=male&_summary=count").get_json()
    assert (count_only["total"] == 2 and "entry" not in count_only) or count_only["entry"] == []


def test_deleted_resources_are_not_found(loaded: FlaskClient) -> None:
    loaded.delete("/fhir/Patient/p-carl")
    assert ids(loaded, "Patient?gender=male") == ["p-bob"]


def test_updates_reindex(loaded: FlaskClient) -> None:
    anna = loaded.get("/fhir/Patient/p-anna").get_json()
    loaded.put("/fhir/Patient/p-anna", json={**anna, "gender": "other"}, headers=headers())
    assert ids(loaded, "Patient?gender=female") == []
    assert ids(loaded, "Patient?gender=other") == ["p-anna"]


def test_unknown_parameters_lenient_and_strict(loaded: FlaskClient) -> None:
    bundle = loaded.get("/fhir/Patient?gender=male&colour=blue").get_json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match") == [
        "p-bob",
        "p-carl",
    ]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "colour" not in next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    strict = loaded.get("/fhir/Patient?colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    bad_modifier = loaded.get("/fhir/Patient?gender:contains=m", headers={"Prefer": "handling=strict"})
    assert bad_modifier.status_code == 400


def test_post_search(loaded: FlaskClient) -> None:
    response = loaded.post(
        "/fhir/Patient/_search",
        data="gender=female",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert [e["resource"]["id"] for e in response.get_json()["entry"]] == ["p-anna"]


def entries_by_mode(bundle: dict) -> dict[str, list[str]]:
    modes: dict[str, list[str]] = {}
    for e in bundle.get("entry", []):
        modes.setdefault(e["search"]["mode"], []).append(
            f"{e['resource']['resourceType']}/{e['resource']['id']}"
        )
    return {k: sorted(v) for k, v in modes.items()}


def test_include_and_revinclude(loaded: FlaskClient) -> None:
    org = {"resourceType": "Organization", "id": "org-1", "name": "General Hospital"}
    loaded.put("/fhir/Organization/org-1", json=org, headers=headers())
    forward = loaded.get("/fhir/Observation?code=718-7&_include=Observation:subject").get_json()
    assert entries_by_mode(forward) == {"match": ["Observation/o-hb"], "include": ["Patient/p-anna"]}
    typed = loaded.get("/fhir/Observation?_include=Observation:subject:Group").get_json()
    assert "include" not in entries_by_mode(typed)
    reverse = loaded.get("/fhir/Patient?_id=p-bob&_revinclude=Observation:subject").get_json()
    assert entries_by_mode(reverse) == {"match": ["Patient/p-bob"], "include": ["Observation/o-glu"]}
    iterated = loaded.get(
        "/fhir/Observation?code=718-7&_include=Observation:subject&_include:iterate=Patient:organization"
    ).get_json()
    assert entries_by_mode(iterated)["include"] == ["Organization/org-1", "Patient/p-anna"]
    star = loaded.get("/fhir/Observation?_id=o-glu&_include=Observation:*").get_json()
    assert entries_by_mode(star)["include"] == ["Patient/p-bob"]
    assert "_include=Observation%3Asubject" in next(
        link["url"] for link in forward["link"] if link["relation"] == "self"
    )
    assert loaded.get("/fhir/Observation?_include=Observation:status").status_code == 400
    assert loaded.get("/fhir/Observation?_include=bogus").status_code == 400


def test_patient_compartment(loaded: FlaskClient) -> None:
    assert ids(loaded, "Patient/p-anna/Observation") == ["o-hb"]
    assert ids(loaded, "Patient/p-bob/Observation?status=final") == []
    assert ids(loaded, "Patient/p-bob/Observation?status=preliminary") == ["o-glu"]
    assert ids(loaded, "Patient/p-anna/Patient") == ["p-anna"]
    assert loaded.get("/fhir/Patient/p-anna/ValueSet").status_code == 400
    assert loaded.get("/fhir/Encounter/e1/Observation").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Observation?subject:Patient.name=muller", ["o-hb"]),
        ("Observation?subject.gender=male", ["o-glu"]),
        ("Observation?subject:Patient.identifier=http://hospital.example/mrn|B2", ["o-glu"]),
        ("Observation?subject.name=nobody", []),
        ("Observation?patient.organization.name=general", ["o-hb"]),  # two links deep
        ("Patient?_has:Observation:subject:code=http://loinc.org|718-7", ["p-anna"]),
        ("Patient?_has:Observation:patient:status=preliminary", ["p-bob"]),
        ("Patient?_has:Observation:subject:code=none", []),
    ],
)
def test_chained_and_reverse_chained(loaded: FlaskClient, query: str, expected: list[str]) -> None:
    org = {"resourceType": "Organization", "id": "org-1", "name": "General Hospital"}
    loaded.put("/fhir/Organization/org-1", json=org, headers=headers())
    assert ids(loaded, query) == expected


def test_bad_chains_are_400(loaded: FlaskClient) -> None:
    assert loaded.get("/fhir/Observation?status.name=x").status_code == 400
    assert loaded.get("/fhir/Observation?subject:Device.name=x").status_code == 400
    assert loaded.get("/fhir/Patient?_has:Observation:status:code=x").status_code == 400
    assert loaded.get("/fhir/Patient?_has:Observation:subject:bogus=x").status_code == 400


def test_system_search(loaded: FlaskClient) -> None:
    bundle = loaded.get("/fhir?_type=Patient,Observation&_id=p-bob,o-hb").get_json()
    assert entries_by_mode(bundle) == {"match": ["Observation/o-hb", "Patient/p-bob"]}
    assert bundle["total"] == 2
    both = loaded.get("/fhir?_type=Patient,Observation&_count=2").get_json()
    assert both["total"] == 5 and len(both["entry"]) == 2
    assert loaded.get("/fhir?_id=x").status_code == 400
    assert loaded.get("/fhir?_type=Nope").status_code == 404


def test_patient_everything(loaded: FlaskClient) -> None:
    bundle = loaded.get("/fhir/Patient/p-anna/$everything").get_json()
    assert entries_by_mode(bundle) == {"match": ["Observation/o-hb", "Patient/p-anna"]}
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    paged = loaded.get("/fhir/Patient/p-anna/$everything?_count=1").get_json()
    assert paged["total"] == 2 and len(paged["entry"]) == 1
    nxt = next(link["url"] for link in paged["link"] if link["relation"] == "next")
    assert "%24everything" in nxt or "$everything" in nxt
    only_obs = loaded.get("/fhir/Patient/p-anna/$everything?_type=Observation").get_json()
    assert entries_by_mode(only_obs) == {"match": ["Observation/o-hb"]}
    assert loaded.get("/fhir/Patient/nobody/$everything").status_code == 404


def follow_next(client: FlaskClient, bundle: dict) -> dict | None:
    nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
    if not nxt:
        return None
    parsed = urlparse(nxt[0])
    return client.get(f"{parsed.path}?{parsed.query}").get_json()


def test_cursor_paging_survives_concurrent_changes(client: FlaskClient) -> None:
    for n in range(6):
        client.put(
            f"/fhir/Patient/k{n}",
            json={"resourceType": "Patient", "id": f"k{n}", "gender": "male"},
            headers=headers(),
        )
    page = client.get("/fhir/Patient?gender=male&_count=2").get_json()
    seen = [e["resource"]["id"] for e in page["entry"]]
    assert seen == ["k0", "k1"]
    # while the client pages, a resource it has seen is deleted and a new one appears
    client.delete("/fhir/Patient/k0")
    client.put(
        "/fhir/Patient/k9", json={"resourceType": "Patient", "id": "k9", "gender": "male"}, headers=headers()
    )
    while (page := follow_next(client, page)) is not None:
        assert all(e["search"]["mode"] == "match" for e in page["entry"]), page
        seen += [e["resource"]["id"] for e in page["entry"]]
    # with offsets, deleting k0 would have skipped k2; the cursor continues after k1
    assert seen == ["k0", "k1", "k2", "k3", "k4", "k5", "k9"]
    assert client.get("/fhir/Patient?_cursor=garbage").status_code == 400


def test_special_parameters(client: FlaskClient) -> None:
    tagged = {
        "resourceType": "Patient",
        "id": "t1",
        "meta": {
            "tag": [{"system": "http://example.org/tags", "code": "vip"}],
            "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
            "source": "http://lab.example/system#abc",
        },
    }
    created = client.put("/fhir/Patient/t1", json=tagged, headers=headers()).get_json()
    client.put("/fhir/Patient/t2", json={"resourceType": "Patient", "id": "t2"}, headers=headers())
    assert ids(client, "Patient?_tag=http://example.org/tags|vip") == ["t1"]
    assert ids(
        client, "Patient?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
    ) == ["t1"]
    assert ids(client, "Patient?_security=R") == ["t1"]
    assert ids(client, "Patient?_source=http://lab.example/system%23abc") == ["t1"]
    stamp = created["meta"]["lastUpdated"]
    assert ids(client, f"Patient?_lastUpdated=ge{stamp}") == ["t1", "t2"]
    assert ids(client, f"Patient?_lastUpdated=lt{stamp}") == []
    assert ids(client, "Patient/t1/*") == ["t1"]


def test_absolute_references_to_this_server_are_local(loaded: FlaskClient) -> None:
    base = "http://127.0.0.1:8080/fhir"
    obs = {**OBSERVATIONS[1], "id": "o-abs", "subject": {"reference": f"{base}/Patient/p-carl"}}
    loaded.put("/fhir/Observation/o-abs", json=obs, headers=headers())
    for query in (
        "subject=p-carl",
        "subject=Patient/p-carl",
        "subject:Patient=p-carl",
        f"subject={base}/Patient/p-carl",
    ):
        assert ids(loaded, f"Observation?{query}") == ["o-abs"], query
    included = loaded.get("/fhir/Observation?_id=o-abs&_include=Observation:subject").get_json()
    assert entries_by_mode(included) == {"match": ["Observation/o-abs"], "include": ["Patient/p-carl"]}


def test_code_elements_carry_their_implicit_system(loaded: FlaskClient) -> None:
    assert ids(loaded, "Patient?gender=http://hl7.org/fhir/administrative-gender|male") == ["p-bob", "p-carl"]
    assert ids(loaded, "Observation?status=http://hl7.org/fhir/observation-status|final") == ["o-hb"]
    assert ids(loaded, "Patient?gender=http://hl7.org/fhir/administrative-gender|") == [
        "p-anna",
        "p-bob",
        "p-carl",
    ]
    assert ids(loaded, "Patient?gender=http://other.example/gender|male") == []
