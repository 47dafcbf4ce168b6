"""ResourceService: the FHIR interactions on one resource type, written once.

REST views, transaction bundles and the HL7 path all call this service, so an HL7
ADT and a FHIR PUT of the same patient end in the same code. Optimistic concurrency
is built on the repository's version claim: a lost claim is retried for unconditional
writes and reported as 412 for ``If-Match`` writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch

from conformance.registry import patient_compartment
from fhir_server import outcomes
from fhir_server.repository.base import (
    HistoryPage,
    HistoryQuery,
    NewVersion,
    QueryTooCostly,
    Repository,
    StoredVersion,
    StoreError,
    VersionClaimed,
)
from fhir_server.search.compartments import compartment_filter
from fhir_server.search.compiler import compile_search
from fhir_server.search.extract import index_resource
from fhir_server.search.paging import cursorable, encode_cursor, keyset_condition
from fhir_server.search.request import SearchRequest, parse
from fhir_server.services import access
from fhir_server.services.guard import Guard
from fhir_server.services.search_expansion import SearchExpansion
from fhir_server.services.validation import ID_PATTERN, is_resource_type, validate_resource

MAX_WRITE_ATTEMPTS = 50


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class SearchResult:
    matches: list[StoredVersion]
    total: int | None
    page_size: int
    included: list[StoredVersion] = field(default_factory=list)
    # Where the next page starts, for keyset paging (None: no next page, or offset paging).
    next_cursor: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """A committed write (or, for conditional create, the existing match)."""

    stored: StoredVersion
    created: bool
    changed: bool = True


def format_instant(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_SYSTEM_PATHS = frozenset({"metadata", "_history", "_search"})


def check_type(resource_type: str) -> None:
    if resource_type in _SYSTEM_PATHS:
        raise outcomes.MethodNotAllowed(f"This method is not supported on /{resource_type}")
    if not is_resource_type(resource_type):
        raise outcomes.NotFound(f"Unknown resource type '{resource_type}'")


def check_id(id: str) -> None:
    if not ID_PATTERN.match(id):
        raise outcomes.InvalidRequest(f"Invalid resource id '{id}'", expression="id")


def _store_unavailable(exc: StoreError) -> outcomes.StoreUnavailable:
    return outcomes.StoreUnavailable("The document store is unavailable; retry later")


class ResourceService:
    def __init__(
        self,
        repository: Repository,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        base_url: str = "",
    ) -> None:
        self._base_url = base_url  # this server's FHIR base: absolute references to it are local
        self._repo = repository
        self._clock = clock
        self._new_id = new_id
        self._guard = Guard(repository, self._call)
        self._expansion = SearchExpansion(repository, self._call, self._guard, base_url)

    # -- reads ---------------------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> StoredVersion:
        check_type(resource_type)
        check_id(id)
        visible = self._guard.visible(resource_type, id, "r")  # a type out of reach is a 403 first
        stored = self._call(self._repo.read, resource_type, id)
        if stored is None or not visible:
            raise outcomes.NotFound(f"{resource_type}/{id} is not known")
        if stored.deleted:
            raise outcomes.Gone(
                f"{resource_type}/{id} was deleted",
                headers={"ETag": f'W/"{stored.version}"', "Last-Modified": http_date(stored.last_updated)},
            )
        return stored

    def vread(self, resource_type: str, id: str, version: str) -> StoredVersion:
        check_type(resource_type)
        check_id(id)
        if not version.isdigit():
            raise outcomes.NotFound(f"{resource_type}/{id} has no version '{version}'")
        visible = self._guard.visible(resource_type, id, "r")
        stored = self._call(self._repo.vread, resource_type, id, int(version))
        if stored is None or not visible:
            raise outcomes.NotFound(f"{resource_type}/{id} has no version {version}")
        if stored.deleted:
            raise outcomes.Gone(f"{resource_type}/{id} version {version} is a deletion")
        return stored

    def history(self, query: HistoryQuery) -> HistoryPage:
        if query.resource_type:
            check_type(query.resource_type)
        if query.id:
            check_id(query.id)
        self._guard.check_history(query)
        page = self._call(self._repo.history, query)
        if query.resource_type and query.id and page.total == 0 and not self._exists_ever(query):
            raise outcomes.NotFound(f"{query.resource_type}/{query.id} is not known")
        return page

    def guard_existing(
        self, resource_type: str, id: str, head: StoredVersion | None, *, deleting: bool
    ) -> None:
        """Refuse to touch a current resource the caller may not change (services/guard.py)."""
        self._guard.check_existing(resource_type, id, head, deleting=deleting)

    def guard_write(self, new: NewVersion) -> None:
        """Refuse a version the caller may not write (services/guard.py)."""
        self._guard.check_write(new)

    def _exists_ever(self, query: HistoryQuery) -> bool:
        assert query.resource_type and query.id
        return self._call(self._repo.read, query.resource_type, query.id) is not None

    def search(self, request: SearchRequest, *, base_url: str = "") -> SearchResult:
        """One page of current resources matching a request, and the total if asked."""
        check_type(request.resource_type)
        request = self._expansion.resolve_chains(self._guard.restricted(request))
        compiled = compile_search(request, base_url=base_url)
        count = DEFAULT_PAGE_SIZE if request.count is None else min(request.count, MAX_PAGE_SIZE)
        page_filter, skip = compiled.filter, request.offset
        if request.cursor is not None:
            if not cursorable(compiled.sort):
                raise outcomes.InvalidRequest(
                    "_cursor applies to the default order only", expression="_cursor"
                )
            after = keyset_condition(compiled.sort, request.cursor)
            page_filter, skip = ({"$and": [compiled.filter, after]} if compiled.filter else after), 0
        matches = self._call(
            self._repo.search, request.resource_type, page_filter, compiled.sort, skip, count
        )
        total = None
        if request.total != "none":
            if len(matches) < count and request.cursor is None and (matches or request.offset == 0):
                total = request.offset + len(matches)  # a short page: the count is known, skip a scan
            else:
                total = self._call(self._repo.count, request.resource_type, compiled.filter)
        included = self._expansion.included(request, matches) if request.includes else []
        cursor = None
        if cursorable(compiled.sort) and count and len(matches) == count:
            cursor = encode_cursor(compiled.sort, matches[-1])
        return SearchResult(matches, total, count, included, cursor)

    def search_system(
        self, types: list[str], pairs: list[tuple[str, str]], *, strict: bool, base_url: str = ""
    ) -> tuple[SearchResult, SearchRequest]:
        """Search several types with the same criteria (the parameters they share), merged
        in one order and paged together; returns the first type's parsed request for links."""
        requests = [parse(t, pairs, strict=strict) for t in types]
        first = requests[0]
        count = DEFAULT_PAGE_SIZE if first.count is None else min(first.count, MAX_PAGE_SIZE)
        window = first.offset + count
        merged: list[StoredVersion] = []
        total: int | None = 0
        for request in requests:
            request = self._expansion.resolve_chains(self._guard.restricted(request))
            compiled = compile_search(request, base_url=base_url)
            merged += self._call(
                self._repo.search, request.resource_type, compiled.filter, compiled.sort, 0, window
            )
            if request.total == "none":
                total = None
            elif total is not None:
                total += self._call(self._repo.count, request.resource_type, compiled.filter)
        merged.sort(key=lambda m: (m.last_updated, m.key), reverse=True)
        return SearchResult(merged[first.offset : window], total, count), first

    def everything(
        self, patient_id: str, *, offset: int, count: int, types: list[str] | None = None
    ) -> SearchResult:
        """``Patient/{id}/$everything``: the patient and its compartment, paged in a fixed
        order (the patient, then each type alphabetically, each by id)."""
        self.read("Patient", patient_id)  # 404/410 for an unknown or deleted patient
        in_use = set(self._call(self._repo.resource_types_in_use))
        wanted = sorted(t for t in patient_compartment() if t in in_use and (types is None or t in types))
        if types is None or "Patient" in types:
            wanted = ["Patient", *[t for t in wanted if t != "Patient"]]
        page: list[StoredVersion] = []
        total, skip = 0, offset
        who = access.current()
        for resource_type in wanted:
            allowed, limit = access.permitted(who, resource_type, "s")
            if not allowed:
                continue  # a type the token cannot search is left out, not an error
            condition = compartment_filter("Patient", patient_id, resource_type)
            if limit is not None:
                condition = {"$and": [condition, limit]}
            size = self._call(self._repo.count, resource_type, condition)
            total += size
            if skip >= size:
                skip -= size
                continue
            room = count - len(page)
            if room > 0:
                page += self._call(self._repo.search, resource_type, condition, [("_id", 1)], skip, room)
            skip = 0
        return SearchResult(page, total, count)

    def search_ids(
        self, resource_type: str, criteria: SearchRequest, *, limit: int = 2
    ) -> list[StoredVersion]:
        """Up to ``limit`` current resources matching conditional criteria (2 tells 'many')."""
        check_type(resource_type)
        compiled = compile_search(self._guard.restricted(criteria))
        return list(self._call(self._repo.search, resource_type, compiled.filter, compiled.sort, 0, limit))

    # -- writes --------------------------------------------------------------------------

    def create(
        self, resource_type: str, body: Any, *, if_none_exist: SearchRequest | None = None
    ) -> WriteResult:
        check_type(resource_type)
        resource = self.checked_body(resource_type, body)
        if if_none_exist is not None:
            matches = self.search_ids(resource_type, if_none_exist)
            if len(matches) > 1:
                raise outcomes.PreconditionFailed(
                    "If-None-Exist matched more than one resource; it must match at most one"
                )
            if matches:
                return WriteResult(matches[0], created=False, changed=False)
        resource.pop("id", None)  # the server assigns ids on create
        # A fresh random id has no head to read: skip the lookup on the first attempt.
        return self._write(resource_type, self._new_id(), lambda _head: resource, "POST", None, fresh=True)

    def update(self, resource_type: str, id: str, body: Any, *, if_match: int | None = None) -> WriteResult:
        check_type(resource_type)
        check_id(id)
        resource = self.checked_body(resource_type, body)
        if resource.get("id") is None:
            raise outcomes.InvalidRequest("The resource must carry its id on update", expression="id")
        if resource["id"] != id:
            raise outcomes.InvalidRequest(
                f"The resource id '{resource['id']}' does not match the URL id '{id}'", expression="id"
            )
        return self._write(resource_type, id, lambda _head: resource, "PUT", if_match)

    def conditional_update(
        self, resource_type: str, criteria: SearchRequest, body: Any, *, if_match: int | None = None
    ) -> WriteResult:
        check_type(resource_type)
        resource = self.checked_body(resource_type, body)
        matches = self.search_ids(resource_type, criteria)
        if len(matches) > 1:
            raise outcomes.PreconditionFailed(
                "Conditional update matched more than one resource; it must match at most one"
            )
        if matches:
            id = matches[0].id
            if resource.get("id") not in (None, id):
                raise outcomes.InvalidRequest(
                    f"The resource id '{resource['id']}' does not match the matched resource '{id}'",
                    expression="id",
                )
        else:
            id = resource.get("id") or self._new_id()
            check_id(id)
        resource["id"] = id
        return self._write(resource_type, id, lambda _head: resource, "PUT", if_match)

    def patch(
        self, resource_type: str, id: str, operations: Any, *, if_match: int | None = None
    ) -> WriteResult:
        check_type(resource_type)
        check_id(id)
        if not isinstance(operations, list):
            raise outcomes.InvalidRequest("A JSON Patch body must be an array of operations")
        try:
            patch = jsonpatch.JsonPatch(operations)
        except (jsonpatch.InvalidJsonPatch, TypeError, KeyError) as exc:
            raise outcomes.InvalidRequest(f"Invalid JSON Patch: {exc}") from exc

        def apply(head: StoredVersion | None) -> dict[str, Any]:
            if head is None or head.deleted or head.resource is None:
                raise outcomes.NotFound(f"{resource_type}/{id} is not known")
            try:
                patched = patch.apply(head.resource)  # apply() works on a copy
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
                raise outcomes.Unprocessable(f"JSON Patch could not be applied: {exc}") from exc
            if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
                raise outcomes.Unprocessable(
                    "JSON Patch must not change resourceType", expression="resourceType"
                )
            if patched.get("id") != id:
                raise outcomes.Unprocessable("JSON Patch must not change the id", expression="id")
            return self.checked_body(resource_type, patched)

        return self._write(resource_type, id, apply, "PATCH", if_match)

    def delete(self, resource_type: str, id: str, *, if_match: int | None = None) -> WriteResult | None:
        """Delete; returns None when there was nothing to delete (still a success)."""
        check_type(resource_type)
        check_id(id)
        head = self._call(self._repo.read, resource_type, id)
        if head is None or (head.deleted and if_match is None):
            return None
        return self._write(resource_type, id, lambda _head: None, "DELETE", if_match)

    def conditional_delete(self, resource_type: str, criteria: SearchRequest) -> WriteResult | None:
        check_type(resource_type)
        matches = self.search_ids(resource_type, criteria)
        if len(matches) > 1:
            raise outcomes.PreconditionFailed(
                "Conditional delete matched more than one resource; this server deletes one at a time"
            )
        if not matches:
            return None
        return self.delete(resource_type, matches[0].id)

    # -- internals -----------------------------------------------------------------------

    def checked_body(self, resource_type: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise outcomes.InvalidRequest("The request body must be a JSON object (a FHIR resource)")
        actual = body.get("resourceType")
        if actual != resource_type:
            raise outcomes.InvalidRequest(
                f"resourceType '{actual}' does not match the URL type '{resource_type}'",
                expression="resourceType",
            )
        # Callers hand over a freshly parsed body; only top-level keys (id, meta) are
        # replaced later, so a shallow copy keeps the caller's object untouched.
        resource = dict(body)
        meta = resource.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise outcomes.Unprocessable("meta must be an object", expression=f"{resource_type}.meta")
        validate_resource(resource)
        return resource

    def _write(
        self,
        resource_type: str,
        id: str,
        make: Callable[[StoredVersion | None], dict[str, Any] | None],
        method: str,
        if_match: int | None,
        *,
        fresh: bool = False,
    ) -> WriteResult:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            head = None if fresh and attempt == 0 else self._call(self._repo.read, resource_type, id)
            self.guard_existing(resource_type, id, head, deleting=method == "DELETE")
            if if_match is not None and (head is None or head.version != if_match):
                current = "does not exist" if head is None else f"is at version {head.version}"
                raise outcomes.PreconditionFailed(
                    f'If-Match W/"{if_match}" failed: {resource_type}/{id} {current}'
                )
            new = self.new_version(resource_type, id, head, make(head), method)
            self.guard_write(new)
            try:
                stored = self._call(self._repo.commit, new)
            except VersionClaimed:
                self._call(self._repo.catch_up, resource_type, id)
                if if_match is not None:
                    raise outcomes.PreconditionFailed(
                        f'If-Match W/"{if_match}" failed: {resource_type}/{id} was changed concurrently'
                    ) from None
                continue
            return WriteResult(stored, created=head is None or head.deleted)
        raise outcomes.Conflict(f"{resource_type}/{id} is being changed by too many writers; retry")

    def new_id(self) -> str:
        return self._new_id()

    def current(self, resource_type: str, id: str) -> StoredVersion | None:
        """The head as stored (possibly a deletion), or None: for planning a transaction."""
        return self._call(self._repo.read, resource_type, id)

    def commit_all(
        self, writes: list[NewVersion], locks: list[str], verify: Callable[[], None] | None = None
    ) -> list[StoredVersion]:
        """Commit versions built by :meth:`new_version` as one all-or-nothing unit."""
        return self._call(self._repo.commit_all, writes, locks, verify)

    def new_version(
        self,
        resource_type: str,
        id: str,
        head: StoredVersion | None,
        resource: dict[str, Any] | None,
        method: str,
        *,
        fresh: bool = False,
    ) -> NewVersion:
        """The next version after ``head``: meta stamped, index values extracted (None
        for a deletion). Single writes and transactions both build versions here."""
        version = head.version + 1 if head else 1
        now = self._clock()
        if head is not None and now <= head.last_updated:
            now = head.last_updated + timedelta(milliseconds=1)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if resource is not None:
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(version)
            meta["lastUpdated"] = format_instant(now)
            # resourceType, id and meta first, as every FHIR example orders them.
            rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
            resource = {"resourceType": resource_type, "id": id, "meta": meta, **rest}
        return NewVersion(
            resource_type=resource_type,
            id=id,
            version=version,
            last_updated=now,
            method=method,
            resource=resource,
            deleted=resource is None,
            previous=head,
            index=None
            if resource is None
            else index_resource(resource_type, resource, base_url=self._base_url).as_fields(),
            fresh=fresh,
        )

    def _call(self, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except StoreError as exc:
            raise _store_unavailable(exc) from exc
        except QueryTooCostly as exc:
            raise outcomes.TooCostly(
                f"The search took too long ({exc}); narrow it with more selective criteria"
            ) from exc


def http_date(value: datetime) -> str:
    from email.utils import format_datetime

    return format_datetime(value.astimezone(UTC), usegmt=True)
