"""Who is acting, and what that lets them reach: one object for every caller.

The HTTP edge builds an :class:`Access` from the bearer token of each request and makes
it current (a context variable) for the duration of the request; the services ask
:func:`current` at every read, search, include, chain, history and write. Callers that
are not requests (the HL7 listener, start-up recovery, the CLI, the audit writer) run
as :data:`SYSTEM`, the default. Why a context variable rather than a parameter on every
service method: the HL7, CDS and console components call the same services from other
branches, and the rule must hold on every path an include, a chain or a transaction
entry takes inside the services, without each hop having to remember to pass it on.

:func:`condition` turns the token's scopes into a compiled search condition: the patient
compartment for ``patient/`` scopes and the query of v2 scopes, OR-ed over the rules
that grant the interaction. Services add it to the compiled query, so paging and totals
only ever count what the token may see.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from conformance.registry import patient_compartment
from fhir_server import outcomes
from fhir_server.search.compartments import compartment_filter
from fhir_server.search.compiler import compile_search
from fhir_server.search.request import parse
from fhir_server.services.scopes import ScopeRule, parse_scopes

AUDIT_TYPE = "AuditEvent"
# Types outside the patient compartment that still list patients: never under patient/ scopes.
NOT_FOR_PATIENT_SCOPES = frozenset({"Group", AUDIT_TYPE})


@dataclass(frozen=True)
class Access:
    """The caller of one request: ``internal`` (server code), ``open`` (INTEROP_AUTH=disabled)
    or ``token`` (a verified SMART access token with its scopes)."""

    kind: str
    subject: str = ""
    client_id: str = ""
    scopes: tuple[str, ...] = ()
    rules: tuple[ScopeRule, ...] = ()
    patient: str | None = None
    admin: bool = False
    token_id: str | None = None

    @property
    def unrestricted(self) -> bool:
        return self.kind in ("internal", "open")

    @classmethod
    def from_token(
        cls,
        *,
        subject: str,
        client_id: str,
        scope: str,
        patient: str | None,
        admin: bool = False,
        token_id: str | None = None,
    ) -> Access:
        names, rules = parse_scopes(scope)
        return cls("token", subject, client_id, names, rules, patient, admin, token_id)


SYSTEM = Access("internal", subject="system")
OPEN = Access("open", subject="anonymous")

_current: contextvars.ContextVar[Access] = contextvars.ContextVar("access", default=SYSTEM)


def current() -> Access:
    return _current.get()


def set_current(access: Access) -> contextvars.Token[Access]:
    return _current.set(access)


def reset(token: contextvars.Token[Access]) -> None:
    _current.reset(token)


@contextlib.contextmanager
def acting_as(access: Access) -> Iterator[None]:
    """Run a block as someone else (e.g. a CDS prefetch on behalf of the hook's token)."""
    token = _current.set(access)
    try:
        yield
    finally:
        _current.reset(token)


def forbidden(message: str) -> outcomes.Forbidden:
    return outcomes.Forbidden(
        message, headers={"WWW-Authenticate": 'Bearer realm="fhir", error="insufficient_scope"'}
    )


_WORDS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def condition(access: Access, resource_type: str, letter: str) -> dict[str, Any] | None:
    """What ``access`` may reach of ``resource_type`` for interaction ``letter``: None for
    everything, a compiled condition for part of it; raises 403 when nothing."""
    if resource_type == AUDIT_TYPE and letter in "cud" and access.kind != "internal":
        raise forbidden("AuditEvents are written by the server only")
    if access.unrestricted:
        return None
    clauses: list[dict[str, Any]] = []
    for rule in access.rules:
        if not rule.covers(resource_type, letter):
            continue
        parts: list[dict[str, Any]] = []
        if rule.context == "patient":
            if not access.patient or resource_type in NOT_FOR_PATIENT_SCOPES:
                continue
            members = _compartment(resource_type, access.patient)
            if members is None and letter in "cud":
                continue  # not patient data: a patient may read it, not write it
            if members is not None:
                parts.append(members)
        elif rule.context == "user" and resource_type == AUDIT_TYPE and not access.admin:
            continue
        if rule.query:
            narrowed = _compiled_query(resource_type, rule.query)
            if narrowed is None:
                continue  # the scope's query does not apply to this type: it grants nothing here
            parts.append(narrowed)
        if not parts:
            return None
        clauses.append(parts[0] if len(parts) == 1 else {"$and": parts})
    if not clauses:
        raise forbidden(f"The access token does not permit {_WORDS.get(letter, letter)} on {resource_type}")
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def permitted(access: Access, resource_type: str, letter: str) -> tuple[bool, dict[str, Any] | None]:
    """(allowed at all, condition) without raising: for includes, which drop what is not allowed."""
    try:
        return True, condition(access, resource_type, letter)
    except outcomes.Forbidden:
        return False, None


def whole_store(access: Access, letter: str) -> bool:
    """Whether ``access`` reaches every resource of every type (system-wide history)."""
    if access.unrestricted:
        return True
    return any(
        rule.resource_type == "*"
        and letter in rule.letters
        and not rule.query
        and (rule.context == "system" or (rule.context == "user" and access.admin))
        for rule in access.rules
    )


@lru_cache(maxsize=4096)
def _compartment(resource_type: str, patient: str) -> dict[str, Any] | None:
    if resource_type not in patient_compartment() and resource_type != "Patient":
        return None
    return compartment_filter("Patient", patient, resource_type)


@lru_cache(maxsize=1024)
def _compiled_query(resource_type: str, pairs: tuple[tuple[str, str], ...]) -> dict[str, Any] | None:
    """A v2 scope's query as a condition on ``resource_type``; None if the type lacks its parameters."""
    try:
        return compile_search(parse(resource_type, pairs, strict=True)).filter
    except outcomes.FhirError:
        return None
