"""Deterministic identities: identifier systems, search URLs and ``urn:uuid`` fullUrls.

Re-sending a message must change nothing and a later message about the same thing must
update it, so every resource is addressed by what identifies it in the real world, never by
anything random:

* **Identifier systems** come from the assigning authority (HD or EI components):
  an ISO OID universal id -> ``urn:oid:<oid>``; a UUID -> ``urn:uuid:<uuid>``; a URI
  universal id -> itself; otherwise the namespace id (or a non-ISO universal id) ->
  ``urn:id:<name>`` (percent-encoded). Without any authority the caller's fallback
  namespace is used (the sending facility, else the sending application).
* **fullUrls** are ``urn:uuid:`` + uuid5 of ``Type|system|value`` under one fixed namespace,
  so the same identity maps to the same fullUrl in every bundle.
* **Search URLs** for conditional operations escape FHIR's search specials (``\\ , $ |``)
  in values and percent-encode what a URL cannot hold.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-1a2b3c4d5e6f")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_BLANKS = re.compile(r"\s+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def local_system(name: str) -> str:
    """``urn:id:<name>``: the system for identifiers scoped by a local namespace name.

    Blanks become ``_`` (a FHIR uri holds no whitespace); nothing else is changed, so the
    system stays readable and search URLs escape it once (:func:`identifier_query`).
    """
    return "urn:id:" + _BLANKS.sub("_", name.strip())


def authority_system(namespace: str, universal_id: str = "", universal_type: str = "") -> str:
    """The identifier system for an assigning authority (HD: namespace, universal id, its type)."""
    uid = universal_id.strip()
    kind = universal_type.strip().upper()
    if uid:
        if kind in ("ISO", "") and _OID.fullmatch(uid):
            return f"urn:oid:{uid}"
        if kind == "UUID" or _UUID.fullmatch(uid):
            return f"urn:uuid:{uid.lower()}"
        if kind in ("URI", "URL") or uid.startswith(("http://", "https://", "urn:")):
            return uid
    if namespace.strip():
        return local_system(namespace)
    if uid:
        return local_system(uid)
    return ""


def full_url(resource_type: str, system: str, value: str) -> str:
    """The ``urn:uuid`` fullUrl of the resource with this identity (deterministic)."""
    return "urn:uuid:" + str(uuid.uuid5(NAMESPACE, f"{resource_type}|{system}|{value}"))


def resource_id(kind: str, *parts: str) -> str:
    """A deterministic resource id (uuid5) for resources without a business identifier."""
    return str(uuid.uuid5(NAMESPACE, "|".join((kind, *parts))))


def _escape_search(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,").replace("$", "\\$")


def identifier_query(system: str, value: str) -> str:
    """``identifier=<system>|<value>`` for a conditional URL, escaped and percent-encoded."""
    token = f"{_escape_search(system)}|{_escape_search(value)}" if system else _escape_search(value)
    return "identifier=" + quote(token, safe="|:/.-_~\\")
