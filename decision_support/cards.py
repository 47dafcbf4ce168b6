"""Cards as the specification defines them, built so that they cannot be malformed.

Every card carries its evidence in ``detail`` (markdown) and names its ``card_type`` (the
rule or model that made it), which the audit record and the feedback summary use. Empty
values are left out rather than sent as ``null``, ``""`` or ``[]``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

INDICATORS = ("info", "warning", "critical")
SUMMARY_MAX = 139  # "<140 characters"
SYSTEM = "https://interop-server.example/cds"  # our code system for topics and override reasons


def coding(code: str, display: str, system: str = SYSTEM) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


@dataclass(frozen=True)
class Evidence:
    """One input a card used: what, its value, when it was measured, and where it is."""

    label: str
    value: str
    when: str | None = None
    reference: str | None = None

    def markdown(self) -> str:
        parts = [f"**{self.label}**: {self.value}"]
        if self.when:
            parts.append(f"({self.when})")
        if self.reference:
            parts.append(f"`{self.reference}`")
        return "- " + " ".join(parts)


@dataclass(frozen=True)
class Action:
    type: str  # create | update | delete
    description: str
    resource: dict[str, Any] | None = None
    resource_id: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.resource is not None:
            body["resource"] = self.resource
        if self.resource_id:
            body["resourceId"] = list(self.resource_id)
        return body


@dataclass(frozen=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...]
    recommended: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "uuid": str(uuid.uuid4()),
            "isRecommended": self.recommended,
            "actions": [a.to_json() for a in self.actions],
        }


@dataclass(frozen=True)
class Source:
    label: str
    url: str | None
    topic_code: str
    topic_display: str

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"label": self.label}
        if self.url:
            body["url"] = self.url
        body["topic"] = coding(self.topic_code, self.topic_display)
        return body


@dataclass
class Card:
    """A card and the evaluation behind it (kept for the audit record, not sent)."""

    card_type: str
    summary: str
    indicator: str
    source: Source
    evidence: list[Evidence]
    basis: str  # the rule (with thresholds) or the model's explanation, markdown
    suggestions: list[Suggestion] = field(default_factory=list)
    selection_behavior: str = "at-most-one"
    override_reasons: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    model_version: str | None = None
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def __post_init__(self) -> None:
        if self.indicator not in INDICATORS:
            raise ValueError(f"indicator must be one of {INDICATORS}")
        if not 0 < len(self.summary) <= SUMMARY_MAX:
            raise ValueError(f"summary must be 1..{SUMMARY_MAX} characters: {self.summary!r}")

    def detail(self) -> str:
        lines = ["**Inputs used**", *[e.markdown() for e in self.evidence], "", "**Basis**", self.basis]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uuid": self.uuid,
            "summary": self.summary,
            "detail": self.detail(),
            "indicator": self.indicator,
            "source": self.source.to_json(),
        }
        if self.suggestions:
            body["suggestions"] = [s.to_json() for s in self.suggestions]
            body["selectionBehavior"] = self.selection_behavior
        if self.override_reasons:
            body["overrideReasons"] = [coding(code, display) for code, display in self.override_reasons]
        if self.links:
            body["links"] = [{"label": label, "url": url, "type": "absolute"} for label, url in self.links]
        return body

    def audit(self) -> dict[str, Any]:
        """What was evaluated, on what, with which result: stored for every card returned."""
        return {
            "card": self.uuid,
            "cardType": self.card_type,
            "indicator": self.indicator,
            "summary": self.summary,
            "inputs": [e.__dict__ for e in self.evidence],
            "outputs": self.outputs,
            "modelVersion": self.model_version,
        }


# Override reasons offered on most cards (coded so that the feedback summary can count them).
COMMON_OVERRIDES: list[tuple[str, str]] = [
    ("already-addressed", "Already addressed elsewhere"),
    ("not-clinically-appropriate", "Not clinically appropriate for this patient"),
    ("patient-declined", "Patient declined"),
]
