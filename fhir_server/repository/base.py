"""The storage interface the services are written against.

The model is "immutable versions plus a materialised head":

* a version is committed by *inserting* a record whose ``_id`` names it: the store's
  unique ``_id`` index lets exactly one writer claim a version number, the only
  atomic primitive we rely on (FerretDB's conditional updates are read-then-write and
  not atomic; see docs/architecture.md). Version 1 is claimed by inserting the head;
  every later version by inserting its history record;
* the head holds the latest version for reads and search. A resource written once is
  just its head (one insert per create); the first update copies version 1 into
  history before claiming version 2. After a claim the writer replaces the head; if
  it dies in between, the next writer or the start-up recovery brings the head forward.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

# Seconds spent waiting on the store in the current request (Server-Timing, benchmarks).
store_time: contextvars.ContextVar[float] = contextvars.ContextVar("store_time", default=0.0)
store_time_depth: contextvars.ContextVar[int] = contextvars.ContextVar("store_time_depth", default=0)


def add_store_time(seconds: float) -> None:
    store_time.set(store_time.get() + seconds)


class VersionClaimed(Exception):
    """Another writer committed this version number first (optimistic-lock loss), or
    another transaction holds a claim this one needs: re-read and try again."""


class QueryTooCostly(Exception):
    """A search ran past the query time limit (INTEROP_SEARCH_TIMEOUT_MS)."""


class StoreError(Exception):
    """The store cannot be reached or refused the operation; the caller may retry."""


@dataclass(frozen=True)
class StoredVersion:
    """One version of one resource, as stored.

    The resource is kept as its JSON text (``raw``): it is served as is, and a store
    returns one string far more cheaply than a nested document (on FerretDB a read
    costs 0.30 ms of store CPU instead of 0.76 ms). ``resource`` parses it on demand.
    """

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    deleted: bool
    method: str
    raw: bytes | None

    @property
    def key(self) -> str:
        return f"{self.resource_type}/{self.id}"

    @functools.cached_property
    def resource(self) -> dict[str, Any] | None:
        return None if self.raw is None else orjson.loads(self.raw)


@dataclass(frozen=True)
class NewVersion:
    """What a service asks the repository to commit."""

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    method: str
    resource: dict[str, Any] | None
    deleted: bool = False
    # The version this one replaces, as the writer read it (None for a first version).
    previous: StoredVersion | None = None
    # Search index fields (``ix``, ``ir``, ``so``) stored with the version, in the same write.
    index: dict[str, Any] | None = None
    # A server-assigned random id: nobody else can name it, so no claim is needed to create it.
    fresh: bool = False


@dataclass(frozen=True)
class HistoryQuery:
    """A history request at instance (type and id), type (type) or system level."""

    resource_type: str | None = None
    id: str | None = None
    since: datetime | None = None
    at_start: datetime | None = None
    at_end: datetime | None = None
    till: datetime | None = None
    offset: int = 0
    count: int = 50


@dataclass(frozen=True)
class HistoryPage:
    entries: list[StoredVersion] = field(default_factory=list)
    total: int = 0


class Repository(Protocol):
    """What the services may ask of a store. Implementations must be thread-safe."""

    def read(self, resource_type: str, id: str) -> StoredVersion | None:
        """The latest version (possibly a deletion marker), or None if never written."""

    def vread(self, resource_type: str, id: str, version: int) -> StoredVersion | None: ...

    def commit(self, new: NewVersion) -> StoredVersion:
        """Commit one new version; raise :class:`VersionClaimed` if it was taken."""

    def commit_all(
        self, writes: list[NewVersion], locks: list[str], verify: Callable[[], None] | None = None
    ) -> list[StoredVersion]:
        """Commit several new versions as one transaction: all become visible or none.

        ``locks`` name conditional identities (e.g. ``Patient?identifier=s|v``) the
        transaction creates; a concurrent transaction creating the same identity waits.
        ``verify`` runs once the locks are held and before the decision (re-check that
        the identities are still unmatched; raise :class:`VersionClaimed` if not).
        Raise :class:`VersionClaimed` (after waiting for the other writer to finish) when
        a version or identity was taken; the caller re-plans and retries."""

    def catch_up(self, resource_type: str, id: str) -> StoredVersion | None:
        """Bring the head forward to the newest committed version and return it."""

    def history(self, query: HistoryQuery) -> HistoryPage: ...

    def search(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[StoredVersion]:
        """Current, non-deleted resources of a type matching a compiled query, in order."""

    def count(self, resource_type: str, mongo_filter: dict[str, Any]) -> int: ...

    def get_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        """Current, non-deleted resources by id (for _include), in the order given."""

    def resource_types_in_use(self) -> list[str]: ...

    def reindex(self, resource_type: str, compute: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Recompute the search index fields of a type's current resources."""

    def recover(self, since: datetime | None, *, abandon_in_flight: bool = False) -> int:
        """Repair heads left behind by writers that died after their commit point, and
        settle their transactions (``abandon_in_flight``: abort undecided ones at once,
        for a start-up where no other writer can be alive)."""

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the store answers."""

    def close(self) -> None: ...
