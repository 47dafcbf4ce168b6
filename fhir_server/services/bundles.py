"""Batch and transaction Bundles, on top of ResourceService.

A batch runs each entry through the ordinary single-resource interactions. A
transaction is planned in full first (identities assigned, conditional operations and
references resolved, ``urn:uuid:`` references rewritten, every version built and
validated) and then committed as one unit by the repository (repository/transactions.py),
so a failing entry leaves nothing behind. The HL7 path stores one message this way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jsonpatch

from fhir_server import outcomes
from fhir_server.repository.base import NewVersion, StoredVersion, VersionClaimed
from fhir_server.search.request import parse_query_string
from fhir_server.services import access
from fhir_server.services.bundle_entries import (
    METHOD_ORDER,
    Entry,
    EntryResult,
    fail,
    parse_bundle,
    patch_operations,
)
from fhir_server.services.resources import ResourceService, WriteResult, check_id, check_type

_CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+\?")
MAX_PLAN_ATTEMPTS = 20


@dataclass
class _Plan:
    writes: list[NewVersion] = field(default_factory=list)
    write_entry: list[int] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)
    results: dict[int, EntryResult] = field(default_factory=dict)
    # Current versions the planning already read (conditional matches), by Type/id.
    heads: dict[str, StoredVersion] = field(default_factory=dict)
    # Entries that write nothing themselves but name a resource another entry writes.
    aliases: dict[int, str] = field(default_factory=dict)


# Runs a GET entry (read, vread or search): supplied by the API layer, which renders bundles.
Reader = Callable[[Entry], EntryResult]


class BundleService:
    def __init__(self, resources: ResourceService, *, max_entries: int, base_url: str = "") -> None:
        self._resources = resources
        self._max_entries = max_entries
        self._base_url = base_url.rstrip("/")

    def entries(self, bundle: Any, expected: str | None = None) -> tuple[str, list[Entry]]:
        """Check a Bundle's shape and parse its entries' requests (bundle_entries.py)."""
        return parse_bundle(bundle, expected, max_entries=self._max_entries, base_url=self._base_url)

    # -- batch ---------------------------------------------------------------------------

    def batch(self, entries: list[Entry], reader: Reader) -> list[EntryResult]:
        """Each entry on its own: one failure does not touch the others."""
        results = []
        for entry in entries:
            try:
                results.append(self._single(entry, reader))
            except outcomes.FhirError as error:
                fail(entry, error)
                results.append(EntryResult(error.status, outcome=error.to_outcome()))
        return results

    def _single(self, entry: Entry, reader: Reader) -> EntryResult:
        service = self._resources
        criteria = self._criteria(entry, entry.query) if entry.query is not None else None
        if entry.method in ("GET", "HEAD"):
            return reader(entry)
        if entry.method == "POST":
            exist = self._criteria(entry, entry.if_none_exist) if entry.if_none_exist else None
            return _written(service.create(entry.resource_type, entry.resource, if_none_exist=exist))
        if entry.method == "PUT":
            if criteria is not None and entry.id is None:
                written = service.conditional_update(
                    entry.resource_type, criteria, entry.resource, if_match=entry.if_match
                )
                return _written(written)
            return _written(
                service.update(entry.resource_type, self._id(entry), entry.resource, if_match=entry.if_match)
            )
        if entry.method == "PATCH":
            patched = service.patch(
                entry.resource_type, self._id(entry), patch_operations(entry), if_match=entry.if_match
            )
            return _written(patched)
        deleted = (
            service.conditional_delete(entry.resource_type, criteria)
            if criteria is not None and entry.id is None
            else service.delete(entry.resource_type, self._id(entry), if_match=entry.if_match)
        )
        return EntryResult(204, stored=None if deleted is None else deleted.stored)

    # -- transaction ---------------------------------------------------------------------

    def transaction(self, entries: list[Entry], reader: Reader) -> list[EntryResult]:
        """All entries or none. Raises the failing entry's error (its index in the
        OperationOutcome's expression); nothing of the transaction is then visible."""
        self._check_reads(entries)
        for _attempt in range(MAX_PLAN_ATTEMPTS):
            plan = self._plan(entries)
            try:
                stored = (
                    self._resources.commit_all(
                        plan.writes, plan.locks, functools.partial(self._still_unmatched, plan)
                    )
                    if plan.writes
                    else []
                )
            except VersionClaimed:
                continue  # another writer got in between: plan again against what it wrote
            written = {}
            for index, version in zip(plan.write_entry, stored, strict=True):
                plan.results[index].stored = version
                written[version.key] = version
            for index, key in plan.aliases.items():
                plan.results[index].stored = written.get(key) or plan.results[index].stored
            break
        else:
            raise outcomes.Conflict("The transaction kept colliding with concurrent writers; retry it")
        for entry in entries:
            if entry.method in ("GET", "HEAD"):
                try:
                    plan.results[entry.index] = reader(entry)
                except outcomes.FhirError as error:
                    fail(entry, error)
                    plan.results[entry.index] = EntryResult(error.status, outcome=error.to_outcome())
        return [plan.results[entry.index] for entry in entries]

    def _check_reads(self, entries: list[Entry]) -> None:
        """A transaction whose read entries ask for a type the caller cannot read fails
        whole, before anything is written (their results are still filtered later)."""
        who = access.current()
        for entry in entries:
            if entry.method in ("GET", "HEAD"):
                try:
                    check_type(entry.resource_type)
                    access.condition(who, entry.resource_type, "r" if entry.id else "s")
                except outcomes.FhirError as error:
                    raise fail(entry, error) from None

    def _plan(self, entries: list[Entry]) -> _Plan:
        plan = _Plan()
        ordered = sorted(entries, key=lambda e: METHOD_ORDER[e.method])
        identities: dict[str, str] = {}  # fullUrl -> Type/id
        conditional: dict[str, tuple[str, bool]] = {}  # "Type?query" -> (id, exists)
        targets: dict[str, int] = {}  # Type/id -> the entry writing it
        pending: list[tuple[Entry, str, bool]] = []  # writes with (id, fresh) once identities are known

        for entry in ordered:
            try:
                if entry.method in ("GET", "HEAD"):
                    continue
                check_type(entry.resource_type)
                if entry.method == "POST":
                    id, fresh = self._post_identity(entry, conditional, plan)
                elif entry.id is not None:
                    check_id(entry.id)
                    id, fresh = entry.id, False
                elif entry.query is not None:
                    found = self._conditional_target(entry, conditional, plan)
                    if found is None:
                        continue
                    id, fresh = found
                else:
                    raise outcomes.InvalidRequest(
                        f"{entry.method} needs an id or search criteria in request.url",
                        expression="request.url",
                    )
                key = f"{entry.resource_type}/{id}"
                if entry.full_url:
                    identities[entry.full_url] = key
                if entry.index in plan.results:  # a conditional create that matched
                    continue
                if key in targets and entry.method != "POST":
                    raise outcomes.InvalidRequest(
                        f"{key} is the target of more than one entry (also entry {targets[key]})"
                    )
                targets[key] = entry.index
                pending.append((entry, id, fresh))
            except outcomes.FhirError as error:
                raise fail(entry, error) from None

        # Conditional references resolve to this Bundle's own conditional creates and
        # updates first (a patient Bundle may create the organization it points at).
        cache = {key: f"{key.split('?', 1)[0]}/{id}" for key, (id, _exists) in conditional.items()}
        for entry, id, fresh in pending:
            try:
                new = self._version(plan, entry, id, fresh, identities, cache)
                if new is not None:
                    self._resources.guard_write(new)
            except outcomes.FhirError as error:
                raise fail(entry, error) from None
            if new is None:
                continue
            plan.writes.append(new)
            plan.write_entry.append(entry.index)
        return plan

    def _still_unmatched(self, plan: _Plan) -> None:
        """Each identity the plan creates still matches nothing (checked under its lock)."""
        for key in plan.locks:
            resource_type, query = key.split("?", 1)
            if self._resources.search_ids(resource_type, parse_query_string(resource_type, query), limit=1):
                raise VersionClaimed(f"{key} was created concurrently")

    def _post_identity(
        self, entry: Entry, conditional: dict[str, tuple[str, bool]], plan: _Plan
    ) -> tuple[str, bool]:
        """The id a create gets: a fresh one, or (ifNoneExist) the match, resolved once
        per identity however many entries ask for it."""
        if not entry.if_none_exist:
            return self._resources.new_id(), True
        key = self._identity_key(entry, entry.if_none_exist)
        if key not in conditional:
            matches = self._resources.search_ids(
                entry.resource_type, self._criteria(entry, entry.if_none_exist, "request.ifNoneExist")
            )
            if len(matches) > 1:
                raise outcomes.PreconditionFailed(
                    "ifNoneExist matched more than one resource", expression="request.ifNoneExist"
                )
            if matches:
                conditional[key] = (matches[0].id, True)
                plan.heads[f"{entry.resource_type}/{matches[0].id}"] = matches[0]  # no second read
            else:
                conditional[key] = (self._resources.new_id(), False)
                plan.locks.append(key)
                return conditional[key][0], True
        id, exists = conditional[key]
        plan.results[entry.index] = EntryResult(200 if exists else 201, created=not exists)
        plan.aliases[entry.index] = f"{entry.resource_type}/{id}"
        if exists:
            known = plan.heads.get(f"{entry.resource_type}/{id}")
            plan.results[entry.index].stored = known or self._resources.current(entry.resource_type, id)
        return id, True

    def _conditional_target(
        self, entry: Entry, conditional: dict[str, tuple[str, bool]], plan: _Plan
    ) -> tuple[str, bool] | None:
        """Conditional PUT/PATCH/DELETE: the one match, or (PUT) a new identity."""
        assert entry.query is not None
        key = self._identity_key(entry, entry.query)
        if key in conditional:
            return conditional[key][0], False
        matches = self._resources.search_ids(entry.resource_type, self._criteria(entry, entry.query))
        if len(matches) > 1:
            raise outcomes.PreconditionFailed(
                "The conditional URL matched more than one resource", expression="request.url"
            )
        if matches:
            conditional[key] = (matches[0].id, True)
            plan.heads[f"{entry.resource_type}/{matches[0].id}"] = matches[0]  # no second read
            return matches[0].id, False
        if entry.method == "DELETE":
            plan.results[entry.index] = EntryResult(204)
            return None
        if entry.method == "PATCH":
            raise outcomes.NotFound("The conditional PATCH matched nothing", expression="request.url")
        given = entry.resource.get("id") if isinstance(entry.resource, dict) else None
        if given:
            check_id(str(given))
        id = str(given) if given else self._resources.new_id()
        conditional[key] = (id, False)
        plan.locks.append(key)
        return id, False

    def _version(
        self,
        plan: _Plan,
        entry: Entry,
        id: str,
        fresh: bool,
        identities: dict[str, str],
        cache: dict[str, str],
    ) -> NewVersion | None:
        """The version an entry writes (None when it changes nothing), with its result."""
        service, resource_type = self._resources, entry.resource_type
        known = plan.heads.get(f"{resource_type}/{id}")
        head = None if fresh else (known if known is not None else service.current(resource_type, id))
        service.guard_existing(resource_type, id, head, deleting=entry.method == "DELETE")
        if entry.if_match is not None and (head is None or head.version != entry.if_match):
            raise outcomes.PreconditionFailed(
                f'ifMatch W/"{entry.if_match}" does not match', expression="request"
            )
        if entry.method == "DELETE":
            if head is None or head.deleted:
                entry_result = EntryResult(204)
                plan.results[entry.index] = entry_result
                return None
            plan.results[entry.index] = EntryResult(204)
            return service.new_version(resource_type, id, head, None, "DELETE")
        if entry.method == "PATCH":
            if head is None or head.deleted or head.resource is None:
                raise outcomes.NotFound(f"{resource_type}/{id} is not known")
            try:
                body = jsonpatch.JsonPatch(patch_operations(entry)).apply(head.resource)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
                raise outcomes.Unprocessable(f"JSON Patch could not be applied: {exc}") from exc
        else:
            body = entry.resource
            if entry.if_none_match == "*" and head is not None and not head.deleted:
                raise outcomes.PreconditionFailed(f"{resource_type}/{id} exists (ifNoneMatch *)")
        if not isinstance(body, dict):
            raise outcomes.InvalidRequest("The entry needs a resource", expression="resource")
        rewritten = self._rewrite(body, identities, cache)
        rewritten["id"] = id
        checked = service.checked_body(resource_type, rewritten)
        if head is not None and not head.deleted and _same_content(head.resource, checked):
            plan.results[entry.index] = EntryResult(200, stored=head)
            return None  # a re-sent update: no new version
        plan.results[entry.index] = EntryResult(
            201 if head is None or head.deleted else 200, created=head is None
        )
        return service.new_version(resource_type, id, head, checked, entry.method, fresh=fresh)

    # -- references ----------------------------------------------------------------------

    def _rewrite(self, value: Any, identities: dict[str, str], cache: dict[str, str]) -> Any:
        """Replace references to bundle identities (``urn:uuid:``, ``urn:oid:``, any
        fullUrl) and conditional references, wherever they sit in the resource."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "reference" and isinstance(item, str):
                    out[key] = self._resolve(item, identities, cache)
                elif key == "div" and isinstance(item, str) and "urn:" in item:
                    out[key] = _rewrite_narrative(item, identities)
                else:
                    out[key] = self._rewrite(item, identities, cache)
            return out
        if isinstance(value, list):
            return [self._rewrite(item, identities, cache) for item in value]
        return value

    def _resolve(self, reference: str, identities: dict[str, str], cache: dict[str, str]) -> str:
        if reference in identities:
            return identities[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            raise outcomes.InvalidRequest(
                f"Reference '{reference}' names no entry of this Bundle", expression="resource"
            )
        if _CONDITIONAL_REFERENCE.match(reference):
            resource_type, query = reference.split("?", 1)
            key = _normalized(resource_type, query)
            if key not in cache:
                check_type(resource_type)
                matches = self._resources.search_ids(
                    resource_type, parse_query_string(resource_type, query, strict=True)
                )
                if len(matches) != 1:
                    found = "no resource" if not matches else "more than one resource"
                    raise outcomes.PreconditionFailed(
                        f"Conditional reference '{reference}' matched {found}; it must match exactly one",
                        expression="resource",
                    )
                cache[key] = f"{resource_type}/{matches[0].id}"
            return cache[key]
        return reference

    # -- helpers -------------------------------------------------------------------------

    def _criteria(self, entry: Entry, query: str, where: str = "request.url") -> Any:
        if not query.strip():
            raise outcomes.InvalidRequest("Conditional operations need search criteria", expression=where)
        return parse_query_string(entry.resource_type, query, strict=True)

    @staticmethod
    def _identity_key(entry: Entry, query: str) -> str:
        return _normalized(entry.resource_type, query)

    @staticmethod
    def _id(entry: Entry) -> str:
        if entry.id is None:
            raise outcomes.InvalidRequest(
                f"{entry.method} needs Type/id in request.url", expression="request.url"
            )
        return entry.id


def _normalized(resource_type: str, query: str) -> str:
    """One conditional identity, however its criteria are ordered or escaped."""
    return f"{resource_type}?{urlencode(sorted(parse_qsl(query, keep_blank_values=True)))}"


def _written(result: WriteResult) -> EntryResult:
    return EntryResult(201 if result.created else 200, stored=result.stored, created=result.created)


def _same_content(stored: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    if stored is None:
        return False

    def strip(resource: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
        }
        return {**resource, "meta": meta} if meta else {k: v for k, v in resource.items() if k != "meta"}

    return strip(stored) == strip(new)


def _rewrite_narrative(div: str, identities: dict[str, str]) -> str:
    for full_url, key in identities.items():
        if full_url.startswith("urn:") and full_url in div:
            div = div.replace(f'"{full_url}"', f'"{key}"')
    return div
