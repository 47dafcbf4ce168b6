"""History reads (instance, type, system level), mixed into the MongoDB repository.

Instance history walks version numbers by ``_id`` (versions are dense, the head
supplies the newest); type and system history merge, per type, the history records
and the searchable records still at version 1 (a resource written once has no
history record yet).
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.collection import Collection

from fhir_server.repository.base import HistoryPage, HistoryQuery, StoredVersion
from fhir_server.repository.records import WITHOUT_INDEX, from_record, history_order, in_window


class HistoryReads:
    """Needs the collection accessors and version reads of the repository it is mixed into."""

    def _versions(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def _search_docs(self, resource_type: str) -> Collection[dict[str, Any]]:
        raise NotImplementedError

    def catch_up(self, resource_type: str, id: str) -> StoredVersion | None:
        raise NotImplementedError

    def vread(self, resource_type: str, id: str, version: int) -> StoredVersion | None:
        raise NotImplementedError

    def resource_types_in_use(self) -> list[str]:
        raise NotImplementedError

    def visible(self, record: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _read_history(self, query: HistoryQuery) -> HistoryPage:
        if query.resource_type and query.id:
            return self._instance_history(query.resource_type, query.id, query)
        types = [query.resource_type] if query.resource_type else self.resource_types_in_use()
        return self._merged_history(types, query)

    def _instance_history(self, resource_type: str, id: str, query: HistoryQuery) -> HistoryPage:
        head = self.catch_up(resource_type, id)
        if head is None:
            return HistoryPage()
        history = self._versions(resource_type)
        selected: list[StoredVersion] = []
        newer: StoredVersion | None = None
        for version in range(head.version, 0, -1):  # newest first; lastUpdated grows with version
            if version == head.version:
                entry = head
            else:
                record = history.find_one({"_id": f"{id}/{version}"})
                if record is None:
                    continue
                entry = from_record(resource_type, record, id)
            if in_window(entry, newer, query):
                selected.append(entry)
            if query.since and entry.last_updated < query.since:
                break
            if query.at_start and newer is not None and newer.last_updated <= query.at_start:
                break
            newer = entry
        return HistoryPage(selected[query.offset : query.offset + query.count], len(selected))

    def _merged_history(self, types: list[str], query: HistoryQuery) -> HistoryPage:
        """Type or system history: history records plus heads still at version 1.

        A resource written once exists only as its head, so both collections are
        sources. A first update that died between copying version 1 into history and
        claiming version 2 leaves version 1 in both: the merge drops the duplicate, and
        ``total`` may count it once too often until that resource is written again.
        """
        time_filter: dict[str, Any] = {}
        if query.since:
            time_filter["$gte"] = query.since
        if query.till:
            time_filter["$lte"] = query.till
        if query.at_end:
            time_filter["$lt"] = query.at_end
        mongo_filter: dict[str, Any] = {"lu": time_filter} if time_filter else {}
        first_versions = {**mongo_filter, "v": 1}
        wanted = query.offset + query.count
        streams: list[list[StoredVersion]] = []
        total = 0
        order = [("lu", DESCENDING), ("_id", DESCENDING)]
        for resource_type in types:
            history, heads = self._versions(resource_type), self._search_docs(resource_type)
            if query.at_start:
                current = self._current_during(resource_type, mongo_filter, first_versions, query)
                total += len(current)
                streams.append(current[:wanted])
                continue
            total += history.count_documents(mongo_filter) + heads.count_documents(first_versions)
            streams.append(
                [
                    from_record(resource_type, r)
                    for r in history.find(mongo_filter, sort=order).limit(wanted)
                    if self.visible(r)  # not a claim of an undecided or aborted transaction
                ]
            )
            streams.append(
                [from_record(resource_type, r) for r in heads.find(first_versions, sort=order).limit(wanted)]
            )
        merged = heapq.merge(*streams, key=history_order, reverse=True)
        entries: list[StoredVersion] = []
        for entry in merged:
            if entries and (entries[-1].key, entries[-1].version) == (entry.key, entry.version):
                total -= 1
                continue
            entries.append(entry)
        return HistoryPage(entries[query.offset : wanted], total)

    def _current_during(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        first_versions: dict[str, Any],
        query: HistoryQuery,
    ) -> list[StoredVersion]:
        """Versions that were current at some instant of [at_start, at_end)."""
        found: dict[tuple[str, int], StoredVersion] = {}
        for record in self._search_docs(resource_type).find(first_versions, WITHOUT_INDEX):
            entry = from_record(resource_type, record)
            found[(entry.id, entry.version)] = entry
        for record in self._versions(resource_type).find(mongo_filter):
            if not self.visible(record):
                continue
            entry = from_record(resource_type, record)
            found[(entry.id, entry.version)] = entry
        result: list[StoredVersion] = []
        successor: dict[str, datetime] = {}
        for entry in sorted(found.values(), key=lambda e: (e.id, -e.version)):
            newer_at = successor.get(entry.id)
            if newer_at is None:
                # The next version may lie after at_end; ask for it by _id.
                newer = self.vread(resource_type, entry.id, entry.version + 1)
                newer_at = newer.last_updated if newer else None
            if newer_at is None or (query.at_start is not None and newer_at > query.at_start):
                result.append(entry)
            successor[entry.id] = entry.last_updated
        result.sort(key=history_order, reverse=True)
        return result
