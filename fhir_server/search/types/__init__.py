"""One matcher module per search parameter type; this table wires them up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir_server.search.types import reference, string, token, uri

# A matcher answers: does one selected node satisfy one value under a modifier?
Matcher = Callable[[Any, str, str | None], bool]

MATCHERS: dict[str, Matcher] = {
    "token": token.matches,
    "string": string.matches,
    "reference": reference.matches,
    "uri": uri.matches,
}
SUPPORTED_TYPES = frozenset(MATCHERS)
MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": token.MODIFIERS,
    "string": string.MODIFIERS,
    "reference": reference.MODIFIERS,
    "uri": uri.MODIFIERS,
}
