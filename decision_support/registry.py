"""The CDS services this server offers: discovery is generated from this one list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from decision_support.cards import Card
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from fhir_server import outcomes

Handler = Callable[[CdsRequest, Prefetched, date], list[Card]]


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]
    handle: Handler
    usage_requirements: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def discovery(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": self.prefetch,
        }
        if self.usage_requirements:
            body["usageRequirements"] = self.usage_requirements
        if self.extra:
            body["extension"] = self.extra
        return body


class Registry:
    def __init__(self, services: list[Service]) -> None:
        ids = [s.id for s in services]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate CDS service ids: {ids}")
        self._services = {s.id: s for s in services}

    def get(self, id: str) -> Service:
        service = self._services.get(id)
        if service is None:
            raise outcomes.NotFound(f"No CDS service '{id}'")
        return service

    def discovery(self) -> dict[str, Any]:
        return {"services": [s.discovery() for s in self._services.values()]}

    def __iter__(self) -> Iterator[Service]:
        return iter(self._services.values())
