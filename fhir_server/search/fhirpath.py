"""The subset of FHIRPath that R4 search parameter expressions use for paths.

Supported: unions (``|``), dotted paths, ``where(field='literal')``,
``where(resolve() is Type)``, ``as(Type)`` / ``(path as Type)`` / ``ofType(Type)`` on
choice elements, and ``extension('url')``. Anything else raises
:class:`UnsupportedExpression`, so a parameter we cannot evaluate exactly is refused
rather than half-evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_WHERE_EQ = re.compile(r"^where\(\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*'([^']*)'\s*\)$")
_WHERE_RESOLVE = re.compile(r"^where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)$")
_AS = re.compile(r"^(?:as|ofType)\(\s*([A-Za-z]+)\s*\)$")
_EXTENSION = re.compile(r"^extension\(\s*'([^']+)'\s*\)$")
_ROOTS_FOR_ANY_TYPE = frozenset({"Resource", "DomainResource"})


class UnsupportedExpression(ValueError):
    """The expression uses FHIRPath beyond the supported path subset."""


@dataclass(frozen=True)
class Step:
    kind: str  # field | where_eq | resolve_is | extension
    name: str = ""
    value: str = ""


@dataclass(frozen=True)
class PathTerm:
    root: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class CompiledExpression:
    terms: tuple[PathTerm, ...]

    def evaluate(self, resource_type: str, resource: dict[str, Any]) -> list[Any]:
        """Every node the expression selects in ``resource`` (lists flattened)."""
        found: list[Any] = []
        for term in self.terms:
            if term.root != resource_type and term.root not in _ROOTS_FOR_ANY_TYPE:
                continue
            nodes: list[Any] = [resource]
            for step in term.steps:
                nodes = list(_apply(step, nodes))
            found.extend(nodes)
        return found


@lru_cache(maxsize=4096)
def compile_expression(expression: str, base: tuple[str, ...] = ()) -> CompiledExpression:
    terms = tuple(_compile_term(t) for t in _split_top_level(expression, "|"))
    if not terms:
        raise UnsupportedExpression(expression)
    return CompiledExpression(terms)


def _compile_term(text: str) -> PathTerm:
    text = text.strip()
    cast: str | None = None
    if text.startswith("(") and text.endswith(")"):
        inner = text[1:-1].strip()
        match = re.match(r"^(.*)\s+as\s+([A-Za-z]+)$", inner)
        if not match:
            raise UnsupportedExpression(text)
        text, cast = match.group(1).strip(), match.group(2)
    parts = _split_top_level(text, ".")
    if not parts or not _IDENT.match(parts[0]):
        raise UnsupportedExpression(text)
    steps: list[Step] = []
    for part in parts[1:]:
        part = part.strip()
        if _IDENT.match(part):
            steps.append(Step("field", part))
        elif match := _WHERE_EQ.match(part):
            steps.append(Step("where_eq", match.group(1), match.group(2)))
        elif match := _WHERE_RESOLVE.match(part):
            steps.append(Step("resolve_is", match.group(1)))
        elif match := _AS.match(part):
            _cast_last(steps, match.group(1), text)
        elif match := _EXTENSION.match(part):
            steps.append(Step("field", "extension"))
            steps.append(Step("where_eq", "url", match.group(1)))
        else:
            raise UnsupportedExpression(text)
    if cast:
        _cast_last(steps, cast, text)
    return PathTerm(parts[0], tuple(steps))


def _cast_last(steps: list[Step], type_name: str, text: str) -> None:
    if not steps or steps[-1].kind != "field":
        raise UnsupportedExpression(text)
    choice = steps[-1].name + type_name[0].upper() + type_name[1:]
    steps[-1] = Step("field", choice)


def _split_top_level(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == separator and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _children(node: Any, name: str) -> Iterable[Any]:
    if not isinstance(node, dict):
        return ()
    value = node.get(name)
    if value is None:
        # A choice element named without its type, e.g. ``Observation.effective``.
        matches = [
            v for k, v in node.items() if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
        ]
        if not matches:
            return ()
        value = matches[0]
    return value if isinstance(value, list) else (value,)


def _apply(step: Step, nodes: list[Any]) -> Iterable[Any]:
    if step.kind == "field":
        for node in nodes:
            yield from _children(node, step.name)
    elif step.kind == "where_eq":
        yield from (n for n in nodes if isinstance(n, dict) and n.get(step.name) == step.value)
    elif step.kind == "resolve_is":
        yield from (n for n in nodes if reference_type(n) == step.name)


def reference_type(node: Any) -> str | None:
    """The resource type a Reference points at, from ``type`` or its literal reference."""
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("type"), str):
        return str(node["type"])
    reference = node.get("reference")
    if not isinstance(reference, str) or reference.startswith("#"):
        return None
    parts = reference.split("?")[0].split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else None
