"""What the operator console shows, gathered from the services and the repository.

Kept apart from the views so that pages stay templates over plain data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import orjson

from fhir_server import outcomes
from fhir_server.repository.base import HistoryQuery, Repository, StoredVersion
from fhir_server.search.request import parse_query_string
from fhir_server.services.resources import ResourceService, SearchResult


@dataclass(frozen=True)
class Version:
    stored: StoredVersion

    @property
    def text(self) -> str:
        if self.stored.resource is None:
            return "(deleted)"
        return orjson.dumps(self.stored.resource, option=orjson.OPT_INDENT_2).decode()


class ConsoleService:
    def __init__(self, repository: Repository, resources: ResourceService) -> None:
        self._repo = repository
        self._resources = resources

    def resource_counts(self) -> dict[str, int]:
        return self._repo.count_current()

    def search(self, resource_type: str, query: str, *, base_url: str = "") -> SearchResult:
        return self._resources.search(
            parse_query_string(resource_type, query, strict=False), base_url=base_url
        )

    def read(self, resource_type: str, id: str) -> Version:
        return Version(self._resources.read(resource_type, id))

    def history(self, resource_type: str, id: str) -> list[Version]:
        page = self._resources.history(HistoryQuery(resource_type, id, count=1000))
        return [Version(v) for v in page.entries]

    def diff(self, resource_type: str, id: str, older: int, newer: int) -> list[str]:
        """Unified diff of two versions' pretty JSON (meta left out: it always differs)."""

        def text(version: int) -> list[str]:
            try:
                resource = dict(self._resources.vread(resource_type, id, str(version)).resource or {})
            except outcomes.Gone:
                return ["(deleted)"]
            resource.pop("meta", None)
            return orjson.dumps(resource, option=orjson.OPT_INDENT_2).decode().splitlines()

        return list(
            difflib.unified_diff(
                text(older), text(newer), f"version {older}", f"version {newer}", lineterm=""
            )
        )
