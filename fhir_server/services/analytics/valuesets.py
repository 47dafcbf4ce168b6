"""Value sets as code selections: an inline ValueSet or one stored on this server.

Uses ``expansion.contains`` when the ValueSet has an expansion, otherwise
``compose.include`` (listed concepts, or a whole code system). Filters, excludes and
imported value sets would need a terminology server: they are refused (400), not
silently ignored.
"""

from __future__ import annotations

from typing import Any

from fhir_server import outcomes
from fhir_server.search.request import parse
from fhir_server.services.analytics.selection import Codes
from fhir_server.services.resources import ResourceService


def _contains(items: list[dict[str, Any]], codes: Codes) -> None:
    for item in items:
        if item.get("system") and item.get("code"):
            codes.pairs.add((item["system"], item["code"]))
        _contains(item.get("contains") or [], codes)


def codes_of(value_set: dict[str, Any]) -> Codes:
    if value_set.get("resourceType") != "ValueSet":
        raise outcomes.InvalidRequest("valueSet must be a ValueSet", expression="valueSet")
    codes = Codes()
    expansion = value_set.get("expansion") or {}
    if expansion.get("contains"):
        _contains(expansion["contains"], codes)
        return codes
    compose = value_set.get("compose") or {}
    if compose.get("exclude"):
        raise outcomes.InvalidRequest("ValueSet.compose.exclude is not supported", expression="valueSet")
    for include in compose.get("include") or ():
        system = include.get("system")
        if include.get("filter") or include.get("valueSet") or not system:
            raise outcomes.InvalidRequest(
                "Only value sets that list concepts or whole code systems are supported "
                "(no filters, no imported value sets)",
                expression="valueSet",
            )
        concepts = include.get("concept") or []
        if concepts:
            codes.pairs.update((system, c["code"]) for c in concepts if c.get("code"))
        else:
            codes.systems.add(system)
    if not codes:
        raise outcomes.InvalidRequest("The ValueSet selects no codes", expression="valueSet")
    return codes


def stored_value_set(resources: ResourceService, canonical: str) -> dict[str, Any]:
    url, _, version = canonical.partition("|")
    pairs = [("url", url)] + ([("version", version)] if version else [])
    found = resources.search(parse("ValueSet", pairs, strict=True)).matches
    if not found or found[0].resource is None:
        raise outcomes.NotFound(f"No ValueSet with url '{canonical}' on this server", expression="valueSet")
    return found[0].resource
