"""``_summary`` and ``_elements``: subsets of a resource, marked SUBSETTED as the spec asks."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from fhir_server import outcomes

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
SUMMARY_MODES = ("true", "false", "text", "data", "count")
_ALWAYS = ("resourceType", "id", "meta")


@lru_cache(maxsize=1)
def _summary_elements() -> dict[str, tuple[str, ...]]:
    data = resources.files("conformance").joinpath("definitions/summary-elements.json").read_text()
    return {k: tuple(v) for k, v in json.loads(data).items()}


def check_summary(mode: str | None) -> None:
    if mode is not None and mode not in SUMMARY_MODES:
        raise outcomes.InvalidRequest(
            f"_summary must be one of {', '.join(SUMMARY_MODES)}", expression="_summary"
        )


def _keep(resource: dict[str, Any], wanted: set[str], choice_prefixes: tuple[str, ...]) -> dict[str, Any]:
    kept = {
        k: v
        for k, v in resource.items()
        if k in wanted or k in _ALWAYS or k.startswith(choice_prefixes) or k.lstrip("_") in wanted
    }
    meta = dict(kept.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    kept["meta"] = meta
    return kept


def apply_summary(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    if mode in (None, "false"):
        return resource
    if mode == "data":
        stripped = {k: v for k, v in resource.items() if k != "text"}
        return _keep(stripped, set(stripped), ())
    if mode == "text":
        return _keep(resource, {"text", *_mandatory(resource["resourceType"])}, ())
    names = _summary_elements().get(resource["resourceType"], ())
    plain = {n for n in names if not n.endswith("[x]")}
    choices = tuple(n[:-3] for n in names if n.endswith("[x]"))
    return _keep(resource, plain, choices)


def _mandatory(resource_type: str) -> set[str]:
    # summary-elements.json lists summary and mandatory elements together; for
    # _summary=text the spec keeps only text, id, meta and mandatory top-level elements.
    return {"status"} & set(_summary_elements().get(resource_type, ()))


def apply_elements(resource: dict[str, Any], elements: str | None) -> dict[str, Any]:
    if not elements:
        return resource
    wanted = {e.strip().split(".")[-1] for e in elements.split(",") if e.strip()}
    return _keep(resource, wanted, ())
