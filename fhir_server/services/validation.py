"""Structural validation of FHIR R4 (4.0.1) resources, reporting every problem with a FHIRPath.

:func:`validate_resource` raises :class:`~fhir_server.outcomes.Unprocessable` with one
:class:`~fhir_server.outcomes.Issue` per problem; each issue's ``expression`` is a FHIRPath built
from where the problem is (``Patient.name[0].given``; choice elements keep their JSON name, e.g.
``Observation.valueQuantity.value``; ``_birthDate`` reads ``birthDate``). Issue codes: ``structure``
for unknown elements, repeated choices and empty objects/arrays, ``required`` for missing
elements, ``value`` for wrong JSON types, formats, nulls and empty strings, ``code-invalid`` for
codes outside a required binding.

Two engines and one walk
------------------------
Each resource goes through one of the two engines below, then through one typed walk over its
JSON (:mod:`~fhir_server.services.validation_json`) for what neither engine enforces: FHIR JSON
types (``"active": "true"`` fails), nulls, ``{}``, ``[]``, blank strings, and the required bindings
of ``code`` elements, data types included (``Patient.name[0].use``). One issue per element: the
walk's replaces an engine's ``value``/``code-invalid`` issue and yields to a ``structure`` or
``required`` one.

fhir.resources ships pydantic models for R4B (4.3.0) and STU3, not for R4. R4B is close to R4
but not identical, so:

* **R4B pydantic models** (``fhir.resources.R4B``) validate the R4 types that R4B kept unchanged:
  fast (pydantic-core, about 60-75 microseconds for a typical Patient or Observation).
* **The HL7 R4 JSON schema** (``conformance/definitions/fhir.schema.json``, Draft 6, one cached
  validator per type) validates the types R4B has not got or changed incompatibly
  (:func:`schema_validated_types`): the 18 that R4B removed (EffectEvidenceSynthesis,
  RiskEvidenceSynthesis, MedicinalProduct and its 9 MedicinalProduct* siblings,
  SubstanceNucleicAcid, SubstancePolymer, SubstanceProtein, SubstanceReferenceInformation,
  SubstanceSourceMaterial, SubstanceSpecification) and the two R4B redesigned (Evidence,
  EvidenceVariable: R4 elements such as ``Evidence.exposureBackground`` or
  ``EvidenceVariable.characteristic.participantEffective[x]`` do not exist in R4B).

Nested resources (``contained``, ``Bundle.entry.resource``, ``Bundle.entry.response.outcome``,
``Parameters.parameter.resource``, also inside ``part``) are validated on their own, each with its
own engine, and their issues are prefixed with where they sit (``Bundle.entry[0].resource.name``).
The container is validated with empty placeholders in their place, so an R4-only or unknown type
inside a Bundle is handled correctly instead of crashing the R4B model (it raises ``KeyError``).

R4B model elements that reject valid R4 content (found by comparing every R4B model with the R4
schema, see ``tests/unit/services/test_validation.py``), and how they are handled:

* ``Extension._valueBoolean``, ``_valueString``... (id/extensions on an extension's primitive
  value) and ``Extension.valueMeta``: R4B's Extension has neither.
* ``ElementDefinition.defaultValueMeta``, ``fixedMeta``, ``patternMeta`` and
  ``ElementDefinition.example.valueMeta``: R4B dropped Meta from the open types.

  When the R4B model calls any such element unknown but the R4 schema defines it there, that
  element is validated against the R4 schema instead and the R4B error is dropped.

R4B models accept some content that R4 does not have; these are rejected by a cheap key scan
(:data:`R4B_ONLY_KEYS`, checked against the R4 schema where found): ``subjectCanonical`` on
ActivityDefinition and PlanDefinition(.action), the CodeableReference and RatioRange choices of
``Extension.value[x]`` and of ElementDefinition's ``defaultValue[x]``, ``fixed[x]``,
``pattern[x]`` and ``example.value[x]``, ``Narrative._div`` (xhtml takes no extensions), and
fhir.resources' own ``fhir_comments``.

Still lenient: required bindings are checked only on ``code`` elements whose value set expands
exactly from the HL7 definitions, so not the 14 required bindings on CodeableConcept elements
(``Condition.clinicalStatus``...), nor mime types (``Attachment.contentType``...), currencies
(``Money.currency``) or ``Composition.confidentiality`` (a terminology.hl7.org v3 value set);
extensible and preferred bindings and codes in extensions are not checked. The schema engine does
not enforce required primitive elements (the HL7 schema leaves them out of ``required``, because
the value may come as ``_name`` extensions only) nor the choice-type rules. Nothing checks
invariants (FHIRPath constraints), terminology beyond those code bindings, or profiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import Any, get_args, get_origin

import orjson
import pydantic
from fhir.resources.R4B import fhirtypes, get_fhir_model_class

from conformance.registry import domain_resource_types, resource_types
from fhir_server.outcomes import Issue, Unprocessable
from fhir_server.services.validation_json import json_issues
from fhir_server.services.validation_json import schema_definitions as _definitions
from fhir_server.services.validation_schema import (
    Loc,
    expression,
    r4_element_issues,
    schema_definition_at,
    schema_issue,
    schema_issues,
)

# R4 types R4B kept but redesigned: validated with the R4 schema.
R4B_INCOMPATIBLE = frozenset({"Evidence", "EvidenceVariable"})

# Keys that R4B models accept somewhere but no R4 definition has at that place (the test suite
# recomputes this from the models and the schema).
R4B_ONLY_KEYS = frozenset(
    {
        "fhir_comments",
        "_div",
        "subjectCanonical",
        "_subjectCanonical",
        "valueCodeableReference",
        "valueRatioRange",
        "defaultValueCodeableReference",
        "defaultValueRatioRange",
        "fixedCodeableReference",
        "fixedRatioRange",
        "patternCodeableReference",
        "patternRatioRange",
    }
)

_ONE_OF_MANY = "Any of one field value is expected"
_NULL_ITEM = "None is not allowed as an element of"
_REPLACEABLE = frozenset({"value", "code-invalid"})  # engine issue codes json_issues may replace


# --------------------------------------------------------------------------- public API


# A FHIR id (R4 datatypes: [A-Za-z0-9\-\.]{1,64}).
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def is_resource_type(name: str) -> bool:
    """Whether ``name`` is a concrete FHIR R4 resource type."""
    return name in resource_types()


@lru_cache(maxsize=1)
def schema_validated_types() -> frozenset[str]:
    """The R4 types validated with the R4 JSON schema instead of an R4B model."""
    return frozenset(t for t in resource_types() if not hasattr(fhirtypes, t + "Type")) | R4B_INCOMPATIBLE


def validate_resource(resource: Any) -> None:
    """Raise :class:`Unprocessable` listing every structural problem of an R4 resource."""
    issues = _validate(resource, None)
    if issues:
        what = resource.get("resourceType") if isinstance(resource, dict) else None
        what = what if isinstance(what, str) and what else "resource"
        summary = issues[0].diagnostics if len(issues) == 1 else f"{len(issues)} problems"
        raise Unprocessable(f"Invalid {what}: {summary}", issues=issues)


# --------------------------------------------------------------------------- dispatch


def _validate(resource: Any, root: str | None) -> list[Issue]:
    where = (root,) if root else ()
    if not isinstance(resource, dict):
        return [Issue("A resource must be a JSON object", code="structure", expression=where)]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return [Issue("Missing resourceType", code="required", expression=where)]
    if not is_resource_type(resource_type):
        return [Issue(f"Unknown resource type '{resource_type}'", code="structure", expression=where)]
    root = root or resource_type
    container, nested = _split_nested(resource, resource_type)
    if resource_type in schema_validated_types():
        issues = schema_issues(resource_type, container, root)
    else:
        issues = _model_issues(resource_type, container, root)
    json_problems = json_issues(resource_type, container, root)
    if json_problems:
        issues = _merge(issues, json_problems)
    for loc, child in nested:
        issues += _validate(child, expression(root, loc))
    return _dedupe(issues)


def _merge(engine: list[Issue], json_problems: list[Issue]) -> list[Issue]:
    """One issue per element: a FHIR JSON or binding problem replaces the engine's value issue
    for the same element (it says what the JSON should be, and names the value set), while the
    engine's structure and required issues stand alone."""
    replaced = {issue.expression for issue in json_problems}
    kept = [i for i in engine if i.code not in _REPLACEABLE or i.expression not in replaced]
    reported = {issue.expression for issue in kept}
    return kept + [issue for issue in json_problems if issue.expression not in reported]


