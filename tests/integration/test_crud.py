"""Create, read, vread, update, delete against the real store."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.integration.helpers import FHIR_JSON, headers, patient


def create_patient(client: FlaskClient, **overrides: object) -> dict:
    response = client.post("/fhir/Patient", json=patient(**overrides), headers=headers())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_assigns_id_version_and_headers(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", json=patient(id="client-chosen"), headers=headers())
    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    assert "Last-Modified" in response.headers
    assert response.headers["X-Request-ID"]


def test_read_returns_current_version(client: FlaskClient) -> None:
    created = create_patient(client)
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.get_json() == created
    assert response.headers["ETag"] == 'W/"1"'


def test_update_creates_new_version_and_vread_keeps_old(client: FlaskClient) -> None:
    created = create_patient(client)
    changed = {**created, "gender": "female"}
    response = client.put(f"/fhir/Patient/{created['id']}", json=changed, headers=headers())
    assert response.status_code == 200
    assert response.get_json()["meta"]["versionId"] == "2"
    assert response.headers["ETag"] == 'W/"2"'
    old = client.get(f"/fhir/Patient/{created['id']}/_history/1").get_json()
    assert old["gender"] == "male"
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["gender"] == "female"


def test_update_as_create_with_client_id(client: FlaskClient) -> None:
    response = client.put("/fhir/Patient/pat-new-1", json=patient(id="pat-new-1"), headers=headers())
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/fhir/Patient/pat-new-1/_history/1")
    assert client.get("/fhir/Patient/pat-new-1").status_code == 200


def test_update_rejects_mismatched_or_missing_id(client: FlaskClient) -> None:
    response = client.put("/fhir/Patient/a1", json=patient(id="b2"), headers=headers())
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["id"]
    assert client.put("/fhir/Patient/a1", json=patient(), headers=headers()).status_code == 400


def test_delete_then_read_is_gone_and_history_keeps_it(client: FlaskClient) -> None:
    created = create_patient(client)
    url = f"/fhir/Patient/{created['id']}"
    response = client.delete(url)
    assert response.status_code == 204
    assert response.headers["ETag"] == 'W/"2"'
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.get_json()["issue"][0]["code"] == "deleted"
    history = client.get(f"{url}/_history").get_json()
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410
    # re-creating after delete is an update-as-create with the next version
    again = client.put(url, json={**patient(), "id": created["id"]}, headers=headers())
    assert again.status_code == 201
    assert again.get_json()["meta"]["versionId"] == "3"


def test_delete_unknown_is_idempotent_success(client: FlaskClient) -> None:
    response = client.delete("/fhir/Patient/never-there")
    assert response.status_code == 200
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_read_unknown_is_404_outcome(client: FlaskClient) -> None:
    response = client.get("/fhir/Patient/nope")
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"
    assert client.get("/fhir/Patient/nope/_history/1").status_code == 404
    assert client.get("/fhir/Patient/nope/_history/x").status_code == 404


def test_unknown_resource_type_is_404(client: FlaskClient) -> None:
    response = client.get("/fhir/Spaceship/1")
    assert response.status_code == 404
    assert "Spaceship" in response.get_json()["issue"][0]["diagnostics"]
    assert (
        client.post("/fhir/Spaceship", json={"resourceType": "Spaceship"}, headers=headers()).status_code
        == 404
    )


def test_every_r4_type_round_trips(client: FlaskClient) -> None:
    samples = {
        "Observation": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
            "valueQuantity": {
                "value": 13.2,
                "unit": "g/dL",
                "system": "http://unitsofmeasure.org",
                "code": "g/dL",
            },
        },
        "Encounter": {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"}},
        "MedicinalProduct": {"resourceType": "MedicinalProduct", "name": [{"productName": "Aspirin"}]},
    }
    for resource_type, body in samples.items():
        response = client.post(f"/fhir/{resource_type}", json=body, headers=headers())
        assert response.status_code == 201, (resource_type, response.get_json())
        created = response.get_json()
        assert client.get(f"/fhir/{resource_type}/{created['id']}").get_json() == created


def test_invalid_id_in_url_is_400(client: FlaskClient) -> None:
    response = client.put("/fhir/Patient/bad$id", json=patient(id="bad$id"), headers=headers())
    assert response.status_code == 400
