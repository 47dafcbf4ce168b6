"""Pure, cached loaders for the official FHIR R4 (4.0.1) definitions in ``definitions/``.

* :func:`resource_types` - the 146 concrete R4 resource types (``resource-types.json``, generated
  by ``conformance/tools/extract_resource_types.py``).
* :func:`search_parameters` - the R4 SearchParameters per resource type, including the ones every
  type inherits from Resource (``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``,
  ``_source``, ``_content``, ``_query``) and DomainResource (``_text``). Parameters shared by
  several types (``clinical-patient``...) carry, per type, only the part of the FHIRPath union that
  applies to that type. Entries that are not HL7 R4 4.0.1 definitions (Medplum ships one R5
  ``DeviceDefinition-classification``) are left out.
* :func:`patient_compartment` - resource type -> the parameters that put it in a Patient's
  compartment.

Everything is read once (``lru_cache``); callers must treat the results as read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

FHIR_VERSION = "4.0.1"
HL7_SEARCH_PARAMETER = "http://hl7.org/fhir/SearchParameter/"

# The SearchModifierCode codes R4 allows per parameter type (search.html, "Modifiers"); the
# official SearchParameter resources leave ``modifier`` empty, so these come from the spec table.
# "type" stands for the ``:[type]`` modifier of references and "ofType" for ``:of-type``.
MODIFIERS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "number": ("missing",),
    "date": ("missing",),
    "quantity": ("missing",),
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "text", "not", "above", "below", "in", "not-in", "ofType"),
    "reference": ("missing", "type", "identifier", "above", "below"),
    "uri": ("missing", "above", "below"),
    "composite": (),
    "special": (),
}


@dataclass(frozen=True)
class SearchParameterComponent:
    """One part of a composite parameter: the component's SearchParameter url and the FHIRPath
    relative to the composite's expression."""

    definition: str
    expression: str


@dataclass(frozen=True)
class SearchParameterDef:
    """One R4 SearchParameter as it applies to one resource type."""

    code: str
    type: str
    expression: str | None
    url: str
    base: tuple[str, ...]
    target: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    components: tuple[SearchParameterComponent, ...] = ()
    xpath_usage: str = "normal"


def _load(name: str) -> Any:
    return orjson.loads(resources.files("conformance").joinpath(f"definitions/{name}").read_bytes())


@lru_cache(maxsize=1)
def _resource_type_document() -> dict[str, Any]:
    document: dict[str, Any] = _load("resource-types.json")
    return document


@lru_cache(maxsize=1)
def resource_types() -> frozenset[str]:
    """The concrete resource types of FHIR R4 4.0.1 (no abstract types, no vendor types)."""
    return frozenset(_resource_type_document()["resourceTypes"])


@lru_cache(maxsize=1)
def domain_resource_types() -> frozenset[str]:
    """The resource types derived from DomainResource (all but Binary, Bundle and Parameters)."""
    return resource_types() - frozenset(_resource_type_document()["nonDomainResourceTypes"])


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on its top-level ``|`` (not inside parentheses or strings)."""
    return list(_split_union(expression))


@lru_cache(maxsize=4096)
def _split_union(expression: str) -> tuple[str, ...]:
    terms: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(expression):
        char = expression[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            terms.append(expression[start:i].strip())
            start = i + 1
        i += 1
    terms.append(expression[start:].strip())
    return tuple(t for t in terms if t)


def _term_type(term: str) -> str:
    head = term.lstrip("( ")
    end = 0
    while end < len(head) and (head[end].isalnum() or head[end] == "_"):
        end += 1
    return head[:end]


def expression_for(expression: str | None, resource_type: str) -> str | None:
    """The part of a (possibly multi-type) expression that applies to ``resource_type``."""
    if not expression:
        return expression
    terms = split_union(expression)
    if len(terms) < 2:
        return expression
    mine = [t for t in terms if _term_type(t) == resource_type]
    return " | ".join(mine) if mine else expression


def _official(resource: dict[str, Any]) -> bool:
    return (
        resource.get("resourceType") == "SearchParameter"
        and resource.get("version") == FHIR_VERSION
        and str(resource.get("url", "")).startswith(HL7_SEARCH_PARAMETER)
    )


def _definition(resource: dict[str, Any], expression: str | None) -> SearchParameterDef:
    return SearchParameterDef(
        code=resource["code"],
        type=resource["type"],
        expression=expression,
        url=resource["url"],
        base=tuple(resource.get("base", ())),
        target=tuple(resource.get("target", ())),
        modifiers=tuple(resource.get("modifier", ())) or MODIFIERS_BY_TYPE.get(resource["type"], ()),
        comparators=tuple(resource.get("comparator", ())),
        components=tuple(
            SearchParameterComponent(c["definition"], c["expression"]) for c in resource.get("component", ())
        ),
        xpath_usage=resource.get("xpathUsage", "normal"),
    )


def _official_search_parameters() -> Iterator[dict[str, Any]]:
    for entry in _load("search-parameters.json").get("entry", ()):
        resource = entry.get("resource", {})
        if _official(resource):
            yield resource


def _applies_to(bases: Iterable[str]) -> Iterator[str]:
    known = resource_types()
    for base in bases:
        if base == "Resource":
            yield from sorted(known)
        elif base == "DomainResource":
            yield from sorted(domain_resource_types())
        elif base in known:
            yield base


@lru_cache(maxsize=1)
def search_parameters() -> dict[str, dict[str, SearchParameterDef]]:
    """Resource type -> parameter code -> definition, for every official R4 resource type."""
    by_type: dict[str, dict[str, SearchParameterDef]] = {t: {} for t in sorted(resource_types())}
    for resource in _official_search_parameters():
        shared = _definition(resource, resource.get("expression"))
        for resource_type in _applies_to(resource.get("base", ())):
            expression = expression_for(shared.expression, resource_type)
            definition = shared if expression == shared.expression else _definition(resource, expression)
            by_type[resource_type].setdefault(definition.code, definition)
    return by_type


@lru_cache(maxsize=1)
def search_parameters_by_url() -> dict[str, SearchParameterDef]:
    """Canonical url -> definition (whole expression), e.g. to resolve composite components."""
    return {r["url"]: _definition(r, r.get("expression")) for r in _official_search_parameters()}


@lru_cache(maxsize=1)
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that link it to the Patient compartment.

    Types with no such parameter (ActivityDefinition, Binary...) are absent.
    """
    known = resource_types()
    return {
        r["code"]: tuple(r["param"])
        for r in _load("compartmentdefinition-patient.json").get("resource", ())
        if r.get("param") and r["code"] in known
    }


@lru_cache(maxsize=1)
def implicit_code_systems() -> dict[str, str]:
    """Element path (``Patient.gender``) -> the code system its ``code`` values belong to,
    for elements with a required binding to a value set drawn from one code system."""
    data = _load("required-bindings.json")
    systems = data.get("systems", {})
    return {path: systems[url] for path, url in data.get("bindings", {}).items() if url in systems}
