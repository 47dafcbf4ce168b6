"""Build the server's R4 CapabilityStatement from what the code implements.

:func:`build_capability_statement` is pure: the caller passes the interactions, the search
parameters its engine evaluates and the behaviours it has (:class:`CapabilityFeatures`), and the
statement claims exactly those, nothing more. Per-resource flags that only make sense with an
interaction are reported only when that interaction is passed (``conditionalCreate`` needs
``create``, ``conditionalUpdate`` and ``updateCreate`` need ``update``, ``conditionalDelete`` needs
``delete``, ``readHistory`` needs ``vread``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conformance.registry import FHIR_VERSION, SearchParameterDef

TYPE_INTERACTIONS = frozenset(
    {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    }
)
SYSTEM_INTERACTIONS = frozenset({"transaction", "batch", "search-system", "history-system"})
VERSIONING = frozenset({"no-version", "versioned", "versioned-update"})
CONDITIONAL_DELETE = frozenset({"not-supported", "single", "multiple"})
CONDITIONAL_READ = frozenset({"not-supported", "modified-since", "not-match", "full-support"})
REFERENCE_POLICY = frozenset({"literal", "logical", "resolves", "enforced", "local"})
PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True)
class CapabilityFeatures:
    """Behaviours reported for every resource type. Defaults claim nothing."""

    versioning: str = "no-version"
    read_history: bool = False
    update_create: bool = False
    conditional_create: bool = False
    conditional_update: bool = False
    conditional_delete: str = "not-supported"
    conditional_read: str = "not-supported"
    reference_policy: tuple[str, ...] = ()
    search_include: tuple[str, ...] = ()
    search_rev_include: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check("versioning", [self.versioning], VERSIONING)
        _check("conditional_delete", [self.conditional_delete], CONDITIONAL_DELETE)
        _check("conditional_read", [self.conditional_read], CONDITIONAL_READ)
        _check("reference_policy", self.reference_policy, REFERENCE_POLICY)


def _check(what: str, values: Sequence[str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} code(s) {unknown}; allowed: {sorted(allowed)}")


def _search_param(definition: SearchParameterDef) -> dict[str, Any]:
    return {"name": definition.code, "definition": definition.url, "type": definition.type}


def _resource(
    resource_type: str,
    interactions: Sequence[str],
    search_params: Sequence[SearchParameterDef] | None,
    features: CapabilityFeatures,
) -> dict[str, Any]:
    codes = list(dict.fromkeys(interactions))
    entry: dict[str, Any] = {
        "type": resource_type,
        "profile": PROFILE_BASE + resource_type,
        "interaction": [{"code": code} for code in codes],
        "versioning": features.versioning,
    }
    if "vread" in codes:
        entry["readHistory"] = features.read_history
    if "update" in codes:
        entry["updateCreate"] = features.update_create
        entry["conditionalUpdate"] = features.conditional_update
    if "create" in codes:
        entry["conditionalCreate"] = features.conditional_create
    if "read" in codes:
        entry["conditionalRead"] = features.conditional_read
    if "delete" in codes:
        entry["conditionalDelete"] = features.conditional_delete
    if features.reference_policy:
        entry["referencePolicy"] = list(features.reference_policy)
    if features.search_include:
        entry["searchInclude"] = list(features.search_include)
    if features.search_rev_include:
        entry["searchRevInclude"] = list(features.search_rev_include)
    if search_params:
        entry["searchParam"] = [_search_param(d) for d in search_params]
    return entry


def build_capability_statement(
    *,
    base_url: str,
    software_name: str,
    software_version: str,
    interactions: Mapping[str, Sequence[str]],
    system_interactions: Sequence[str],
    search_params: Mapping[str, Sequence[SearchParameterDef]] | None,
    formats: Sequence[str],
    patch_formats: Sequence[str],
    features: CapabilityFeatures,
    date: datetime | None = None,
    operations: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A CapabilityStatement (kind ``instance``) for the server at ``base_url``.

    ``interactions`` maps each supported resource type to its type/instance interaction codes;
    ``search_params`` maps a type to the parameters the search engine evaluates (``None``: none
    are listed). ``date`` defaults to now (UTC). ``operations`` lists (name, definition URL).
    """
    for resource_type, codes in interactions.items():
        _check(f"interaction for {resource_type}", codes, TYPE_INTERACTIONS)
    _check("system interaction", system_interactions, SYSTEM_INTERACTIONS)
    if not formats:
        raise ValueError("a CapabilityStatement needs at least one format")

    rest: dict[str, Any] = {"mode": "server"}
    resources = [
        _resource(t, interactions[t], (search_params or {}).get(t), features)
        for t in sorted(interactions)
        if interactions[t]
    ]
    if resources:
        rest["resource"] = resources
    if system_interactions:
        rest["interaction"] = [{"code": code} for code in dict.fromkeys(system_interactions)]
    if operations:  # (name, OperationDefinition canonical) of system-level operations
        rest["operation"] = [{"name": name, "definition": url} for name, url in operations]

    when = (date or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": when.isoformat().replace("+00:00", "Z"),
        "kind": "instance",
        "software": {"name": software_name, "version": software_version},
        "implementation": {
            "description": f"{software_name} FHIR R4 REST endpoint",
            "url": base_url.rstrip("/") + "/fhir",
        },
        "fhirVersion": FHIR_VERSION,
        "format": list(dict.fromkeys(formats)),
        "rest": [rest],
    }
    if patch_formats:
        statement["patchFormat"] = list(dict.fromkeys(patch_formats))
    return statement
