"""The console's HL7 inbox pages, and how the console reaches the listener's inbox.

Reprocessing runs the listener's own handler (``hl7_listener.handler.Handler``) with the
processing named by INTEROP_HL7_PROCESS (``module:function``; unset: the listener's
default), so a message reprocessed from the console goes through exactly the code the
listener runs. Tests and embedders may set ``app.extensions["console_inbox"]`` instead.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, render_template, request

from fhir_server import outcomes
from fhir_server.repository.inbox import STATUSES, InboxRecord
from fhir_server.services.inbox import InboxService, Reprocess, segments


def listener_reprocess(store: Any, process: Any) -> Reprocess:
    """Reprocess one record with the listener's handler (a fresh event loop per call)."""
    from hl7_listener.handler import Handler

    def run(record: InboxRecord) -> str:
        async def go() -> str:
            with ThreadPoolExecutor(1) as executor:
                return await Handler(store, process, executor=executor).reprocess(record)

        # A thread of its own: the caller's thread may already run an event loop.
        with ThreadPoolExecutor(1) as runner:
            return runner.submit(asyncio.run, go()).result()

    return run


def inbox_service(app: Flask | None = None) -> InboxService | None:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    if "console_inbox" not in app.extensions:
        settings = app.config["INTEROP_SETTINGS"]
        service = None
        if settings.mongodb_uri:
            from fhir_server.repository.inbox import MongoInbox
            from hl7_listener.app import load_process

            store = MongoInbox(settings.mongodb_uri, settings.database)
            service = InboxService(store, listener_reprocess(store, load_process(settings.hl7_process)))
        app.extensions["console_inbox"] = service
    found: InboxService | None = app.extensions["console_inbox"]
    return found


def _required() -> InboxService:
    service = inbox_service()
    if service is None:
        raise outcomes.NotFound("The HL7 inbox needs INTEROP_MONGODB_URI")
    return service


def _instant(name: str) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise outcomes.InvalidRequest(f"'{name}' must be a date or date-time (YYYY-MM-DD)") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _same_origin() -> None:
    """State-changing forms must come from the console's own pages (a CSRF guard). The
    browser's Sec-Fetch-Site says so directly; under ``Referrer-Policy: no-referrer`` (set
    for every response) a form's Origin is "null", so Origin/Referer only serve older
    browsers."""
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return
    origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if urlsplit(origin).netloc != urlsplit(request.host_url).netloc:
        raise outcomes.Forbidden("This form must be sent from the console's own pages")


def inbox_page() -> str:
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise outcomes.InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
    filters = {k: request.args.get(k, "") for k in ("status", "type", "sender", "since", "until")}
    records = _required().search(
        status=status,
        message_type=filters["type"] or None,
        sender=filters["sender"] or None,
        since=_instant("since"),
        until=_instant("until"),
    )
    return render_template("inbox.html", records=records, filters=filters, statuses=STATUSES, results=None)


def message_page(id: str) -> str:
    record = _required().get(id)
    return render_template("message.html", record=record, segments=segments(record.raw))


def reprocess_action() -> Response | str:
    _same_origin()
    ids = request.form.getlist("id")
    if not ids:
        raise outcomes.InvalidRequest("Choose at least one message to reprocess")
    results = _required().reprocess(ids)
    records = [_required().get(id) for id in ids]
    return render_template(
        "inbox.html", records=records, filters={}, statuses=STATUSES, results=results, reprocessed=True
    )
