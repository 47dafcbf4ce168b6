"""Golden files: every sample message under tests/data/hl7 maps to the Bundle stored next to it.

The expected Bundles were produced by the mapper and reviewed by hand; after a deliberate
mapping change, regenerate them with ``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/mappings``
and review the diff. Besides the comparison, every Bundle must validate as FHIR R4, be the
same when mapped twice, and be internally consistent (every ``urn:uuid`` reference resolves
to an entry, every resource names its source message, the Provenance covers every entry).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fhir_server.services.validation import validate_resource
from mappings import Options, parse, to_bundle

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7"
SAMPLES = sorted(DATA.glob("*.hl7"))


def _bundle(path: Path) -> dict[str, Any]:
    return to_bundle(parse(path.read_bytes()), Options(timezone="Europe/Berlin"))


def test_there_are_samples_for_every_message_family() -> None:
    families = {p.name.split("_")[0] + "_" + p.name.split("_")[1] for p in SAMPLES}
    expected = {"adt_a01", "adt_a02", "adt_a03", "adt_a04", "adt_a05", "adt_a06", "adt_a07", "adt_a08"}
    expected |= {"adt_a11", "adt_a12", "adt_a13", "adt_a28", "adt_a31", "adt_a40", "oru_r01", "orm_o01"}
    expected |= {"oml_o21", "vxu_v04", "siu_s12", "siu_s15", "mdm_t02", "rde_o11"}
    assert expected <= families


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_maps_to_its_golden_bundle(path: Path) -> None:
    bundle = _bundle(path)
    golden = path.with_suffix(".json")
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert bundle == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_bundle_is_valid_r4(path: Path) -> None:
    bundle = _bundle(path)
    validate_resource(bundle)
    for entry in bundle["entry"]:
        validate_resource(entry["resource"])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_mapping_twice_gives_identical_bundles(path: Path) -> None:
    assert _bundle(path) == _bundle(path)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_bundle_is_internally_consistent(path: Path) -> None:
    message = parse(path.read_bytes())
    bundle = _bundle(path)
    entries = bundle["entry"]
    urls = [e["fullUrl"] for e in entries if "fullUrl" in e]
    assert len(urls) == len(set(urls))
    for reference in _references(bundle):
        if reference.startswith("urn:uuid:"):
            assert reference in urls
    for entry in entries:
        assert entry["resource"]["meta"]["source"].endswith("#" + message.control_id)
        method = entry["request"]["method"]
        assert method in ("PUT", "POST")
        if method == "PUT" and entry["resource"]["resourceType"] != "Provenance":
            assert entry["request"]["url"].startswith(entry["resource"]["resourceType"] + "?identifier=")
    provenance = [e for e in entries if e["resource"]["resourceType"] == "Provenance"]
    assert len(provenance) == 1
    targets = {t["reference"] for t in provenance[0]["resource"]["target"]}
    assert targets == set(urls)
