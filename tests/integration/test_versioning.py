"""If-Match, conditional create/update/delete, PATCH, Prefer, _summary/_elements."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.integration.helpers import headers, patient


def create(client: FlaskClient, **overrides: object) -> dict:
    response = client.post("/fhir/Patient", json=patient(**overrides), headers=headers())
    assert response.status_code == 201
    return response.get_json()


def test_if_match_success_and_mismatch(client: FlaskClient) -> None:
    created = create(client)
    url = f"/fhir/Patient/{created['id']}"
    ok = client.put(url, json=created, headers=headers(**{"If-Match": 'W/"1"'}))
    assert ok.status_code == 200
    stale = client.put(url, json=created, headers=headers(**{"If-Match": 'W/"1"'}))
    assert stale.status_code == 412
    assert stale.get_json()["resourceType"] == "OperationOutcome"


def test_malformed_if_match_is_400(client: FlaskClient) -> None:
    created = create(client)
    response = client.put(
        f"/fhir/Patient/{created['id']}", json=created, headers=headers(**{"If-Match": "version-one"})
    )
    assert response.status_code == 400


def test_if_match_on_delete(client: FlaskClient) -> None:
    created = create(client)
    url = f"/fhir/Patient/{created['id']}"
    assert client.delete(url, headers={"If-Match": 'W/"7"'}).status_code == 412
    assert client.delete(url, headers={"If-Match": 'W/"1"'}).status_code == 204


def test_if_none_exist_creates_once(client: FlaskClient) -> None:
    condition = {"If-None-Exist": "identifier=urn:oid:1.2.36.146.595.217.0.1|12345"}
    first = client.post("/fhir/Patient", json=patient(), headers=headers(**condition))
    assert first.status_code == 201
    second = client.post("/fhir/Patient", json=patient(), headers=headers(**condition))
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    create(client)  # a second match makes the condition ambiguous
    third = client.post("/fhir/Patient", json=patient(), headers=headers(**condition))
    assert third.status_code == 412


def test_if_none_exist_with_unknown_parameter_is_400(client: FlaskClient) -> None:
    response = client.post("/fhir/Patient", json=patient(), headers=headers(**{"If-None-Exist": "bogus=1"}))
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["code"] == "not-supported"


def test_conditional_update_zero_one_many(client: FlaskClient) -> None:
    url = "/fhir/Patient?identifier=http://hospital.example/mrn|A1"
    ident = [{"system": "http://hospital.example/mrn", "value": "A1"}]
    created = client.put(url, json=patient(identifier=ident), headers=headers())
    assert created.status_code == 201
    pid = created.get_json()["id"]
    updated = client.put(url, json=patient(identifier=ident, gender="female"), headers=headers())
    assert updated.status_code == 200
    assert updated.get_json()["id"] == pid
    assert updated.get_json()["meta"]["versionId"] == "2"
    client.post("/fhir/Patient", json=patient(identifier=ident), headers=headers())
    assert client.put(url, json=patient(identifier=ident), headers=headers()).status_code == 412


def test_conditional_update_with_conflicting_id_is_400(client: FlaskClient) -> None:
    ident = [{"system": "http://hospital.example/mrn", "value": "B2"}]
    create(client, identifier=ident)
    response = client.put(
        "/fhir/Patient?identifier=http://hospital.example/mrn|B2",
        json=patient(identifier=ident, id="other"),
        headers=headers(),
    )
    assert response.status_code == 400


def test_conditional_delete(client: FlaskClient) -> None:
    ident = [{"system": "http://hospital.example/mrn", "value": "C3"}]
    created = create(client, identifier=ident)
    assert client.delete("/fhir/Patient?identifier=http://hospital.example/mrn|none").status_code == 200
    assert client.delete("/fhir/Patient?identifier=http://hospital.example/mrn|C3").status_code == 204
    assert client.get(f"/fhir/Patient/{created['id']}").status_code == 410
    create(client, identifier=ident)
    create(client, identifier=ident)
    assert client.delete("/fhir/Patient?identifier=http://hospital.example/mrn|C3").status_code == 412
    assert client.delete("/fhir/Patient").status_code == 400


def test_json_patch(client: FlaskClient) -> None:
    created = create(client)
    url = f"/fhir/Patient/{created['id']}"
    ops = [
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/active", "value": True},
    ]
    response = client.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["gender"] == "female" and body["active"] is True
    assert body["meta"]["versionId"] == "2"


def test_json_patch_errors(client: FlaskClient) -> None:
    created = create(client)
    url = f"/fhir/Patient/{created['id']}"
    jp = {"Content-Type": "application/json-patch+json"}
    invalid = client.patch(url, json=[{"op": "add", "path": "/bogus", "value": 1}], headers=jp)
    assert invalid.status_code == 422
    failing = client.patch(url, json=[{"op": "test", "path": "/gender", "value": "other"}], headers=jp)
    assert failing.status_code == 422
    id_change = client.patch(url, json=[{"op": "replace", "path": "/id", "value": "x"}], headers=jp)
    assert id_change.status_code == 422
    assert client.patch(url, json={"op": "x"}, headers=jp).status_code == 400
    assert client.patch("/fhir/Patient/none", json=[], headers=jp).status_code == 404
    stale = client.patch(url, json=[], headers={**jp, "If-Match": 'W/"9"'})
    assert stale.status_code == 412
    fhirpath = client.patch(url, json={"resourceType": "Parameters"}, headers=headers())
    assert fhirpath.status_code == 415
    assert client.get(url).get_json()["meta"]["versionId"] == "1"


def test_prefer_return(client: FlaskClient) -> None:
    minimal = client.post("/fhir/Patient", json=patient(), headers=headers(Prefer="return=minimal"))
    assert minimal.status_code == 201 and minimal.get_data() == b""
    assert minimal.headers["Location"]
    oo = client.post("/fhir/Patient", json=patient(), headers=headers(Prefer="return=OperationOutcome"))
    assert oo.get_json()["resourceType"] == "OperationOutcome"
    assert oo.get_json()["issue"][0]["severity"] == "information"


def test_summary_and_elements(client: FlaskClient) -> None:
    created = create(
        client,
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        maritalStatus={"text": "married"},
    )
    url = f"/fhir/Patient/{created['id']}"
    summary = client.get(f"{url}?_summary=true").get_json()
    assert "maritalStatus" not in summary and summary["name"] == created["name"]
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    text = client.get(f"{url}?_summary=text").get_json()
    assert "text" in text and "name" not in text
    data = client.get(f"{url}?_summary=data").get_json()
    assert "text" not in data and "maritalStatus" in data
    elements = client.get(f"{url}?_elements=gender").get_json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    assert client.get(f"{url}?_summary=bogus").status_code == 400


def test_format_and_pretty(client: FlaskClient) -> None:
    created = create(client)
    url = f"/fhir/Patient/{created['id']}"
    as_json = client.get(f"{url}?_format=json", headers={"Accept": "text/html"})
    assert as_json.status_code == 200
    plain = client.get(url, headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"].startswith("application/json")
    pretty = client.get(f"{url}?_pretty=true")
    assert b"\n  " in pretty.get_data()
    assert b"\n" not in client.get(url).get_data()


def test_if_none_match_on_read_gives_304(client: FlaskClient) -> None:
    created = create(client)
    response = client.get(f"/fhir/Patient/{created['id']}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
