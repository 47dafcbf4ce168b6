"""SMART scope parsing (v1 and v2) and what an Access grants."""

from __future__ import annotations

import pytest

from fhir_server import outcomes
from fhir_server.services import access
from fhir_server.services.scopes import ScopeError, grantable, parse_scope, parse_scopes, within


@pytest.mark.parametrize(
    ("scope", "context", "resource_type", "letters", "query"),
    [
        ("patient/Observation.read", "patient", "Observation", "rs", ()),
        ("user/*.write", "user", "*", "cud", ()),
        ("system/*.*", "system", "*", "cruds", ()),
        (
            "patient/Observation.rs?category=laboratory",
            "patient",
            "Observation",
            "rs",
            (("category", "laboratory"),),
        ),
        ("system/Patient.cruds", "system", "Patient", "cruds", ()),
        ("user/Encounter.d", "user", "Encounter", "d", ()),
    ],
)
def test_parse_scope(scope: str, context: str, resource_type: str, letters: str, query: tuple) -> None:  # type: ignore[type-arg]
    rule = parse_scope(scope)
    assert rule is not None
    assert (rule.context, rule.resource_type, rule.letters, rule.query) == (
        context,
        resource_type,
        frozenset(letters),
        query,
    )


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.sr",
        "patient/Observation.rr",
        "system/*.x",
        "user/Observation.read?x=1",
        "patient/*.",
    ],
)
def test_malformed_scopes_are_rejected(scope: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(scope)


def test_identity_scopes_grant_nothing() -> None:
    names, rules = parse_scopes("openid fhirUser launch/patient offline_access patient/*.rs")
    assert names == ("openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs")
    assert len(rules) == 1


def test_within_and_grantable() -> None:
    assert within("system/Observation.rs", "system/*.cruds")
    assert within("system/Observation.rs?category=laboratory", "system/Observation.rs")
    assert not within("system/Observation.rs", "system/Observation.rs?category=laboratory")
    assert not within("user/Observation.rs", "system/*.cruds")
    assert not within("system/Observation.cruds", "system/*.rs")
    assert grantable("system/*.rs system/Patient.c openid", "system/*.rs") == "system/*.rs"


def _token(scope: str, patient: str | None = None) -> access.Access:
    return access.Access.from_token(subject="s", client_id="c", scope=scope, patient=patient)


def test_condition_per_context() -> None:
    assert access.condition(access.SYSTEM, "Observation", "c") is None
    assert access.condition(_token("system/*.rs"), "Observation", "r") is None
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("system/*.rs"), "Observation", "c")
    compartment = access.condition(_token("patient/*.rs", "p1"), "Observation", "s")
    assert compartment is not None
    assert "Patient/p1" in str(compartment)
    # a patient scope without a patient in context grants nothing
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("patient/*.rs"), "Observation", "s")
    # non-compartment types: readable, not writable, under patient scopes; Group never
    assert access.condition(_token("patient/*.cruds", "p1"), "Practitioner", "r") is None
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("patient/*.cruds", "p1"), "Practitioner", "c")
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("patient/*.cruds", "p1"), "Group", "r")


def test_rules_are_or_ed_and_an_unrestricted_rule_wins() -> None:
    both = access.condition(
        _token("system/Observation.rs?category=laboratory system/Observation.rs?category=vital-signs"),
        "Observation",
        "s",
    )
    assert both is not None
    assert set(both) == {"$or"}
    assert (
        access.condition(_token("system/Observation.rs?category=laboratory system/*.rs"), "Observation", "s")
        is None
    )


def test_audit_events_only_for_system_or_admin_users() -> None:
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("system/*.cruds"), "AuditEvent", "c")
    with pytest.raises(outcomes.Forbidden):
        access.condition(access.OPEN, "AuditEvent", "u")
    assert access.condition(access.SYSTEM, "AuditEvent", "c") is None
    assert access.condition(_token("system/AuditEvent.rs"), "AuditEvent", "s") is None
    with pytest.raises(outcomes.Forbidden):
        access.condition(_token("user/*.rs"), "AuditEvent", "s")
    admin = access.Access.from_token(subject="s", client_id="c", scope="user/*.rs", patient=None, admin=True)
    assert access.condition(admin, "AuditEvent", "s") is None


def test_acting_as_restores_the_caller() -> None:
    assert access.current() is access.SYSTEM
    with access.acting_as(access.OPEN):
        assert access.current() is access.OPEN
    assert access.current() is access.SYSTEM


def test_a_scope_query_only_narrows_the_types_it_applies_to() -> None:
    token = _token("system/*.rs?category=laboratory system/Patient.rs")
    assert access.condition(token, "Patient", "r") is None
    assert access.condition(token, "Observation", "s") is not None
    with pytest.raises(outcomes.Forbidden):
        access.condition(token, "Practitioner", "s")  # no category parameter: the wildcard grants nothing
