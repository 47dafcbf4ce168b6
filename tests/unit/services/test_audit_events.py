"""The AuditEvents the server writes are valid R4 and say who, what, when and how it went."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.services.access import Access
from fhir_server.services.audit import Seen, auth_event, message_event, rest_event
from fhir_server.services.validation import validate_resource

WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_rest_event() -> None:
    who = Access.from_token(subject="ann", client_id="app-1", scope="patient/*.rs", patient="p1")
    seen = Seen("search-type", 200, "/fhir/Observation", "code=x", "10.0.0.9", "rid-1")
    event = rest_event(seen, who, WHEN)
    validate_resource(event)
    assert event["action"] == "E"
    assert event["outcome"] == "0"
    assert event["agent"][0]["who"]["identifier"]["value"] == "app-1"
    assert event["agent"][0]["network"]["address"] == "10.0.0.9"
    assert {"what": {"reference": "Patient/p1"}}.items() <= event["entity"][-1].items()
    refused = rest_event(
        Seen("read", 401, "/fhir/Patient/p2", "", "10.0.0.9", "rid-2", "Patient/p2", "p2"), None, WHEN
    )
    validate_resource(refused)
    assert refused["outcome"] == "4"
    assert refused["action"] == "R"
    assert refused["agent"][0]["name"] == "anonymous"


def test_auth_and_message_events() -> None:
    token = auth_event(
        event="token",
        success=False,
        client_id="c",
        subject="",
        detail="invalid_client",
        remote="",
        request_id="r",
        when=WHEN,
    )
    validate_resource(token)
    assert token["outcome"] == "4"
    login = auth_event(
        event="login",
        success=True,
        client_id="c",
        subject="ann",
        detail="ok",
        remote="1.2.3.4",
        request_id="r",
        when=WHEN,
    )
    validate_resource(login)
    assert login["subtype"][0]["code"] == "110122"
    message = message_event(
        message_type="ADT^A01",
        control_id="MSG1",
        sender="LAB",
        remote="1.2.3.4",
        accepted=True,
        when=WHEN,
        patient="p1",
    )
    validate_resource(message)
    assert message["entity"][0]["name"] == "MSG1"
