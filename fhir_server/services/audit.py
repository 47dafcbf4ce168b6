"""The audit trail: an AuditEvent for every access to health data and every auth event.

Requests only build the event and put it on a bounded queue; one writer thread per
process stores the queue in order (as ordinary AuditEvent resources, so administrators
search them through the FHIR API; ``services.access`` refuses every write to the type
that does not come from the server itself). The queue is flushed on shutdown. When it
is full (the store has been unreachable for a while) a request waits up to
``put_timeout`` seconds, then the event is counted as dropped and logged: the audit
trail must not take the API down with it.

Each event carries the request id (``entity.name`` of the request entity, searchable
with ``entity-name:exact``), the agent (subject, client, source address), the action and
outcome, the resource or query, and the patient when known.
"""

from __future__ import annotations

import atexit
import base64
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_server.repository.base import Repository, StoreError
from fhir_server.services.access import Access
from fhir_server.services.resources import ResourceService, format_instant

log = logging.getLogger("fhir_server.audit")

EVENT_TYPES = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTIONS = "http://hl7.org/fhir/restful-interaction"
AGENT_TYPES = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPES = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
CLIENT_SYSTEM = "urn:interop:client"
BATCH = 200  # events stored per pair of inserts
LINGER = 0.05  # seconds the writer waits for more events to share a batch (the store's cost is per insert)
_ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
}


@dataclass(frozen=True)
class Seen:
    """What the HTTP edge knows of one request, for its AuditEvent."""

    interaction: str
    status: int
    path: str
    query: str
    remote: str
    request_id: str
    reference: str | None = None  # Type/id when the request names one resource
    patient: str | None = None


def _outcome(status: int) -> tuple[str, str]:
    if status < 400:
        return "0", "success"
    if status < 500:
        return "4", f"refused or failed ({status})"
    return "8", f"server failure ({status})"


def _agent(subject: str, client_id: str, remote: str) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": AGENT_TYPES, "code": "IRCP", "display": "information recipient"}]},
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client_id or "anonymous"}},
        "name": subject or "anonymous",
        "requestor": True,
    }
    if subject:
        agent["altId"] = subject
    if remote:
        agent["network"] = {"address": remote, "type": "2"}
    return agent


def _request_entity(request_id: str) -> dict[str, Any]:
    return {
        "type": {"system": ENTITY_TYPES, "code": "2", "display": "System Object"},
        "name": request_id,
        "description": "request id (X-Request-ID)",
    }


def rest_event(seen: Seen, who: Access | None, when: datetime) -> dict[str, Any]:
    """The AuditEvent of one FHIR REST request (who may be None: no valid token)."""
    code, description = _outcome(seen.status)
    entities: list[dict[str, Any]] = [_request_entity(seen.request_id)]
    if seen.reference:
        entities.append(
            {"what": {"reference": seen.reference}, "type": {"system": ENTITY_TYPES, "code": "2"}}
        )
    if seen.query:
        entities.append(
            {
                "type": {"system": ENTITY_TYPES, "code": "2"},
                "description": seen.path,
                "query": base64.b64encode(seen.query.encode()).decode(),
            }
        )
    patient = seen.patient or (who.patient if who else None)
    if patient:
        entities.append(
            {"what": {"reference": f"Patient/{patient}"}, "type": {"system": ENTITY_TYPES, "code": "1"}}
        )
    subject = who.subject if who else ""
    client = who.client_id if who else ""
    agent = _agent(subject, client, seen.remote)
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": {"system": EVENT_TYPES, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTIONS, "code": seen.interaction}],
        "action": _ACTIONS.get(seen.interaction, "E"),
        "recorded": format_instant(when),
        "outcome": code,
        "outcomeDesc": f"{description}: {seen.path}" + (f" (scopes: {' '.join(who.scopes)})" if who else ""),
        "agent": [agent],
        "source": {
            "observer": {"display": "interop-server"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3"}],
        },
        "entity": entities,
    }
    return event


def auth_event(
    *,
    event: str,
    success: bool,
    client_id: str,
    subject: str,
    detail: str,
    remote: str,
    request_id: str,
    when: datetime,
) -> dict[str, Any]:
    """The AuditEvent of a token issued or refused, a login, a revocation."""
    code, description = _outcome(200 if success else 401)
    return {
        "resourceType": "AuditEvent",
        "type": {"system": DICOM, "code": "110114", "display": "User Authentication"},
        "subtype": [
            {"system": DICOM, "code": "110122", "display": "Login"}
            if event == "login"
            else {"system": "urn:interop:auth-event", "code": event}
        ],
        "action": "E",
        "recorded": format_instant(when),
        "outcome": code,
        "outcomeDesc": f"{event} {description}: {detail}",
        "agent": [_agent(subject, client_id, remote)],
        "source": {"observer": {"display": "interop-server authorization"}},
        "entity": [_request_entity(request_id)],
    }


def message_event(
    *,
    message_type: str,
    control_id: str,
    sender: str,
    remote: str,
    accepted: bool,
    when: datetime,
    patient: str | None = None,
) -> dict[str, Any]:
    """The AuditEvent of an HL7 v2 message received over MLLP (for the listener to record)."""
    code, description = _outcome(200 if accepted else 400)
    entities: list[dict[str, Any]] = [
        {
            "type": {"system": ENTITY_TYPES, "code": "2", "display": "System Object"},
            "name": control_id,
            "description": f"HL7 v2 {message_type} (MSH-10 control id)",
        }
    ]
    if patient:
        entities.append(
            {"what": {"reference": f"Patient/{patient}"}, "type": {"system": ENTITY_TYPES, "code": "1"}}
        )
    return {
        "resourceType": "AuditEvent",
        "type": {"system": DICOM, "code": "110106", "display": "Import"},
        "subtype": [{"system": "urn:interop:hl7v2-message", "code": message_type}],
        "action": "C",
        "recorded": format_instant(when),
        "outcome": code,
        "outcomeDesc": f"HL7 v2 message {description}",
        "agent": [_agent(sender, sender, remote)],
        "source": {"observer": {"display": "interop-server MLLP listener"}},
        "entity": entities,
    }


class AuditTrail:
    """A bounded queue and one writer thread per process."""

    def __init__(
        self,
        resources: ResourceService,
        repository: Repository,
        *,
        max_queue: int = 10_000,
        put_timeout: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._resources = resources
        self._repo = repository
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self._put_timeout = put_timeout
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        self.failed = 0

    def now(self) -> datetime:
        return self._clock()

    def record(self, event: dict[str, Any]) -> None:
        self._start()
        try:
            self._queue.put(event, timeout=self._put_timeout)
        except queue.Full:
            self.dropped += 1
            log.error("audit queue full: an AuditEvent was dropped (%d so far)", self.dropped)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event recorded so far is stored (or failed); True if done in time."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + LINGER
            while len(batch) < BATCH and batch[-1] is not None:  # gather a batch for the same inserts
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            events = [e for e in batch if e is not None]
            try:
                self._store(events)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(events) < len(batch):
                return

    def _store(self, events: list[dict[str, Any]]) -> None:
        # Built by the server, so not re-validated; indexed like any resource so it is searchable.
        if not events:
            return
        try:
            news = [
                self._resources.new_version("AuditEvent", uuid.uuid4().hex, None, e, "POST", fresh=True)
                for e in events
            ]
            append = getattr(self._repo, "append_new", None)
            if append is not None:
                append("AuditEvent", news)
            else:
                for new in news:
                    self._repo.commit(new)
        except (StoreError, RuntimeError) as exc:
            self.failed += len(events)
            log.error("%d audit event(s) not stored: %s", len(events), exc)
