"""Read-only aggregation queries for population analytics.

The pipelines use only the stages and operators both stores answer: ``$match`` (equality,
``$in`` of values and anchored regexes) and inclusion ``$project``. FerretDB 1.24 lacks the rest of
what a richer pipeline would use (``$min``/``$push`` accumulators, ``$dateTrunc``,
``$cond``, ``$filter``, computed ``$project`` fields), so the store selects and trims the
current records and the service buckets and summarises them in Python, which gives the
same figures on MongoDB. Records are the searchable ones (``search_T``): their index
values (``ix`` keys, ``ir`` ranges) were extracted at write time, so most questions need
no JSON parsing at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bson.regex import Regex
from pymongo.collection import Collection

from fhir_server.repository.records import SEARCH_PREFIX

BATCH = 2000


class AnalyticsReads:
    """Mixed into the MongoDB repository; ``_search_docs`` is the repository's."""

    def _search_docs(self, resource_type: str) -> Collection[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def current_records(
        self,
        resource_type: str,
        *,
        any_keys: list[str] | None = None,
        key_prefixes: list[str] | None = None,
        ids: list[str] | None = None,
        fields: tuple[str, ...] = ("ix", "ir"),
    ) -> Iterator[dict[str, Any]]:
        """Current (not deleted) records holding any of ``any_keys`` or a key starting with
        one of ``key_prefixes`` (or, with ``ids``, those records), trimmed to ``fields``."""
        # One $in of exact keys and anchored regexes, not an $or: FerretDB evaluates an $or
        # of the same conditions about twice as slowly. Placeholders (version 0) are deleted.
        wanted: list[Any] = sorted(set(any_keys or ()))
        wanted += [Regex("^" + re.escape(prefix)) for prefix in key_prefixes or ()]
        match: dict[str, Any] = {"del": False}
        if ids is not None:
            match["_id"] = {"$in": sorted(set(ids))}
        if wanted:
            match["ix"] = {"$in": wanted}
        elif ids is None and any_keys is not None:
            return iter(())  # asked for codes, none given: nothing matches
        pipeline: list[dict[str, Any]] = [{"$match": match}, {"$project": dict.fromkeys(fields, 1)}]
        return self._search_docs(resource_type).aggregate(pipeline, batchSize=BATCH)

    def count_current(self) -> dict[str, int]:
        """Current resources per type (for the console): ``$match`` + ``$count`` per type."""
        db = self._search_docs("Patient").database
        counts: dict[str, int] = {}
        for name in sorted(db.list_collection_names()):
            if not name.startswith(SEARCH_PREFIX):
                continue
            found = list(db[name].aggregate([{"$match": {"del": False}}, {"$count": "n"}]))
            if found and found[0]["n"]:
                counts[name[len(SEARCH_PREFIX) :]] = int(found[0]["n"])
        return counts
