"""CWE/CE/CNE -> CodeableConcept, ID/IS table codes -> Coding, coding system names -> URIs."""

from __future__ import annotations

import re
from typing import Any

from mappings.codemaps import load, v2_display, v2_system
from mappings.ids import local_system
from mappings.message import Field

_HL7_TABLE = re.compile(r"(?:HL7|v2-?)(\d{4})", re.IGNORECASE)
_OID = re.compile(r"[0-2](?:\.\d+)+")


def coding_system(name: str) -> str | None:
    """The URI of a v2 coding system name (``LN`` -> ``http://loinc.org``); ``None`` when empty.

    ``HL7nnnn`` names an HL7 table; an OID becomes ``urn:oid:``; a URI is kept; any other
    (local) name becomes ``urn:id:<name>``, so local codes keep their scope.
    """
    name = name.strip()
    if not name:
        return None
    systems = load("coding-systems")
    known = systems.get(name) or systems.get(name.upper())
    if known:
        return str(known)
    table = _HL7_TABLE.fullmatch(name)
    if table:
        return v2_system(table.group(1))
    if _OID.fullmatch(name):
        return f"urn:oid:{name}"
    if name.startswith(("http://", "https://", "urn:")):
        return name
    return local_system(name)


def _coding(code: str, display: str, system_name: str, table: str | None) -> dict[str, Any]:
    coding: dict[str, Any] = {}
    system = coding_system(system_name)
    if system is None and table:
        system = v2_system(table)
    if system:
        coding["system"] = system
    coding["code"] = code
    if not display and table and system == v2_system(table):
        display = v2_display(table, code) or ""
    if display:
        coding["display"] = display
    return coding


def codings(field: Field, table: str | None = None) -> list[dict[str, Any]]:
    """The codings of a CWE/CE (identifier triplet and alternate triplet)."""
    out = []
    for code_i, text_i, system_i in ((1, 2, 3), (4, 5, 6)):
        code = field.component(code_i)
        if code:
            out.append(_coding(code, field.component(text_i), field.component(system_i), table))
    return out


def codeable(field: Field, table: str | None = None) -> dict[str, Any] | None:
    """CWE/CE -> CodeableConcept (``text`` from CWE-9, else the first display); ``None`` if empty.

    ``table``: the HL7 table the field is bound to, used when the sender names no system.
    """
    if not field:
        return None
    found = codings(field, table)
    text = field.component(9) or (field.component(2) if not field.component(1) else "")
    concept: dict[str, Any] = {}
    if found:
        concept["coding"] = found
    if text:
        concept["text"] = text
    return concept or None


def table_coding(code: str, table: str) -> dict[str, Any]:
    """A code from HL7 table ``table`` as a Coding with its system and display."""
    coding: dict[str, Any] = {"system": v2_system(table), "code": code}
    display = v2_display(table, code)
    if display:
        coding["display"] = display
    return coding


def table_concept(code: str, table: str) -> dict[str, Any] | None:
    """A table code (ID/IS) as a CodeableConcept; ``None`` when empty."""
    return {"coding": [table_coding(code, table)]} if code else None
