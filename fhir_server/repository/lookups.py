"""Identity lookups the embedded store can answer: postings addressed by ``_id``.

FerretDB 1.24 answers only ``{_id: x}`` from an index; every other filter scans the
collection (3 s for ``identifier=`` at 100k patients). Identifier searches run on every
HL7 message and every conditional create, so for the index keys that name identities
(``identifier`` as ``system|value``) each resource also gets a posting
``lookup_T/{key}#{n}`` → ``id``: slot ``n`` is claimed by inserting it, so concurrent
writers never lose one (no read-modify-write). A search that requires such a key reads
the key's slots by ``_id`` until the first free one, fetches those resources by ``_id``
and applies the whole filter to them, so a posting left by a version that no longer
carries the identifier is filtered out. Postings are written *before* the version's
commit point: a committed version is always findable. A key with more than
:data:`MAX_POSTINGS` resources is not selective; searches on it fall back to a scan.

MongoDB answers the same searches from its ``ix`` index; the postings cost it one small
insert per new identity and nothing else.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.base import NewVersion

LOOKUP_PREFIX = "lookup_"
# ``system|value`` only: what conditional operations and HL7 matching send; a value
# without its system is rarer and is answered by a scan.
LOOKUP_KEYS = ("identifier\x1fsc\x1f",)
MAX_POSTINGS = 50
# Present once every resource of the type has its postings (new types start so; older
# data is back-filled first): only then may searches trust the postings.
BUILT = "#built"


def _remember(cache: OrderedDict[str, Any], key: str, value: Any, limit: int = 100_000) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > limit:
        cache.popitem(last=False)


def lookup_keys(record: dict[str, Any]) -> list[str]:
    return [k for k in record.get("ix") or () if k.startswith(LOOKUP_KEYS)]


def new_identities(new: NewVersion, record: dict[str, Any]) -> list[str]:
    """The keys to post for a new version: none when its identifiers are those of the
    version it replaces (already posted), so an update costs no posting round trips."""
    previous = new.previous
    if (
        previous is not None
        and not previous.deleted
        and previous.resource is not None
        and new.resource is not None
        and previous.resource.get("identifier") == new.resource.get("identifier")
    ):
        return []
    return lookup_keys(record)


class Postings:
    """Thread-safe enough: its caches only ever skip work that is known to be done."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._db = db
        self._built: set[str] = set()
        # Per key, a slot below which every slot is taken (slots are never removed), so
        # a writer does not probe a long run again; and the keys known to be overflowing.
        self._taken: OrderedDict[str, int] = OrderedDict()
        self._full: OrderedDict[str, None] = OrderedDict()

    def _collection(self, resource_type: str) -> Collection[dict[str, Any]]:
        return self._db[LOOKUP_PREFIX + resource_type]

    def ids(self, resource_type: str, key: str) -> list[str] | None:
        """The ids posted under a key, or None when the postings cannot answer."""
        if not self.built(resource_type) or f"{resource_type}/{key}" in self._full:
            return None
        collection, found = self._collection(resource_type), list[str]()
        for n in range(MAX_POSTINGS + 1):
            posting = collection.find_one({"_id": f"{key}#{n}"})
            if posting is None:
                return found
            if n == MAX_POSTINGS:
                _remember(self._full, f"{resource_type}/{key}", None)
                return None  # too many resources share it: not an identity
            found.append(posting["id"])
        return found

    def add(self, resource_type: str, id: str, keys: list[str]) -> None:
        collection = self._collection(resource_type)
        for key in keys:
            # Per type: the same identifier value is often posted under several types
            # (a filler number on the ServiceRequest and on its DiagnosticReport).
            cached = f"{resource_type}/{key}"
            if cached in self._full:
                continue  # searches on it scan anyway
            n = self._taken.get(cached, 0)
            while n <= MAX_POSTINGS:
                # Insert first: a new identity (the common case) costs one round trip.
                try:
                    collection.insert_one({"_id": f"{key}#{n}", "id": id})
                    break
                except DuplicateKeyError:
                    posting = collection.find_one({"_id": f"{key}#{n}"})
                    if posting is not None and posting.get("id") == id:
                        break  # already posted (an update that kept the identifier)
                    n += 1
            if n >= MAX_POSTINGS:
                _remember(self._full, cached, None)
            else:
                _remember(self._taken, cached, n + 1)

    def built(self, resource_type: str) -> bool:
        if resource_type in self._built:
            return True
        if self._collection(resource_type).find_one({"_id": BUILT}) is None:
            return False
        self._built.add(resource_type)
        return True

    def mark_built(self, resource_type: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            self._collection(resource_type).insert_one({"_id": BUILT})
        self._built.add(resource_type)
