"""What a search adds around its own query: chained parameters and ``_has`` resolved
into conditions by inner searches, and the resources ``_include``/``_revinclude`` pull
in (with ``:iterate``). Every inner step is limited by the caller's access like the
outer search (services/access.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fhir_server.repository.base import Repository, StoredVersion
from fhir_server.search.chains import resolve_chain
from fhir_server.search.compiler import compile_param, compile_search
from fhir_server.search.includes import Include, referenced
from fhir_server.search.request import SearchParam, SearchRequest, parse
from fhir_server.services import access
from fhir_server.services.guard import Guard
from fhir_server.services.validation import ID_PATTERN, is_resource_type

MAX_INCLUDE_DEPTH = 3  # :iterate follows references this many steps at most
MAX_INCLUDED = 1000  # resources one _revinclude step may add to a page


class SearchExpansion:
    def __init__(self, repository: Repository, call: Callable[..., Any], guard: Guard, base_url: str) -> None:
        self._repo = repository
        self._call = call  # the service's store-call wrapper (store errors -> 503)
        self._guard = guard
        self._base_url = base_url

    def resolve_chains(self, request: SearchRequest) -> SearchRequest:
        """Run each chain's inner search and turn it into a condition on the outer one."""
        if not request.chains:
            return request

        def run(resource_type: str, pairs: list[tuple[str, str]], limit: int) -> list[tuple[str, str, Any]]:
            allowed, _ = access.permitted(access.current(), resource_type, "s")
            if not allowed:
                return []  # the caller cannot search there: nothing there can match
            inner = self.resolve_chains(self._guard.restricted(parse(resource_type, pairs, strict=True)))
            compiled = compile_search(inner)
            found = self._call(self._repo.search, resource_type, compiled.filter, [("_id", 1)], 0, limit)
            return [(m.resource_type, m.id, m.resource) for m in found]

        conditions = []
        for chain in request.chains:
            field_name, values = resolve_chain(chain, request.resource_type, run)
            if field_name == "_id":
                conditions.append({"_id": {"$in": list(values)}})
            elif values:
                param = SearchParam(chain.reference, None, values, request.resource_type)
                conditions.append(compile_param(param))
            else:
                conditions.append({"_id": {"$in": []}})  # the inner search matched nothing
        return replace(request, chains=(), extra_filters=(*request.extra_filters, *conditions))

    def included(self, request: SearchRequest, matches: list[StoredVersion]) -> list[StoredVersion]:
        """Resources pulled in by _include/_revinclude (with :iterate, a few levels deep)."""
        seen = {m.key for m in matches}
        frontier, included = list(matches), []
        for depth in range(MAX_INCLUDE_DEPTH):
            found: list[StoredVersion] = []
            for include in request.includes:
                if depth > 0 and not include.iterate:
                    continue
                found += (
                    self._reverse(include, frontier) if include.reverse else self._forward(include, frontier)
                )
            fresh = [r for r in found if r.key not in seen]
            seen.update(r.key for r in fresh)
            included += fresh
            frontier = fresh
            if not frontier:
                break
        return included

    def _forward(self, include: Include, sources: list[StoredVersion]) -> list[StoredVersion]:
        wanted: dict[str, list[str]] = {}
        for source in sources:
            if source.resource is None:
                continue
            for target_type, id in referenced(include, source.resource_type, source.resource, self._base_url):
                if is_resource_type(target_type) and ID_PATTERN.match(id):
                    wanted.setdefault(target_type, []).append(id)
        found: list[StoredVersion] = []
        who = access.current()
        for target_type, ids in wanted.items():
            allowed, condition = access.permitted(who, target_type, "r")
            if not allowed:
                continue
            if condition is None:
                found += self._call(self._repo.get_many, target_type, ids)
            else:
                query = {"$and": [{"_id": {"$in": list(dict.fromkeys(ids))}}, condition]}
                found += self._call(self._repo.search, target_type, query, [("_id", 1)], 0, MAX_INCLUDED)
        return found

    def _reverse(self, include: Include, targets: list[StoredVersion]) -> list[StoredVersion]:
        pointing = [t for t in targets if include.target_type in (None, t.resource_type)]
        if not pointing:
            return []
        references = tuple(f"{t.resource_type}/{t.id}" for t in pointing)
        clauses = [
            {"$or": [compile_param(SearchParam(p, None, (ref,), include.source_type)) for ref in references]}
            for p in include.params
        ]
        query = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        allowed, condition = access.permitted(access.current(), include.source_type, "s")
        if not allowed:
            return []
        if condition is not None:
            query = {"$and": [query, condition]}
        return list(self._call(self._repo.search, include.source_type, query, [("_id", 1)], 0, MAX_INCLUDED))
