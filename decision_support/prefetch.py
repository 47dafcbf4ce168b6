"""Prefetch: render a service's templates, take what the client sent, fetch what is missing.

The client may send every key, some, none, a ``null`` (the query found nothing) or an
OperationOutcome (its fetch failed). Missing and failed keys are fetched here, from this
server's own search service when ``fhirServer`` is ours (or absent), else from
``fhirServer`` with the client's bearer token; when neither is possible the request is
answered 412, as the specification says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from decision_support.hooks import CdsRequest
from fhir_server import outcomes

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class Fetcher(Protocol):
    """Runs one prefetch query (``Type/id`` or ``Type?params``): a resource, a Bundle or None."""

    def __call__(self, query: str) -> dict[str, Any] | None: ...


def render(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill a template's tokens from the context; None when a token has no value."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match.group(1)
        if name.startswith("context."):
            found = context.get(name.removeprefix("context."))
            if isinstance(found, str) and found:
                return found
        elif name in _USER_TOKENS:
            kind, _, ident = str(context.get("userId", "")).partition("/")
            if kind == _USER_TOKENS[name] and ident:
                return ident
        missing = True
        return ""

    rendered = _TOKEN.sub(value, template)
    return None if missing else rendered


def _usable(value: Any) -> bool:
    """A prefetched value we can use: a resource or Bundle, or null (nothing found)."""
    if value is None:
        return True
    return isinstance(value, dict) and value.get("resourceType") not in (None, "OperationOutcome")


@dataclass
class Prefetched:
    """The data a service sees, and where each key came from (for the card's evidence)."""

    values: dict[str, dict[str, Any] | None]
    origin: dict[str, str] = field(default_factory=dict)

    def resources(self, key: str) -> list[dict[str, Any]]:
        """A key's resources: the resource itself, or a Bundle's entries (outcomes left out)."""
        value = self.values.get(key)
        if not value:
            return []
        if value.get("resourceType") != "Bundle":
            return [value]
        found = []
        for entry in value.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") != "OperationOutcome":
                found.append(resource)
        return found

    def resource(self, key: str) -> dict[str, Any] | None:
        found = self.resources(key)
        return found[0] if found else None


def resolve(
    templates: Mapping[str, str],
    request: CdsRequest,
    fetcher_for: Callable[[CdsRequest], Fetcher | None],
) -> Prefetched:
    """Every template's data: the client's where usable, fetched otherwise (412 if we cannot)."""
    result = Prefetched({})
    wanted: dict[str, str] = {}
    for key, template in templates.items():
        if key in request.prefetch and _usable(request.prefetch[key]):
            result.values[key] = request.prefetch[key]
            result.origin[key] = "prefetch"
            continue
        query = render(template, request.context)
        if query is None:  # e.g. {{userPractitionerId}} when a patient is the user
            result.values[key] = None
            result.origin[key] = "not applicable"
            continue
        wanted[key] = query
    if not wanted:
        return result
    fetch = fetcher_for(request)
    if fetch is None:
        raise outcomes.PreconditionFailed(
            f"Prefetch is missing {sorted(wanted)} and this service cannot fetch it: "
            "fhirServer is another server and no fhirAuthorization was sent"
        )
    for key, query in wanted.items():
        result.values[key] = fetch(query)
        result.origin[key] = "fetched"
    return result
