"""The R4 JSON schema engine of resource validation (see validation.py's docstring).

HL7's official R4 JSON schema checks the resource types fhir.resources' R4B models
lack or model differently, and the few R4B model elements that reject valid R4
content. It also holds the expression builder both engines share.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema

from fhir_server.outcomes import Issue
from fhir_server.services.validation_json import schema_definitions as _definitions

Loc = tuple[str | int, ...]


def expression(root: str, loc: Loc) -> str:
    parts = [root]
    for step in loc:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step != "root":
            parts.append("." + (step[1:] if step.startswith("_") else step))
    return "".join(parts)


# --------------------------------------------------------------------------- R4 JSON schema engine


@cache
def _validator(definition: str, prop: str | None = None) -> jsonschema.Draft6Validator:
    """A validator for one definition, or for one property of a definition."""
    target = (
        _definitions()[definition]["properties"][prop] if prop else {"$ref": f"#/definitions/{definition}"}
    )
    return jsonschema.Draft6Validator({**target, "definitions": _definitions()})


def schema_issues(resource_type: str, doc: dict[str, Any], root: str) -> list[Issue]:
    errors = _validator(resource_type).iter_errors(doc)
    return [issue for error in errors for issue in schema_issue(error, root, ())]


def schema_issue(error: jsonschema.ValidationError, root: str, base: Loc) -> list[Issue]:
    loc: Loc = (*base, *error.absolute_path)
    instance = error.instance
    if instance is None:
        return []  # nulls: json_issues reports them, and knows the placeholders FHIR JSON allows
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        return [
            Issue(f"Unknown element '{key}'", code="structure", expression=(expression(root, (*loc, key)),))
            for key in instance
            if key not in known
        ]
    if error.validator == "required" and isinstance(instance, dict):
        return [
            Issue(
                f"Missing required element '{key}'",
                code="required",
                expression=(expression(root, (*loc, key)),),
            )
            for key in error.validator_value
            if key not in instance
        ]
    name = next((str(s) for s in reversed(loc) if isinstance(s, str)), root)
    code = "code-invalid" if error.validator == "enum" else "value"
    return [
        Issue(f"Invalid value for '{name}': {error.message}", code=code, expression=(expression(root, loc),))
    ]


def schema_definition_at(resource_type: str, loc: Loc) -> str | None:
    """The R4 schema definition of the object at ``loc`` inside a ``resource_type``."""
    definitions = _definitions()
    current = resource_type
    for step in loc:
        if isinstance(step, int):
            continue
        prop = definitions.get(current, {}).get("properties", {}).get(step)
        if not isinstance(prop, dict):
            return None
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        if not isinstance(ref, str):
            return None
        current = ref.rsplit("/", 1)[1]
        if current not in definitions or current == "ResourceList":
            return None
    return current


def r4_element_issues(
    resource_type: str, doc: dict[str, Any], loc: Loc
) -> list[jsonschema.ValidationError] | None:
    """For an element R4B called unknown: ``None`` if R4 does not know it either, else its R4
    schema errors (relative to ``loc``)."""
    parent_loc, name = loc[:-1], loc[-1]
    parent = schema_definition_at(resource_type, parent_loc)
    if (
        parent is None
        or not isinstance(name, str)
        or name not in _definitions()[parent].get("properties", {})
    ):
        return None
    node: Any = doc
    try:
        for step in loc:
            node = node[step]
    except (KeyError, IndexError, TypeError):
        return None
    return list(_validator(parent, name).iter_errors(node))
