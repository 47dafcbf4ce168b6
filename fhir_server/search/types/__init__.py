"""One module per search parameter type; this table wires them up.

Each module offers ``index`` (values -> index entries, at write time), ``criterion``
(one search value -> a MongoDB condition on the indexed fields) and ``MODIFIERS``.
The older ``matches`` functions evaluate a value against a node in plain Python: the
reference the tests compare the compiled queries with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.search.types import reference, string, token, uri

# index(definition, resource_type, resource, selected nodes, out)
Indexer = Callable[[Any, str, dict[str, Any], list[Any], Any], None]


def _simple(index: Callable[[str, list[Any], Any], None]) -> Indexer:
    def run(definition: Any, _type: str, _resource: dict[str, Any], nodes: list[Any], out: Any) -> None:
        index(definition.code, nodes, out)

    return run


INDEXERS: dict[str, Indexer] = {
    "token": _simple(token.index),
    "string": _simple(string.index),
    "reference": _simple(reference.index),
    "uri": _simple(uri.index),
}
MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": token.MODIFIERS,
    "string": string.MODIFIERS,
    "reference": reference.MODIFIERS,
    "uri": uri.MODIFIERS,
}
# criterion(definition, value, modifier, base_url) -> a condition on the indexed fields
Criterion = Callable[[Any, str, str | None, str], dict[str, Any]]
CRITERIA: dict[str, Criterion] = {
    "token": lambda d, v, m, _b: token.criterion(d.code, v, m),
    "string": lambda d, v, m, _b: string.criterion(d.code, v, m),
    "reference": lambda d, v, m, b: reference.criterion(d.code, v, m, b),
    "uri": lambda d, v, m, _b: uri.criterion(d.code, v, m),
}
SUPPORTED_TYPES = frozenset(INDEXERS) & frozenset(CRITERIA)

# Plain-Python matchers (the reference evaluator for tests and the fallback matcher).
Matcher = Callable[[Any, str, str | None], bool]
MATCHERS: dict[str, Matcher] = {
    "token": token.matches,
    "string": string.matches,
    "reference": reference.matches,
    "uri": uri.matches,
}
