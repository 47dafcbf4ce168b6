"""SMART on FHIR scopes, v1 and v2, parsed into one rule shape.

v1: ``patient/Observation.read``, ``user/*.write``, ``system/*.*``; v2:
``patient/Observation.rs?category=laboratory`` (letters ``c r u d s`` in that order, an
optional query that narrows what the rule grants). Both become a :class:`ScopeRule`:
a context (patient, user, system), a resource type (or ``*``), a set of interaction
letters and the query pairs. Scopes that are not about data (``openid``,
``launch/patient``, ``offline_access`` ...) are kept as names but grant no rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(?:\?(.+))?$")


@dataclass(frozen=True)
class ScopeRule:
    context: str
    resource_type: str  # a type, or "*"
    letters: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()

    def covers(self, resource_type: str, letter: str) -> bool:
        return letter in self.letters and self.resource_type in ("*", resource_type)


class ScopeError(ValueError):
    """A scope string that looks like a data scope but is malformed."""


def parse_scope(scope: str) -> ScopeRule | None:
    """The rule of one scope, None for a non-data scope; raises on a malformed data scope."""
    found = _SCOPE.match(scope)
    if found is None:
        if scope.split("/", 1)[0] in CONTEXTS and not scope.startswith(("patient/$", "user/$")):
            raise ScopeError(f"malformed scope '{scope}'")
        return None
    context, resource_type, permissions, query = found.groups()
    if permissions in _V1:
        if query:
            raise ScopeError(f"v1 scope '{scope}' cannot carry a query")
        letters = _V1[permissions]
    else:
        # v2: each letter at most once, in the canonical order c r u d s.
        if not permissions or "".join(c for c in LETTERS if c in permissions) != permissions:
            raise ScopeError(f"malformed scope permissions in '{scope}'")
        letters = permissions
    pairs = tuple(parse_qsl(query or "", keep_blank_values=True))
    if any(name.startswith(("_has", "_include", "_revinclude")) or "." in name for name, _ in pairs):
        raise ScopeError(f"scope '{scope}' may only narrow by plain search parameters")
    return ScopeRule(context, resource_type, frozenset(letters), pairs)


def parse_scopes(text: str) -> tuple[tuple[str, ...], tuple[ScopeRule, ...]]:
    """(every scope name, the data rules among them) of a space-separated scope string."""
    names = tuple(dict.fromkeys(s for s in text.split() if s))
    rules = tuple(rule for rule in (parse_scope(s) for s in names) if rule is not None)
    return names, rules


def within(requested: str, allowed: str) -> bool:
    """Whether scope ``requested`` asks for no more than scope ``allowed`` grants."""
    if requested == allowed:
        return True
    want, have = parse_scope(requested), parse_scope(allowed)
    if want is None or have is None:
        return False
    return (
        want.context == have.context
        and have.resource_type in ("*", want.resource_type)
        and want.letters <= have.letters
        and set(have.query) <= set(want.query)
    )


def grantable(requested: str, allowed: str) -> str:
    """The requested scopes a client registered for ``allowed`` may receive."""
    registered = allowed.split()
    granted = []
    for scope in requested.split():
        try:
            if any(within(scope, a) for a in registered):
                granted.append(scope)
        except ScopeError:
            continue
    return " ".join(dict.fromkeys(granted))
