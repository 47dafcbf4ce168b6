"""The listener's processing: a stored HL7 message → FHIR resources, one atomic write.

The message goes through ``mappings`` (pure: message in, transaction Bundle out) and
the Bundle through the same BundleService as ``POST /fhir``, so an HL7 ADT and a FHIR
PUT of the same patient end in the same code, and a message's resources become visible
all together or not at all. Re-sent messages change nothing: the mappings derive every
identity from the message and the service skips updates whose content is unchanged.

ADT^A40 (merge) needs one step a Bundle cannot express: everything that references the
retired patient is re-pointed to the survivor (a second transaction).
"""

from __future__ import annotations

import threading
from typing import Any

from fhir_server import outcomes
from fhir_server.repository.base import StoreError
from fhir_server.repository.mongo import MongoRepository
from fhir_server.search.request import parse_query_string
from fhir_server.services.bundle_entries import Entry, EntryResult
from fhir_server.services.bundles import BundleService
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings
from hl7_listener.handler import ProcessResult
from mappings import to_bundle
from mappings.context import Options
from mappings.errors import APPLICATION_INTERNAL_ERROR, MappingError
from mappings.message import Message

MERGE_BATCH = 1000
# Records about what happened (not clinical facts of the patient) keep naming whom they named.
_NOT_MOVED = frozenset({"Patient", "Provenance", "AuditEvent"})


class FhirProcessing:
    """Callable as the handler's ``process``; thread-safe (one per listener process)."""

    def __init__(self, settings: Settings, repository: Any | None = None) -> None:
        if repository is None:
            assert settings.mongodb_uri
            repository = MongoRepository(settings.mongodb_uri, settings.database)
        self._resources = ResourceService(repository, base_url=settings.fhir_base)
        self._bundles = BundleService(
            self._resources, max_entries=settings.max_bundle_entries, base_url=settings.fhir_base
        )
        self._timezone = settings.hl7_timezone

    def __call__(self, message: Message, record: Any) -> ProcessResult:
        bundle = to_bundle(message, Options(timezone=self._timezone, inbox_id=getattr(record, "id", None)))
        self._keep_location_history(bundle)
        entries = self._entries(bundle)
        results = self._commit(entries)
        produced = [r.stored.key for r in results if r.stored is not None]
        if message.message_type == "ADT" and message.trigger_event == "A40":
            self._repoint_merged(entries, results)
        return ProcessResult(tuple(dict.fromkeys(produced)))

    def _keep_location_history(self, bundle: dict[str, Any]) -> None:
        """An ADT message names the current (and at most the prior) location; the visit's
        earlier locations stay on the Encounter, completed, ahead of what the message says."""
        by_url = {e.get("fullUrl"): e for e in bundle.get("entry") or []}
        for entry in bundle.get("entry") or []:
            resource, request = entry.get("resource") or {}, entry.get("request") or {}
            if resource.get("resourceType") != "Encounter" or "?" not in str(request.get("url", "")):
                continue
            current = self._match("Encounter", str(request["url"]).split("?", 1)[1])
            if current is None or current.resource is None:
                continue
            named = {
                self._resolved(loc.get("location", {}).get("reference"), by_url)
                for loc in resource.get("location") or []
            }
            earlier = [
                {**loc, "status": "completed"}
                for loc in current.resource.get("location") or []
                if loc.get("location", {}).get("reference") not in named
            ]
            if earlier:
                resource["location"] = earlier + list(resource.get("location") or [])

    def _resolved(self, reference: Any, by_url: dict[Any, dict[str, Any]]) -> str | None:
        """``Location/<id>`` for a Bundle-internal reference to a location that exists."""
        target = by_url.get(reference)
        if target is None:
            return str(reference) if reference else None
        request = target.get("request") or {}
        query = request.get("ifNoneExist") or str(request.get("url", "")).partition("?")[2]
        resource_type = (target.get("resource") or {}).get("resourceType")
        found = self._match(str(resource_type), str(query)) if query and resource_type else None
        return None if found is None else found.key

    def _match(self, resource_type: str, query: str) -> Any:
        matches = self._resources.search_ids(resource_type, parse_query_string(resource_type, query))
        return matches[0] if len(matches) == 1 else None

    def _entries(self, bundle: dict[str, Any]) -> list[Entry]:
        try:
            return self._bundles.entries(bundle, "transaction")[1]
        except outcomes.FhirError as error:
            raise _mapping_error(error) from error

    def _commit(self, entries: list[Entry]) -> list[EntryResult]:
        try:
            return self._bundles.transaction(entries, _no_reads)
        except outcomes.StoreUnavailable as error:
            raise StoreError(error.diagnostics) from error  # stored, not processed: retried later
        except outcomes.FhirError as error:
            raise _mapping_error(error) from error

    def _repoint_merged(self, entries: list[Entry], results: list[EntryResult]) -> None:
        """Move references from the retired patient (the entry linked ``replaced-by``) to
        the survivor, as one transaction per batch of referring resources."""
        retired = survivor = None
        for entry, result in zip(entries, results, strict=True):
            resource = entry.resource if isinstance(entry.resource, dict) else {}
            if resource.get("resourceType") != "Patient" or result.stored is None:
                continue
            links = [link.get("type") for link in resource.get("link") or []]
            if "replaced-by" in links:
                retired = result.stored.id
            elif "replaces" in links:
                survivor = result.stored.id
        if retired is None or survivor is None or retired == survivor:
            return
        old, new = f"Patient/{retired}", f"Patient/{survivor}"
        compartment = self._resources.everything(retired, offset=0, count=MERGE_BATCH).matches
        moved = [
            {
                "resource": _replace_reference(stored.resource, old, new),
                "request": {"method": "PUT", "url": f"{stored.resource_type}/{stored.id}"},
            }
            for stored in compartment
            if stored.resource_type not in _NOT_MOVED and stored.resource is not None
        ]
        if moved:
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": moved}
            self._commit(self._bundles.entries(bundle)[1])


def _no_reads(entry: Entry) -> EntryResult:
    raise outcomes.InvalidRequest("HL7 mappings do not read", expression="request")


def _mapping_error(error: outcomes.FhirError) -> MappingError:
    where = error.issues[0].expression[0] if error.issues and error.issues[0].expression else ""
    detail = f" ({where})" if where else ""
    return MappingError(
        APPLICATION_INTERNAL_ERROR, f"the mapped resources were refused{detail}: {error.diagnostics}"
    )


def _replace_reference(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {
            k: (new if k == "reference" and v == old else _replace_reference(v, old, new))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_reference(item, old, new) for item in value]
    return value


_default: FhirProcessing | None = None
_default_lock = threading.Lock()


def process(message: Message, record: Any) -> ProcessResult:
    """The default processing (``hl7_listener.processing:process``), configured from the
    environment on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FhirProcessing(Settings.from_env())
    return _default(message, record)
