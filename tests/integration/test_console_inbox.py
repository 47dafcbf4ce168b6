"""The console's HL7 inbox pages on the real store: find a failed message, read it,
reprocess it after the mapping is fixed, follow the resource it produced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhir_server.console.inbox import listener_reprocess
from fhir_server.repository.inbox import InboxRecord, Intake, MongoInbox
from fhir_server.services.inbox import InboxService, segments
from hl7_listener.handler import ProcessResult
from mappings.errors import MappingError
from mappings.mapper import to_bundle
from mappings.message import Message
from tests.integration.hl7_helpers import adt

ORIGIN = {"Origin": "http://localhost"}


@pytest.fixture
def inbox(app: Flask, mongo_uri: str, database_name: str) -> Iterator[MongoInbox]:
    store = MongoInbox(mongo_uri, database_name)
    try:
        yield store
    finally:
        store.drop()
        store.close()


def admission(control_id: str) -> bytes:
    """An ADT^A01 the mappings accept (with a visit number, PV1-19)."""
    return adt(control_id).replace(
        b"PV1|1|I|W^101^1\r", b"PV1|1|I|W^101^1" + b"|" * 16 + b"V" + control_id.encode() + b"\r"
    )


def receive(inbox: MongoInbox, raw: bytes, control_id: str, message_type: str = "ADT^A01",
            app: str = "LAB", received: datetime | None = None) -> InboxRecord:  # fmt: skip
    record, _ = inbox.receive(Intake(raw, app, "HOSP", control_id, message_type,
                                     received or datetime.now(UTC), "127.0.0.1:4000"))  # fmt: skip
    return record


@pytest.fixture
def mapping_fixed(app: Flask, inbox: MongoInbox) -> dict[str, bool]:
    """Processing as the listener would run it: broken until ``fixed`` is set."""
    state = {"fixed": False}
    bundles = app.extensions["interop"].bundles

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        if not state["fixed"]:
            raise MappingError(102, "PID-3 has no identifier the mapping knows")
        _, entries = bundles.entries(to_bundle(message))
        results = bundles.transaction(entries, lambda entry: None)
        refs = [f"{r.stored.resource_type}/{r.stored.id}" for r in results if r.stored is not None]
        return ProcessResult([ref for ref in refs if not ref.startswith("Provenance/")])

    app.extensions["console_inbox"] = InboxService(inbox, listener_reprocess(inbox, process))
    return state


def test_find_read_reprocess_and_follow(
    client: FlaskClient, inbox: MongoInbox, mapping_fixed: dict[str, bool]
) -> None:
    record = receive(inbox, admission("FAIL1"), "FAIL1")
    inbox.mark_processed(receive(inbox, adt("OK1"), "OK1"), [], "AA")
    service = client.application.extensions["console_inbox"]
    assert service.reprocess([record.id]) == {record.id: "error"}  # the broken mapping

    failed = client.get("/console/inbox?status=error").get_data(as_text=True)
    assert ">FAIL1</a>" in failed and ">OK1</a>" not in failed
    assert "PID-3 has no identifier the mapping knows" in failed

    page = client.get(f"/console/inbox/{record.id}").get_data(as_text=True)
    assert '<th>PID-5</th><td class="seg">Doe^Jane</td>' in page
    assert '<th>MSH-9</th><td class="seg">ADT^A01^ADT_A01</td>' in page
    assert 'id="ack">AE — PID-3 has no identifier the mapping knows (error 102)' in page

    mapping_fixed["fixed"] = True
    done = client.post("/console/inbox/reprocess", data={"id": [record.id]}, headers=ORIGIN)
    assert done.status_code == 200
    assert '<span class="status-processed">processed</span>' in done.get_data(as_text=True)

    page = client.get(f"/console/inbox/{record.id}").get_data(as_text=True)
    assert 'id="ack">AA' in page
    link = page.split('id="produced">', 1)[1].split('href="', 1)[1].split('"', 1)[0]
    assert link.startswith("/console/resources/Patient/")
    patient = client.get(link).get_data(as_text=True)
    assert "MRNFAIL1" in patient


def test_reprocess_needs_the_console_origin(
    client: FlaskClient, inbox: MongoInbox, mapping_fixed: dict[str, bool]
) -> None:
    record = receive(inbox, adt("X1"), "X1")
    response = client.post("/console/inbox/reprocess", data={"id": [record.id]},
                           headers={"Origin": "http://evil.example"})  # fmt: skip
    assert response.status_code == 403
    assert inbox.get(record.id).attempts == 0  # type: ignore[union-attr]
    assert client.post("/console/inbox/reprocess", data={}, headers=ORIGIN).status_code == 400


def test_filters_by_type_sender_and_date(
    client: FlaskClient, inbox: MongoInbox, mapping_fixed: dict[str, bool]
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    receive(inbox, adt("A1"), "A1")
    receive(inbox, adt("L1", app="LIS"), "L1", message_type="ORU^R01", app="LIS")
    receive(inbox, adt("OLD1"), "OLD1", received=old)

    def listed(query: str) -> set[str]:
        page = client.get("/console/inbox" + query).get_data(as_text=True)
        return {c for c in ("A1", "L1", "OLD1") if f">{c}</a>" in page}

    assert listed("") == {"A1", "L1", "OLD1"}
    assert listed("?type=ORU") == {"L1"}
    assert listed("?sender=lis") == {"L1"}
    assert listed(f"?since={(old + timedelta(days=1)).date()}") == {"A1", "L1"}
    assert listed(f"?until={(old + timedelta(days=1)).date()}") == {"OLD1"}
    assert client.get("/console/inbox?status=lost").status_code == 400
    assert client.get("/console/inbox/0000").status_code == 404


def test_dashboard_shows_message_rates_and_ack_codes(
    client: FlaskClient, inbox: MongoInbox, mapping_fixed: dict[str, bool]
) -> None:
    first = receive(inbox, adt("D1"), "D1")
    receive(inbox, adt("D2"), "D2")
    inbox.mark_processed(first, ["Patient/x"], "AA")
    page = client.get("/console/").get_data(as_text=True)
    assert 'HL7 messages (last 24 h)</h2><div class="figure">2</div>' in page
    assert "<tr><td>AA</td><td>1</td></tr>" in page and "<tr><td>none yet</td><td>1</td></tr>" in page
    assert '<canvas id="messages"' in page


def test_segments_number_fields_the_hl7_way() -> None:
    parsed = segments(b"MSH|^~\\&|LAB|HOSP|||20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H^MR||Doe^Jane\n")
    msh, pid = parsed
    first = [("MSH-1", "|"), ("MSH-2", "^~\\&"), ("MSH-3", "LAB"), ("MSH-4", "HOSP")]
    assert [(f.name, f.value) for f in msh.fields[:4]] == first
    assert ("PID-3", "123^^^H^MR") in [(f.name, f.value) for f in pid.fields]
    assert ("PID-5", "Doe^Jane") in [(f.name, f.value) for f in pid.fields]
