"""Code tables as data: the JSON files beside this module, loaded once on first use.

* ``v2-tables.json``: HL7 v2 tables (code -> display, with the terminology.hl7.org URL).
* ``fhir-codes.json``: one map per FHIR element, HL7 v2 code -> FHIR code (``*`` = default).
* ``coding-systems.json``: v2 coding system names (CWE-3) -> code system URIs.
* ``ucum.json``: unit strings senders use -> UCUM codes.
* ``vital-signs.json``: the LOINC codes of the R4 vital signs profiles; MDC -> LOINC.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed JSON file ``name`` (without ``.json``)."""
    with (_HERE / f"{name}.json").open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def fhir_code(map_name: str, code: str) -> Any:
    """The FHIR value ``map_name`` maps ``code`` to, the map's ``*`` default, or ``None``."""
    table = load("fhir-codes")[map_name]
    found = table.get(code)
    if found is None:
        found = table.get(code.upper()) if code else None
    return found if found is not None else table.get("*")


def v2_table(table: str) -> dict[str, Any] | None:
    """HL7 v2 table ``table`` (``"0203"``): ``{"url": ..., "codes": {code: display}}``."""
    found: dict[str, Any] | None = load("v2-tables").get(table)
    return found


def v2_display(table: str, code: str) -> str | None:
    """The display of ``code`` in HL7 v2 table ``table``, if the table knows it."""
    found = v2_table(table)
    return found["codes"].get(code) if found else None


def v2_system(table: str) -> str:
    """The code system URL of HL7 v2 table ``table``."""
    return f"http://terminology.hl7.org/CodeSystem/v2-{table}"
