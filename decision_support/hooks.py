"""CDS Hooks 2.0 requests: the hooks we answer, their context fields, and the one parser.

A malformed request is an :class:`~fhir_server.outcomes.InvalidRequest` (400, rendered as a
JSON error by the API). Fields the 2.0 specification does not name (3.0 additions, extensions)
are tolerated and ignored, so newer clients keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fhir_server import outcomes

# Hook -> (required context fields, optional context fields), from the hooks' definitions.
HOOK_CONTEXT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patient-view": (("userId", "patientId"), ("encounterId",)),
    "order-select": (("userId", "patientId", "selections", "draftOrders"), ("encounterId",)),
    "order-sign": (("userId", "patientId", "draftOrders"), ("encounterId",)),
    "encounter-discharge": (("userId", "patientId", "encounterId"), ()),
}
_USER_TYPES = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class FhirAuthorization:
    """The access token the client lends us for its FHIR server (never logged or stored)."""

    access_token: str
    token_type: str
    scope: str
    subject: str
    expires_in: int | None = None


@dataclass(frozen=True)
class CdsRequest:
    hook: str
    hook_instance: str
    context: dict[str, Any]
    fhir_server: str | None = None
    fhir_authorization: FhirAuthorization | None = None
    prefetch: dict[str, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return str(self.context["patientId"])


def _bad(message: str, where: str) -> outcomes.InvalidRequest:
    return outcomes.InvalidRequest(message, expression=where)


def _text(body: dict[str, Any], name: str, where: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"'{name}' must be a non-empty string", where)
    return value


def _check_context(hook: str, context: dict[str, Any]) -> None:
    required, _optional = HOOK_CONTEXT[hook]
    for name in required:
        if name not in context or context[name] is None:
            raise _bad(f"context.{name} is required by the {hook} hook", f"context.{name}")
    for name in ("patientId", "encounterId"):
        if name in context and (not isinstance(context[name], str) or not _ID.match(context[name])):
            raise _bad(f"context.{name} must be a FHIR id", f"context.{name}")
    user = context.get("userId")
    if not isinstance(user, str) or user.split("/", 1)[0] not in _USER_TYPES or "/" not in user:
        raise _bad("context.userId must be a reference such as Practitioner/123", "context.userId")
    if "draftOrders" in required:
        orders = context["draftOrders"]
        if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
            raise _bad("context.draftOrders must be a FHIR Bundle", "context.draftOrders")
        if not isinstance(orders.get("entry", []), list):
            raise _bad("context.draftOrders.entry must be a list", "context.draftOrders.entry")
    if "selections" in required:
        selections = context["selections"]
        if not isinstance(selections, list) or not selections:
            raise _bad("context.selections must be a non-empty list", "context.selections")
        if not all(isinstance(s, str) and "/" in s for s in selections):
            raise _bad(
                "context.selections must hold references such as MedicationRequest/1", "context.selections"
            )


def _authorization(raw: Any) -> FhirAuthorization | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("fhirAuthorization must be an object", "fhirAuthorization")
    token = _text(raw, "access_token", "fhirAuthorization.access_token")
    token_type = _text(raw, "token_type", "fhirAuthorization.token_type")
    if str(token_type).lower() != "bearer":
        raise _bad("fhirAuthorization.token_type must be Bearer", "fhirAuthorization.token_type")
    scope = _text(raw, "scope", "fhirAuthorization.scope")
    subject = _text(raw, "subject", "fhirAuthorization.subject")
    expires = raw.get("expires_in")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise _bad("fhirAuthorization.expires_in must be an integer", "fhirAuthorization.expires_in")
    return FhirAuthorization(str(token), "Bearer", str(scope), str(subject), expires)


def parse_request(body: Any, *, service_hook: str) -> CdsRequest:
    """Check a CDS request body against the specification and the service's hook."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object", "$")
    hook = _text(body, "hook", "hook")
    if hook != service_hook:
        raise _bad(f"This service answers the {service_hook} hook, not {hook}", "hook")
    instance = _text(body, "hookInstance", "hookInstance")
    if not _UUID.match(str(instance)):
        raise _bad("hookInstance must be a UUID", "hookInstance")
    server = _text(body, "fhirServer", "fhirServer", required=False)
    if server is not None and not server.startswith(("http://", "https://")):
        raise _bad("fhirServer must be an absolute http(s) URL", "fhirServer")
    auth = _authorization(body.get("fhirAuthorization"))
    if auth is not None and server is None:
        raise _bad("fhirAuthorization needs fhirServer", "fhirAuthorization")
    context = body.get("context")
    if not isinstance(context, dict):
        raise _bad("context must be an object", "context")
    _check_context(str(hook), context)
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise _bad("prefetch must be an object", "prefetch")
    return CdsRequest(str(hook), str(instance), context, server, auth, prefetch or {})
