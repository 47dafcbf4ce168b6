"""XPN -> HumanName, XAD -> Address, XTN -> ContactPoint."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.message import Field


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [])}


def xpn(field: Field) -> dict[str, Any] | None:
    """XPN -> HumanName: family (XPN-1.1), given (XPN-2, XPN-3), prefix, suffix, use (XPN-7)."""
    name = _compact(
        {
            "use": fhir_code("name-use", field.component(7)) if field.component(7) else None,
            "family": field.component(1, 1),
            "given": [g for g in (field.component(2), field.component(3)) if g],
            "prefix": [p for p in (field.component(5),) if p],
            "suffix": [s for s in (field.component(4), field.component(6)) if s],
        }
    )
    if not any(k in name for k in ("family", "given")):
        return None
    return name


def xad(field: Field) -> dict[str, Any] | None:
    """XAD -> Address: lines (XAD-1.1, XAD-2), city, state, postal code, country, district, use."""
    kind = field.component(7)
    address = _compact(
        {
            "use": fhir_code("address-use", kind) if kind else None,
            "type": fhir_code("address-type", kind) if kind else None,
            "line": [x for x in (field.component(1, 1), field.component(2)) if x],
            "city": field.component(3),
            "district": field.component(9),
            "state": field.component(4),
            "postalCode": field.component(5),
            "country": field.component(6),
        }
    )
    return address if set(address) - {"use", "type"} else None


def xtn(field: Field) -> dict[str, Any] | None:
    """XTN -> ContactPoint: e-mail from XTN-4, else the number (XTN-1, XTN-12 or its parts)."""
    use_code, equipment = field.component(2), field.component(3)
    email = field.component(4)
    if email or use_code == "NET" or equipment in ("Internet", "X.400"):
        value = email or field.component(1)
        system = "email"
    else:
        parts = [
            f"+{field.component(5)}" if field.component(5) else "",
            f"({field.component(6)})" if field.component(6) else "",
            field.component(7),
            f"ext. {field.component(8)}" if field.component(8) else "",
        ]
        built = " ".join(p for p in parts if p) if field.component(7) else ""
        value = field.component(1) or field.component(12) or built
        system = fhir_code("telecom-system", equipment) or "phone" if equipment else "phone"
    if not value:
        return None
    use = fhir_code("telecom-use-by-equipment", equipment) or (
        fhir_code("telecom-use", use_code) if use_code else None
    )
    return _compact({"system": system, "value": value, "use": use})
