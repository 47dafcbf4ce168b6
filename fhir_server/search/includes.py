"""``_include`` and ``_revinclude``: parse them, and find what they pull in.

``_include=Type:param[:TargetType]`` follows the references the matches hold in
``param``; ``_revinclude=Type:param[:TargetType]`` finds resources of ``Type`` whose
``param`` points at a match. ``*`` stands for every reference parameter of the type;
``:iterate`` applies the same step to what was included, up to a fixed depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.registry import SearchParameterDef, search_parameters
from fhir_server import outcomes
from fhir_server.search.fhirpath import compile_expression, reference_type
from fhir_server.search.types.reference import _tail

MAX_ITERATIONS = 3


@dataclass(frozen=True)
class Include:
    source_type: str
    params: tuple[SearchParameterDef, ...]
    target_type: str | None
    reverse: bool
    iterate: bool


def parse_include(raw_name: str, value: str) -> Include:
    reverse = raw_name.startswith("_revinclude")
    iterate = raw_name.endswith(":iterate") or raw_name.endswith(":recurse")
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise outcomes.InvalidRequest(
            f"{raw_name} needs Type:parameter[:TargetType], got '{value}'", expression=raw_name
        )
    source_type, code = parts[0], parts[1]
    known = search_parameters().get(source_type)
    if known is None:
        raise outcomes.InvalidRequest(
            f"Unknown resource type '{source_type}' in {raw_name}", expression=raw_name
        )
    if code == "*":
        params = tuple(d for d in known.values() if d.type == "reference" and d.expression)
    elif code in known and known[code].type == "reference" and known[code].expression:
        params = (known[code],)
    else:
        raise outcomes.InvalidRequest(
            f"'{code}' is not a reference parameter of {source_type} ({raw_name})", expression=raw_name
        )
    target = parts[2] if len(parts) == 3 else None
    return Include(source_type, params, target, reverse, iterate)


def referenced(
    include: Include, resource_type: str, resource: dict, base_url: str = ""
) -> list[tuple[str, str]]:
    """(type, id) pairs that ``resource`` points at through the include's parameters
    (absolute references to ``base_url``, this server, count as local)."""
    local_prefix = base_url.rstrip("/") + "/" if base_url else None
    if include.reverse or resource_type != include.source_type:
        return []
    found = []
    for definition in include.params:
        for node in compile_expression(definition.expression or "").evaluate(resource_type, resource):
            if not isinstance(node, dict) or not isinstance(node.get("reference"), str):
                continue
            ref = node["reference"]
            if local_prefix and ref.startswith(local_prefix):
                ref = ref[len(local_prefix) :]
            if ref.startswith("#") or "://" in ref or ref.startswith("urn:"):
                continue
            target_type, id = _tail(ref.split("?")[0])
            target_type = target_type or reference_type(node)
            if target_type and (include.target_type is None or include.target_type == target_type):
                found.append((target_type, id))
    return found
