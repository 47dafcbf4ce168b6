"""The current caller's access applied to one store: reach checks for reads, history and writes.

``ResourceService`` asks here before it reads, lists or writes (see services/access.py for
what a token may reach, and docs/architecture.md for where each check sits). A check
costs a lookup only for restricted callers; unrestricted ones get ``None`` conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fhir_server import outcomes
from fhir_server.repository import mql
from fhir_server.repository.base import HistoryQuery, NewVersion, Repository, StoredVersion
from fhir_server.search.request import SearchRequest
from fhir_server.services import access

_VERB = {"c": "create", "u": "update", "d": "delete"}


class Guard:
    def __init__(self, repository: Repository, call: Callable[..., Any]) -> None:
        self._repo = repository
        self._call = call  # the service's store-error translation

    def _member(self, resource_type: str, id: str, condition: dict[str, Any]) -> bool:
        query = {"$and": [{"_id": id}, condition]}
        return bool(self._call(self._repo.search, resource_type, query, [], 0, 1))

    def visible(self, resource_type: str, id: str, letter: str) -> bool:
        """Whether the caller may reach this resource (403 for a type out of reach)."""
        condition = access.condition(access.current(), resource_type, letter)
        return condition is None or self._member(resource_type, id, condition)

    def restricted(self, request: SearchRequest, letter: str = "s") -> SearchRequest:
        """The request with the caller's condition added to what it compiles to."""
        condition = access.condition(access.current(), request.resource_type, letter)
        if condition is None:
            return request
        return replace(request, extra_filters=(*request.extra_filters, condition))

    def check_history(self, query: HistoryQuery) -> None:
        """Instance history needs read access to the resource; type and system history
        (which the store cannot filter) need access to every resource they may list."""
        who = access.current()
        if query.resource_type and query.id:
            if not self.visible(query.resource_type, query.id, "r"):
                raise outcomes.NotFound(f"{query.resource_type}/{query.id} is not known")
        elif query.resource_type:
            if access.condition(who, query.resource_type, "s") is not None:
                raise access.forbidden(
                    f"{query.resource_type} history needs access to every {query.resource_type}"
                )
        elif not access.whole_store(who, "s"):
            raise access.forbidden("System history needs access to every resource")

    def check_existing(
        self, resource_type: str, id: str, head: StoredVersion | None, *, deleting: bool
    ) -> None:
        """Refuse to touch a current resource the caller may not change, before anything
        looks at it (an If-Match, a JSON Patch ``test``) and could tell about its content."""
        if head is None or head.deleted:
            return
        letter = "d" if deleting else "u"
        condition = access.condition(access.current(), resource_type, letter)
        if condition is not None and not self._member(resource_type, id, condition):
            raise access.forbidden(
                f"{resource_type}/{id} is outside what the access token may {_VERB[letter]}"
            )

    def check_write(self, new: NewVersion) -> None:
        """Refuse a version the caller may not write: the interaction on the type, the
        current version within reach, and the new content within reach too (evaluated on
        its index values, the same condition a search would use)."""
        exists = new.previous is not None and not new.previous.deleted
        letter = "d" if new.deleted else ("u" if exists else "c")
        condition = access.condition(access.current(), new.resource_type, letter)
        if condition is None:
            return
        self.check_existing(new.resource_type, new.id, new.previous, deleting=new.deleted)
        if not new.deleted and not mql.matches(condition, {"_id": new.id, **(new.index or {})}):
            where = f"{new.resource_type}/{new.id}"
            raise access.forbidden(
                f"The new content of {where} would be outside what the access token may write"
            )
