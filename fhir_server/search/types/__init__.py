"""One module per search parameter type; this table wires them up.

Each module offers ``index`` (values -> index entries, at write time), ``criterion``
(one search value -> a MongoDB condition on the indexed fields) and ``MODIFIERS``.
The token, string, reference and uri modules also keep ``matches``, the same test on
one node in plain Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.registry import search_parameters_by_url
from fhir_server.search.types import composite, date, number, quantity, reference, string, token, uri

# index(definition, resource_type, resource, selected nodes, out)
Indexer = Callable[[Any, str, dict[str, Any], list[Any], Any], None]


def _simple(index: Callable[[str, list[Any], Any], None]) -> Indexer:
    def run(definition: Any, _type: str, _resource: dict[str, Any], nodes: list[Any], out: Any) -> None:
        index(definition.code, nodes, out)

    return run


def _index_composite(
    definition: Any, resource_type: str, resource: dict[str, Any], nodes: list[Any], out: Any
) -> None:
    composite.index_composite(
        definition, resource_type, resource, out, search_parameters_by_url(), nodes=nodes
    )


INDEXERS: dict[str, Indexer] = {
    "token": _simple(token.index),
    "string": _simple(string.index),
    "reference": _simple(reference.index),
    "uri": _simple(uri.index),
    "date": _simple(date.index),
    "number": _simple(number.index),
    "quantity": _simple(quantity.index),
    "composite": _index_composite,
}
MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": token.MODIFIERS,
    "string": string.MODIFIERS,
    "reference": reference.MODIFIERS,
    "uri": uri.MODIFIERS,
    "date": date.MODIFIERS,
    "number": number.MODIFIERS,
    "quantity": quantity.MODIFIERS,
    "composite": composite.MODIFIERS,
}
# criterion(definition, value, modifier, base_url) -> a condition on the indexed fields
Criterion = Callable[[Any, str, str | None, str], dict[str, Any]]
CRITERIA: dict[str, Criterion] = {
    "token": lambda d, v, m, _b: token.criterion(d.code, v, m),
    "string": lambda d, v, m, _b: string.criterion(d.code, v, m),
    "reference": lambda d, v, m, b: reference.criterion(d.code, v, m, b),
    "uri": lambda d, v, m, _b: uri.criterion(d.code, v, m),
    "date": lambda d, v, m, _b: date.criterion(d.code, v, m),
    "number": lambda d, v, m, _b: number.criterion(d.code, v, m),
    "quantity": lambda d, v, m, _b: quantity.criterion(d.code, v, m),
    "composite": lambda d, v, m, _b: composite.criterion_composite(d, v, m, search_parameters_by_url()),
}
SUPPORTED_TYPES = frozenset(INDEXERS) & frozenset(CRITERIA)
