"""Plain JSON figures as a FHIR ``Parameters`` resource (one part per key, recursively)."""

from __future__ import annotations

from typing import Any


def _parameter(name: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, int):
        return {"name": name, "valueInteger": value}
    if isinstance(value, float):
        return {"name": name, "valueDecimal": value}
    if isinstance(value, str):
        return {"name": name, "valueString": value}
    if isinstance(value, dict):
        parts = [p for k, v in value.items() for p in _parameters(k, v)]
        return {"name": name, "part": parts} if parts else None
    raise TypeError(f"cannot render {type(value).__name__}")  # lists are flattened by _parameters


def _parameters(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [p for item in value for p in _parameters(name, item)]
    found = _parameter(name, value)
    return [] if found is None else [found]


def as_parameters(figures: dict[str, Any]) -> dict[str, Any]:
    """Lists become repeated parameters of the same name; ``None`` figures are left out."""
    return {
        "resourceType": "Parameters",
        "parameter": [p for k, v in figures.items() for p in _parameters(k, v)],
    }
