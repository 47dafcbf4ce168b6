"""Drug-drug interactions from a curated table we ship (interactions.json), by ingredient name.

The table holds pairs from the ONC high-priority list (Phansalkar et al., JAMIA 2012) and a few
well-documented others, each with its severity and source. Ingredients are matched in the
medication's coded display and text (case-insensitive), so brand products must name the
ingredient; that limit is stated on every card.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

SOURCE = "ONC high-priority drug-drug interactions, Phansalkar et al. (doi:10.1136/amiajnl-2011-000612)"
URL = "https://doi.org/10.1136/amiajnl-2011-000612"


@dataclass(frozen=True)
class Interaction:
    first: tuple[str, ...]
    second: tuple[str, ...]
    severity: str  # warning | critical
    effect: str
    source: str


@functools.cache
def table() -> tuple[Interaction, ...]:
    rows = json.loads((Path(__file__).parent / "interactions.json").read_text())
    return tuple(
        Interaction(tuple(r["first"]), tuple(r["second"]), r["severity"], r["effect"], r["source"])
        for r in rows
    )


def _mentions(text: str, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in text), None)


def find(ordered: str, current: str) -> list[tuple[Interaction, str, str]]:
    """Interactions between an ordered drug's text and another drug's text (either order)."""
    hits = []
    for row in table():
        for a, b in ((row.first, row.second), (row.second, row.first)):
            x, y = _mentions(ordered, a), _mentions(current, b)
            if x and y:
                hits.append((row, x, y))
                break
    return hits
