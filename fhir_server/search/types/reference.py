"""Reference parameters: ``id``, ``Type/id``, absolute URLs, and the ``:Type`` modifier."""

from __future__ import annotations

from typing import Any

from fhir_server.search.fhirpath import reference_type

MODIFIERS: tuple[str, ...] = ("missing",)


def _tail(reference: str) -> tuple[str | None, str]:
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1]


def matches(node: Any, value: str, modifier: str | None) -> bool:
    if isinstance(node, str):  # canonical references are matched as URIs
        return node == value
    if not isinstance(node, dict) or not isinstance(node.get("reference"), str):
        return False
    reference = node["reference"]
    if value.startswith(("http://", "https://")) and reference == value:
        return True
    wanted_type, wanted_id = _tail(value)
    if modifier and modifier not in MODIFIERS:
        wanted_type = modifier
    actual_type, actual_id = _tail(reference)
    if actual_id != wanted_id:
        return False
    return wanted_type is None or wanted_type == (actual_type or reference_type(node))


# -- index and query -------------------------------------------------------------------
# Key kinds: "r" Type/id (local references), "i" id alone, "u" absolute or canonical URL.


def index(code: str, nodes: list[Any], out: Any, base_url: str = "") -> None:
    """``base_url`` is this server's FHIR base: absolute references to it are local."""
    local_prefix = base_url.rstrip("/") + "/" if base_url else None
    for node in nodes:
        if isinstance(node, str):  # canonical
            out.add_key(code, "u", node)
            continue
        if not isinstance(node, dict) or not isinstance(node.get("reference"), str):
            continue
        reference = node["reference"]
        if reference.startswith("#"):
            continue
        if local_prefix and reference.startswith(local_prefix):
            out.add_key(code, "u", reference)  # also findable by the full URL
            reference = reference[len(local_prefix) :]
        if "://" in reference or reference.startswith("urn:"):
            out.add_key(code, "u", reference)
            continue
        resource_type, id = _tail(reference.split("?")[0])
        resource_type = resource_type or reference_type(node)
        if resource_type:
            out.add_key(code, "r", f"{resource_type}/{id}")
            out.sort_value(code, f"{resource_type}/{id}")
        out.add_key(code, "i", id)


def criterion(code: str, value: str, modifier: str | None, base_url: str = "") -> dict[str, Any]:
    from fhir_server.search.index import key

    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]  # the stored local form
    if "://" in value or value.startswith("urn:"):
        return {"ix": key(code, "u", value)}
    resource_type, id = _tail(value)
    if modifier and modifier not in MODIFIERS:
        resource_type = modifier
    if resource_type:
        return {"ix": key(code, "r", f"{resource_type}/{id}")}
    return {"ix": key(code, "i", id)}
