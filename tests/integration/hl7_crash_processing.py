"""Processing used by the crash test, run inside the listener subprocess.

It stands in for the mappings + services: one "resource" per message whose id is derived
from the message (as mappings/ids.py will), written with an insert so a second run cannot
duplicate it; a second run is recorded so the test can count how often processing ran.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.inbox import InboxRecord
from hl7_listener.handler import ProcessResult
from mappings.message import Message

RESOURCES, RERUNS = "crash_resources", "crash_reruns"


@functools.cache
def _db() -> Any:
    client: MongoClient[dict[str, Any]] = MongoClient(os.environ["INTEROP_MONGODB_URI"])
    return client[os.environ["INTEROP_MONGODB_DATABASE"]]


def collection(name: str) -> Collection[dict[str, Any]]:
    return _db()[name]  # type: ignore[no-any-return]


def process(message: Message, record: InboxRecord) -> ProcessResult:
    try:
        # ``at``: when it was first processed, so the test can check the order per sender.
        collection(RESOURCES).insert_one({"_id": record.id, "ctl": message.control_id, "at": time.time_ns()})
    except DuplicateKeyError:
        # A re-run after a crash finds the resource already there: nothing is duplicated,
        # and the re-run is counted.
        collection(RERUNS).insert_one({"_id": uuid.uuid4().hex, "msg": record.id})
    return ProcessResult([f"Basic/{record.id}"])
