"""Identity and reference lookups the embedded store can answer: postings by ``_id``.

FerretDB 1.24 answers only ``{_id: x}`` from an index; every other filter scans the
collection (3 s for ``identifier=`` at 100k patients, 27 s for ``Observation?subject=``).
Identifier searches run on every HL7 message and conditional create, and reference
searches (``patient=``, ``subject=``, compartments) on every chart, app and CDS call.
So for the index keys that select few resources (:func:`is_lookup_key`: an identifier
as ``system|value``, a reference as ``Type/id`` or a bare id) each write also posts
``{Type}/{key}#{n}`` → ``ids`` in one ``postings`` collection. Slot ``n`` is claimed by
inserting it, so concurrent writers never lose one (no read-modify-write); every slot
below a taken slot is taken, because a writer only inserts above slots it saw taken.
One write posts all its keys in one ``insert_many``, whatever their types: a
transaction of 300 resources naming one patient posts that patient's key once, with
300 ids.

A search that requires such a key reads the key's slots by ``_id`` until the first free
one, fetches those resources by ``_id`` and applies the whole filter to them, so a
posting left by a version that no longer carries the key (or a deleted resource) is
filtered out. Postings are written *before* the version's commit point: a committed
version is always findable. A key with more than :data:`MAX_SLOTS` slots or
:data:`MAX_CANDIDATES` ids is not selective; searches on it fall back to a scan.

MongoDB answers the same searches from its ``ix`` index; the postings cost it one small
insert per write that brings new keys, and nothing else.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.base import NewVersion
from fhir_server.repository.group_insert import GroupInsert
from fhir_server.repository.records import ids_filter

POSTINGS = "postings"
SEP = "\x1f"
# ``system|value`` identifiers (what conditional operations and HL7 matching send; a
# value without its system is rarer and is answered by a scan), and references.
IDENTIFIER_PREFIX = f"identifier{SEP}sc{SEP}"
REFERENCE_KINDS = ("r", "i")
# "This patient's results of this kind" (``Observation?patient=X&code=s|c``, what charts
# and CDS prefetch ask most) also gets a composite key, so it fetches only its matches
# rather than every resource of the patient.
COMPOSITE_REFERENCES = ("patient", "subject")
COMPOSITE_CODE = f"code{SEP}sc{SEP}"
COMPOSITE_SEP = "\x1d"
# Append-only trails read by administrators, written on every request: not posted.
UNPOSTED_TYPES = frozenset({"AuditEvent"})
MAX_SLOTS = 256
# Slots read by the first query of a lookup (then four times as many per query): most
# keys have one slot, and the query must also see the first free one.
FIRST_READ = 2
MAX_CANDIDATES = 5000
# Present once every resource of the type has its postings (new types start so; older
# data is back-filled first): only then may searches trust the postings.
BUILT = "#built-v3"


def is_lookup_key(key: str) -> bool:
    if key.startswith(IDENTIFIER_PREFIX):
        return True
    parts = key.split(SEP, 2)
    return len(parts) == 3 and parts[1] in REFERENCE_KINDS


def is_patient_reference(key: str) -> bool:
    """A ``Type/id`` reference key of ``patient`` or ``subject``: the first half of a
    composite (a bare id of ``patient`` is the same key, see :func:`as_typed`)."""
    parts = key.split(SEP, 2)
    return len(parts) == 3 and parts[0] in COMPOSITE_REFERENCES and parts[1] == "r"


def as_typed(key: str) -> str:
    """``patient=X`` as ``patient=Patient/X``: the ``patient`` parameters of R4 name
    patients only, so both select the same resources."""
    parts = key.split(SEP, 2)
    if len(parts) == 3 and parts[0] == "patient" and parts[1] == "i":
        return f"patient{SEP}r{SEP}Patient/{parts[2]}"
    return key


def is_code(key: str) -> bool:
    """A ``code`` token key with its system: the second half of a composite."""
    return key.startswith(COMPOSITE_CODE)


def composite(reference: str, code: str) -> str:
    return f"{reference}{COMPOSITE_SEP}{code}"


def lookup_keys(record: dict[str, Any]) -> list[str]:
    ix = record.get("ix") or ()
    keys = [k for k in ix if is_lookup_key(k)]
    references = [k for k in keys if is_patient_reference(k)]
    codes = [k for k in ix if is_code(k)]
    return keys + [composite(r, c) for r in references for c in codes]


def _signature(resource: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What lookup keys depend on: every reference, identifier and code with its path."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str):
                found.append((path, reference))
            for name, value in node.items():
                if "dentifier" in name or name == "code" or name.startswith("medication"):
                    found.append((f"{path}.{name}", repr(value)))
                elif isinstance(value, dict | list):
                    walk(value, f"{path}.{name}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(resource, "")
    return sorted(found)


def new_keys(new: NewVersion, record: dict[str, Any]) -> list[str]:
    """The keys to post for a new version: none when its references, identifiers and
    codes are those of the version it replaces (already posted), so most updates cost
    nothing."""
    previous = new.previous
    if (
        previous is not None
        and not previous.deleted
        and previous.resource is not None
        and new.resource is not None
        and _signature(previous.resource) == _signature(new.resource)
    ):
        return []
    return lookup_keys(record)


def _remember(cache: OrderedDict[str, Any], key: str, value: Any, limit: int = 100_000) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > limit:
        cache.popitem(last=False)


class Postings:
    """Thread-safe enough: its caches only ever skip work that is known to be done."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._collection: Collection[dict[str, Any]] = db[POSTINGS]
        self._inserts = GroupInsert(self._collection)
        self._built: set[str] = set()
        # Per posted key, a slot below which every slot is taken (slots are never
        # removed), so a writer does not probe a long run again; and the keys known to
        # be too common to be worth posting.
        self._taken: OrderedDict[str, int] = OrderedDict()
        self._full: OrderedDict[str, None] = OrderedDict()

    def ids(self, resource_type: str, key: str) -> list[str] | None:
        """The ids posted under a key, or None when the postings cannot answer."""
        return self.ids_of_any(resource_type, [key])

    def ids_of_any(self, resource_type: str, keys: list[str]) -> list[str] | None:
        """The ids posted under any of ``keys``, or None when the postings cannot answer.

        Slots are contiguous, so each query reads the next run of slots of every key not
        yet ended (the first two, then four times as many each round) until each key
        meets a free slot: one query for most lookups, however many keys."""
        posted = [f"{resource_type}/{key}" for key in keys]
        if (
            resource_type in UNPOSTED_TYPES
            or any(p in self._full for p in posted)
            or not self.built(resource_type)
        ):
            return None
        found: list[str] = []
        counts = dict.fromkeys(posted, 0)
        unfinished, n, batch = posted, 0, FIRST_READ
        while unfinished:
            run = range(n, min(n + batch, MAX_SLOTS + 1))
            wanted = [f"{p}#{i}" for p in unfinished for i in run]
            slots = {doc["_id"]: doc for doc in self._collection.find(ids_filter(wanted))}
            still: list[str] = []
            for p in unfinished:
                for i in run:
                    slot = slots.get(f"{p}#{i}")
                    if slot is None:
                        break
                    found += slot["ids"]
                    counts[p] += len(slot["ids"])
                    if i == MAX_SLOTS or counts[p] > MAX_CANDIDATES:
                        _remember(self._full, p, None)
                        return None  # too many resources share it: a scan is cheaper
                else:
                    still.append(p)
            if len(found) > MAX_CANDIDATES:
                return None
            unfinished, n, batch = still, n + batch, batch * 4
        return found

    def add(self, resource_type: str, id: str, keys: list[str]) -> None:
        self.add_many([(resource_type, id, keys)])

    def add_many(self, writes: Iterable[tuple[str, str, list[str]]]) -> None:
        """Post ``(type, id, keys)`` of several writes: one insert for all of them
        unless a slot was taken meanwhile (then that key tries its next slot)."""
        pending: dict[str, list[str]] = {}
        for resource_type, id, keys in writes:
            if resource_type in UNPOSTED_TYPES:
                continue
            for key in keys:
                posted = f"{resource_type}/{key}"
                if posted not in self._full:
                    ids = pending.setdefault(posted, [])
                    if id not in ids:
                        ids.append(id)
        while pending:
            slots = {posted: self._taken.get(posted, 0) for posted in pending}
            taken = self._insert(
                [{"_id": f"{posted}#{slots[posted]}", "ids": ids} for posted, ids in pending.items()]
            )
            retry: dict[str, list[str]] = {}
            for posted, ids in pending.items():
                n = slots[posted]
                if posted in taken:
                    slot = self._collection.find_one({"_id": f"{posted}#{n}"}) or {}
                    ids = [i for i in ids if i not in (slot.get("ids") or ())]
                    if ids:  # someone else's slot: ours is further up
                        n = self._first_free(posted, n + 1)
                        if n <= MAX_SLOTS:
                            _remember(self._taken, posted, n)
                            retry[posted] = ids
                            continue
                if n >= MAX_SLOTS:
                    _remember(self._full, posted, None)
                else:
                    _remember(self._taken, posted, n + 1)
            pending = retry

    def _insert(self, docs: list[dict[str, Any]]) -> set[str]:
        """Insert slots (sharing the command with concurrent writers); the posted keys
        whose slot was already taken."""
        return {str(docs[i]["_id"]).rpartition("#")[0] for i in self._inserts.insert(docs)}

    def _first_free(self, posted: str, start: int) -> int:
        """The first free slot at or above ``start`` (slots are contiguous): galloping
        then bisecting, so a writer new to a long run needs a few reads, not one per slot."""

        def taken(n: int) -> bool:
            return self._collection.find_one({"_id": f"{posted}#{n}"}, {"_id": 1}) is not None

        if not taken(start):
            return start
        low, step = start, 1  # low is taken
        while low + step <= MAX_SLOTS and taken(low + step):
            low, step = low + step, step * 2
        high = min(low + step, MAX_SLOTS + 1)  # free, or past the last slot
        while high - low > 1:
            middle = (low + high) // 2
            if taken(middle):
                low = middle
            else:
                high = middle
        return high

    def built(self, resource_type: str) -> bool:
        if resource_type in self._built:
            return True
        if self._collection.find_one({"_id": f"{resource_type}/{BUILT}"}) is None:
            return False
        self._built.add(resource_type)
        return True

    def mark_built(self, resource_type: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            self._collection.insert_one({"_id": f"{resource_type}/{BUILT}"})
        self._built.add(resource_type)
