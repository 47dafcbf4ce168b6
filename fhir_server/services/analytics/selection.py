"""Which records an analysis reads: codes as index keys, and the index values it uses.

Codes become the same ``ix`` keys search uses (``code␟sc␟system|code``, ``code␟c␟code``
for a code without a system, and an anchored ``system|`` prefix for a whole code
system), so a resource with several codings matches once, whichever coding is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_server.search.extract import canonical_code
from fhir_server.search.index import SEP, key

# Statuses that mean "this did not happen" (FHIR's entered-in-error and its relatives).
EXCLUDED_STATUSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Condition": ("verification-status", ("entered-in-error", "refuted")),
    "Observation": ("status", ("entered-in-error", "cancelled")),
    "MedicationRequest": ("status", ("entered-in-error", "cancelled")),
    "MedicationStatement": ("status", ("entered-in-error", "not-taken")),
    "MedicationAdministration": ("status", ("entered-in-error", "not-done")),
}


@dataclass
class Codes:
    """Codes to match: exact (system, code) pairs, bare codes, and whole systems."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    bare: set[str] = field(default_factory=set)
    systems: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.pairs or self.bare or self.systems)

    def keys(self, resource_type: str, param: str = "code") -> tuple[list[str], list[str]]:
        """(exact ``ix`` keys, ``ix`` key prefixes) for one type's token parameter."""
        code = canonical_code(resource_type, param)
        exact = [key(code, "sc", f"{s}|{c}") for s, c in sorted(self.pairs)]
        exact += [key(code, "c", c) for c in sorted(self.bare)]
        return exact, [key(code, "sc", f"{s}|") for s in sorted(self.systems)]


def parse_codes(values: list[str], default_system: str | None = None) -> Codes:
    """``system|code``, a bare ``code`` (in ``default_system`` if given), comma-separated."""
    codes = Codes()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            system, bar, code = part.rpartition("|")
            if not bar:
                if default_system:
                    codes.pairs.add((default_system, part))
                else:
                    codes.bare.add(part)
            elif code:
                codes.pairs.add((system, code))
            elif system:
                codes.systems.add(system)
    return codes


def keys_with(record: dict[str, Any], param: str, kind: str) -> list[str]:
    prefix = f"{param}{SEP}{kind}{SEP}"
    return [k[len(prefix) :] for k in record.get("ix") or () if k.startswith(prefix)]


def first_range(record: dict[str, Any], param: str) -> tuple[datetime, datetime] | None:
    """The earliest-starting range of a date parameter, as aware datetimes."""
    from fhir_server.repository.records import as_utc

    found = [r for r in record.get("ir") or () if r.get("p") == param and isinstance(r.get("lo"), datetime)]
    if not found:
        return None
    best = min(found, key=lambda r: r["lo"])
    return as_utc(best["lo"]), as_utc(best["hi"])


def excluded_status(resource_type: str, record: dict[str, Any]) -> bool:
    param, statuses = EXCLUDED_STATUSES.get(resource_type, ("", ()))
    return bool(param) and any(s in statuses for s in keys_with(record, param, "c"))


def patient_of(record: dict[str, Any], param: str = "subject") -> str | None:
    for reference in keys_with(record, param, "r"):
        if reference.startswith("Patient/"):
            return reference[len("Patient/") :]
    return None
