"""Search index values, extracted from a resource when it is written.

Each head record carries three fields built here, in the same write as the resource,
so a search never sees a resource without its index values:

``ix``  a list of strings ``"{param}<SEP>{kind}<SEP>{value}"`` (SEP is the unit
        separator, 0x1f): every token, string, reference and uri value in the forms a
        search can ask for (for example a Coding gives ``c`` code and ``sc``
        system|code, or ``n`` code without a system; ``system|`` is a prefix search on
        the ``sc`` keys). ``:missing`` asks whether any
        key starts with ``"{param}<SEP>"``. One multikey index on ``ix`` serves
        equality and anchored-prefix queries for every such parameter (the attribute
        pattern).
``ir``  a list of ``{"p": param, "lo": ..., "hi": ...}`` ranges (dates as datetimes,
        numbers and quantities as floats, quantities also ``s`` system, ``c`` code,
        ``u`` unit; composites also ``k``, the token keys of their first component).
        Indexes on ``(ir.p, ir.lo)`` and ``(ir.p, ir.hi)`` serve prefix comparisons.
``so``  ``{param: value}``, or ``{param: [smallest, largest]}`` when they differ: sort
        keys for ``_sort``. MongoDB sorts an array ascending by its smallest element
        and descending by its largest, the order FHIR asks for (dates sort by range
        start ascending and by range end descending).

Parameter codes come from the official definitions, never from a request, so they
are safe as parts of keys and field names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SEP = "\x1f"


def key(code: str, kind: str, value: str) -> str:
    return f"{code}{SEP}{kind}{SEP}{value}"


def present_pattern(code: str) -> str:
    """An anchored regex matching every ``ix`` key of parameter ``code`` (``:missing``)."""
    return "^" + re.escape(f"{code}{SEP}")


@dataclass
class IndexEntries:
    """What one resource contributes to the search indexes."""

    keys: set[str] = field(default_factory=set)
    ranges: list[dict[str, Any]] = field(default_factory=list)
    bounds: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def add_key(self, code: str, kind: str, value: str) -> None:
        self.keys.add(key(code, kind, value))

    def add_range(self, code: str, lo: Any, hi: Any, **extra: Any) -> None:
        entry = {"p": code, "lo": lo, "hi": hi}
        entry.update({k: v for k, v in extra.items() if v is not None})
        if entry not in self.ranges:
            self.ranges.append(entry)

    def sort_value(self, code: str, low: Any, high: Any | None = None) -> None:
        """Track the smallest and the largest value of a parameter for sorting."""
        high = low if high is None else high
        seen = self.bounds.get(code)
        self.bounds[code] = (low, high) if seen is None else (min(seen[0], low), max(seen[1], high))

    @property
    def sort(self) -> dict[str, Any]:
        return {code: lo if lo == hi else [lo, hi] for code, (lo, hi) in self.bounds.items()}

    def as_fields(self) -> dict[str, Any]:
        return {"ix": sorted(self.keys), "ir": self.ranges, "so": self.sort}
