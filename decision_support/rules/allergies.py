"""Allergy conflicts: an ordered drug against the patient's active AllergyIntolerance records.

A conflict is the allergen's name in the drug's text, or the drug's membership of an allergen
class we ship (e.g. a penicillin allergy and amoxicillin). Entered-in-error, refuted and
resolved allergies are left out.
"""

from __future__ import annotations

from typing import Any

from decision_support.features import codes_of

SOURCE = "Patient's AllergyIntolerance records; drug classes per the product labelling"
CLASSES: dict[str, tuple[str, ...]] = {
    "penicillin": ("penicillin", "amoxicillin", "ampicillin", "piperacillin", "dicloxacillin", "nafcillin"),
    "sulfonamide": ("sulfamethoxazole", "sulfadiazine", "sulfasalazine"),
    "cephalosporin": ("cefalexin", "cephalexin", "cefazolin", "ceftriaxone", "cefuroxime", "cefepime"),
    "nsaid": ("ibuprofen", "naproxen", "diclofenac", "ketorolac", "aspirin"),
    "statin": ("atorvastatin", "simvastatin", "rosuvastatin", "pravastatin", "lovastatin"),
}


def allergen_names(allergy: dict[str, Any]) -> list[str]:
    concept = allergy.get("code") or {}
    names = [str(concept.get("text", ""))] + [str(c.get("display", "")) for c in concept.get("coding") or []]
    return [n.lower().strip() for n in names if n.strip()]


def active(allergy: dict[str, Any]) -> bool:
    verification = {code for _, code in codes_of(allergy.get("verificationStatus"))}
    clinical = {code for _, code in codes_of(allergy.get("clinicalStatus"))}
    return not verification & {"refuted", "entered-in-error"} and not clinical & {"inactive", "resolved"}


def conflict(drug_text: str, allergy: dict[str, Any]) -> str | None:
    """The allergen (or class) the drug conflicts with, or None."""
    for name in allergen_names(allergy):
        for word in name.replace("-", " ").split():
            if len(word) > 3 and word in drug_text:
                return name
        for cls, members in CLASSES.items():
            if cls in name and any(m in drug_text for m in members):
                return name
    return None
