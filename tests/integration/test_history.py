"""History at instance, type and system level, with _since, _at, _count and paging."""

from __future__ import annotations

from urllib.parse import urlparse

from flask.testing import FlaskClient

from tests.integration.helpers import headers, patient


def write_versions(client: FlaskClient, n: int) -> tuple[str, list[str]]:
    created = client.post("/fhir/Patient", json=patient(), headers=headers()).get_json()
    stamps = [created["meta"]["lastUpdated"]]
    body = created
    for i in range(n - 1):
        body = {**body, "birthDate": f"19{50 + i}-01-01"}
        body = client.put(f"/fhir/Patient/{created['id']}", json=body, headers=headers()).get_json()
        stamps.append(body["meta"]["lastUpdated"])
    return created["id"], stamps


def follow(client: FlaskClient, url: str) -> dict:
    parsed = urlparse(url)
    return client.get(f"{parsed.path}?{parsed.query}").get_json()


def test_instance_history_newest_first_without_gaps(client: FlaskClient) -> None:
    pid, _ = write_versions(client, 5)
    bundle = client.get(f"/fhir/Patient/{pid}/_history").get_json()
    assert bundle["type"] == "history" and bundle["total"] == 5
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == ["5", "4", "3", "2", "1"]
    assert bundle["entry"][-1]["request"]["method"] == "POST"
    assert bundle["entry"][0]["response"]["etag"] == 'W/"5"'


def test_instance_history_paging(client: FlaskClient) -> None:
    pid, _ = write_versions(client, 5)
    page = client.get(f"/fhir/Patient/{pid}/_history?_count=2").get_json()
    seen = []
    while True:
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        page = follow(client, nxt[0])
    assert seen == ["5", "4", "3", "2", "1"]


def test_since_and_at(client: FlaskClient) -> None:
    pid, stamps = write_versions(client, 4)
    since = client.get(f"/fhir/Patient/{pid}/_history?_since={stamps[2]}").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in since["entry"]] == ["4", "3"]
    at = client.get(f"/fhir/Patient/{pid}/_history?_at={stamps[1]}").get_json()
    assert [e["resource"]["meta"]["versionId"] for e in at["entry"]] == ["2"]
    assert client.get(f"/fhir/Patient/{pid}/_history?_since=yesterday").status_code == 400


def test_type_and_system_history(client: FlaskClient) -> None:
    write_versions(client, 2)
    write_versions(client, 3)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    client.post("/fhir/Observation", json=obs, headers=headers())
    type_history = client.get("/fhir/Patient/_history").get_json()
    assert type_history["total"] == 5
    assert {e["resource"]["resourceType"] for e in type_history["entry"]} == {"Patient"}
    system = client.get("/fhir/_history?_count=4").get_json()
    assert system["total"] == 6 and len(system["entry"]) == 4
    stamps = [e["response"]["lastModified"] for e in system["entry"]]
    assert stamps == sorted(stamps, reverse=True)
    rest = follow(client, next(link["url"] for link in system["link"] if link["relation"] == "next"))
    assert len(rest["entry"]) == 2


def test_history_of_unknown_resource_is_404(client: FlaskClient) -> None:
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_unknown_history_parameter_is_400(client: FlaskClient) -> None:
    assert client.get("/fhir/_history?color=red").status_code == 400


def test_type_level_at_returns_versions_current_then(client: FlaskClient) -> None:
    first, stamps_a = write_versions(client, 3)
    second, _ = write_versions(client, 1)
    at = client.get(f"/fhir/Patient/_history?_at={stamps_a[1]}").get_json()
    found = {(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in at["entry"]}
    # first patient's version 2 was current at that instant; the second patient did not exist yet
    assert found == {(first, "2")}
    assert second not in {e["resource"]["id"] for e in at["entry"]}


def test_system_history_since(client: FlaskClient) -> None:
    _, stamps = write_versions(client, 2)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    made = client.post("/fhir/Observation", json=obs, headers=headers()).get_json()
    since = client.get(f"/fhir/_history?_since={stamps[1]}").get_json()
    assert {e["fullUrl"].split("/fhir/")[1] for e in since["entry"]} >= {f"Observation/{made['id']}"}
    assert since["total"] == 2


def test_patch_is_recorded_as_patch(client: FlaskClient) -> None:
    pid, _ = write_versions(client, 1)
    client.patch(
        f"/fhir/Patient/{pid}",
        json=[{"op": "add", "path": "/active", "value": True}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    entries = client.get(f"/fhir/Patient/{pid}/_history").get_json()["entry"]
    assert [e["request"]["method"] for e in entries] == ["PATCH", "POST"]