def _dedupe(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


# --------------------------------------------------------------------------- nested resources


def _split_nested(
    resource: dict[str, Any], resource_type: str
) -> tuple[dict[str, Any], list[tuple[Loc, Any]]]:
    """The resource with nested resources replaced by ``{}``, and the nested ones by location."""
    nested: list[tuple[Loc, Any]] = []
    doc = resource
    contained = resource.get("contained")
    if isinstance(contained, list) and contained and resource_type in domain_resource_types():
        doc = {**doc, "contained": [{} for _ in contained]}
        nested += [(("contained", i), item) for i, item in enumerate(contained)]
    if resource_type == "Bundle" and isinstance(resource.get("entry"), list):
        entries = [_split_entry(entry, i, nested) for i, entry in enumerate(resource["entry"])]
        doc = {**doc, "entry": entries}
    elif resource_type == "Parameters" and isinstance(resource.get("parameter"), list):
        doc = {**doc, "parameter": _split_parameters(resource["parameter"], ("parameter",), nested)}
    return doc, nested


def _split_entry(entry: Any, index: int, nested: list[tuple[Loc, Any]]) -> Any:
    if not isinstance(entry, dict):
        return entry
    if "resource" in entry:
        nested.append((("entry", index, "resource"), entry["resource"]))
        entry = {**entry, "resource": {}}
    response = entry.get("response")
    if isinstance(response, dict) and "outcome" in response:
        nested.append((("entry", index, "response", "outcome"), response["outcome"]))
        entry = {**entry, "response": {**response, "outcome": {}}}
    return entry


def _split_parameters(parameters: list[Any], loc: Loc, nested: list[tuple[Loc, Any]]) -> list[Any]:
    result = []
    for i, parameter in enumerate(parameters):
        if isinstance(parameter, dict):
            if "resource" in parameter:
                nested.append(((*loc, i, "resource"), parameter["resource"]))
                parameter = {**parameter, "resource": {}}
            if isinstance(parameter.get("part"), list):
                parameter = {
                    **parameter,
                    "part": _split_parameters(parameter["part"], (*loc, i, "part"), nested),
                }
        result.append(parameter)
    return result


# --------------------------------------------------------------------------- R4B pydantic engine


def _model_issues(resource_type: str, doc: dict[str, Any], root: str) -> list[Issue]:
    model = get_fhir_model_class(resource_type)
    issues: list[Issue] = []
    try:
        model.model_validate(doc)
    except pydantic.ValidationError as exc:
        if any(_NULL_ITEM in error["msg"] for error in exc.errors()):
            filled = _fill_null_items(model, doc)  # pydantic reports nothing else past a null item
            if filled is not doc:
                return _model_issues(resource_type, filled, root)
        issues += _pydantic_issues(exc, resource_type, doc, root)
        # model-level checks (required primitives, one value per choice) do not run once a field
        # failed, so they are repeated here to report every problem at once
        issues += _model_rule_issues(model, doc, (), root)
    except Exception as exc:  # fhir.resources raises plain errors for some malformed input
        issues.append(Issue(f"Invalid {resource_type}: {exc!r}", code="structure", expression=(root,)))
    issues += _r4b_only_key_issues(resource_type, doc, root)
    return issues


def _pydantic_issues(
    exc: pydantic.ValidationError, resource_type: str, doc: dict[str, Any], root: str
) -> Iterator[Issue]:
    for error in exc.errors():
        loc: Loc = tuple(step for step in error["loc"] if step != "root")
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        name = next((str(s) for s in reversed(loc) if isinstance(s, str)), resource_type)
        if kind == "model_field_validation.missing" or message.startswith(_ONE_OF_MANY):
            continue  # reported by _model_rule_issues
        if _NULL_ITEM in message:
            continue  # reported by json_issues, with the item's index
        if kind == "extra_forbidden":
            r4_issues = r4_element_issues(resource_type, doc, loc)
            if r4_issues is not None:  # an R4 element R4B lacks: the R4 schema decides
                yield from (issue for e in r4_issues for issue in schema_issue(e, root, loc))
                continue
            yield Issue(f"Unknown element '{name}'", code="structure", expression=(expression(root, loc),))
        elif kind == "missing":
            yield Issue(
                f"Missing required element '{name}'", code="required", expression=(expression(root, loc),)
            )
        else:
            got = repr(error.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            yield Issue(
                f"Invalid value for '{name}': {message} (got {got})",
                code="value",
                expression=(expression(root, loc),),
            )


class _ModelShape:
    """What the R4B model-level validators check, per model class."""

    def __init__(self, model: type[Any]) -> None:
        self.required: list[tuple[str, str]] = []
        self.choices: dict[str, tuple[list[str], bool]] = {}
        self.children: list[tuple[str, type[Any]]] = []
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            alias = field.alias or name
            if extra.get("element_required"):
                self.required.append((alias, "_" + alias))
            prefix = extra.get("one_of_many")
            if isinstance(prefix, str):
                names, required = self.choices.setdefault(prefix, ([], False))
                names.append(alias)
                self.choices[prefix] = (names, required or extra.get("one_of_many_required") is True)
            child = _model_of(field.annotation)
            if child is not None and child.__name__ != "Resource":
                self.children.append((alias, child))


def _model_of(annotation: Any) -> type[Any] | None:
    origin = get_origin(annotation)
    if origin is not None:
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
        return None
    get_klass = getattr(annotation, "get_model_klass", None)
    return get_klass() if callable(get_klass) else None


_SHAPES: dict[type[Any], _ModelShape] = {}


def _shape(model: type[Any]) -> _ModelShape:
    shape = _SHAPES.get(model)
    if shape is None:
        shape = _SHAPES[model] = _ModelShape(model)
    return shape


def _model_rule_issues(model: type[Any], data: Any, loc: Loc, root: str) -> list[Issue]:
    if not isinstance(data, dict):
        return []
    shape = _shape(model)
    issues = []
    for alias, ext in shape.required:
        if data.get(alias) is None and not (isinstance(data.get(ext), dict) and data[ext].get("extension")):
            issues.append(
                Issue(
                    f"Missing required element '{alias}'",
                    code="required",
                    expression=(expression(root, (*loc, alias)),),
                )
            )
    for prefix, (names, required) in shape.choices.items():
        present = [n for n in names if data.get(n) is not None]
        if len(present) > 1:
            issues.append(
                Issue(
                    f"Only one of {', '.join(present)} may be present ({prefix}[x] is a choice)",
                    code="structure",
                    expression=(expression(root, (*loc, present[1])),),
                )
            )
        elif required and not present:
            issues.append(
                Issue(
                    f"Missing required element '{prefix}[x]'",
                    code="required",
                    expression=(expression(root, (*loc, prefix)),),
                )
            )
    for alias, child in shape.children:
        value = data.get(alias)
        if isinstance(value, list):
            for i, item in enumerate(value):
                issues += _model_rule_issues(child, item, (*loc, alias, i), root)
        elif isinstance(value, dict):
            issues += _model_rule_issues(child, value, (*loc, alias), root)
    return issues


def _fill_null_items(model: type[Any], data: Any) -> Any:
    """``data`` with the nulls in lists of elements replaced by unvalidated instances, which
    pydantic accepts as they are (json_issues reports the nulls)."""
    if not isinstance(data, dict):
        return data
    filled = data
    for alias, child in _shape(model).children:
        value = data.get(alias)
        if isinstance(value, list):
            new: Any = [child.model_construct() if v is None else _fill_null_items(child, v) for v in value]
            changed = any(a is not b for a, b in zip(new, value, strict=True))
        else:
            new = _fill_null_items(child, value)
            changed = new is not value
        if changed:
            filled = {**filled, alias: new}
    return filled


@cache
def _r4b_only_key_pattern() -> re.Pattern[bytes]:
    names = b"|".join(re.escape(k.encode()) for k in sorted(R4B_ONLY_KEYS))
    return re.compile(b'"(?:' + names + b')":')


def _r4b_only_key_issues(resource_type: str, doc: dict[str, Any], root: str) -> list[Issue]:
    # One pass over the serialised resource rules out the common case (no such key) at
    # a fraction of the cost of walking it.
    try:
        if not _r4b_only_key_pattern().search(orjson.dumps(doc)):
            return []
    except TypeError:  # placeholders put in for null items are not JSON: walk instead
        pass
    issues = []
    for loc in _find_keys(doc, R4B_ONLY_KEYS, ()):
        parent = schema_definition_at(resource_type, loc[:-1]) if loc[-1] != "fhir_comments" else None
        if parent is None or loc[-1] not in _definitions()[parent].get("properties", {}):
            issues.append(
                Issue(f"Unknown element '{loc[-1]}'", code="structure", expression=(expression(root, loc),))
            )
    return issues


def _find_keys(node: Any, keys: frozenset[str], loc: Loc) -> Iterator[Loc]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys:
                yield (*loc, key)
            if isinstance(value, (dict, list)):
                yield from _find_keys(value, keys, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield from _find_keys(value, keys, (*loc, i))
