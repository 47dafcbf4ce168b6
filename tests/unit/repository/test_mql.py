"""The Python evaluator agrees with MongoDB semantics on the operators the compiler emits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.repository import mql

D = datetime(2020, 1, 1, tzinfo=UTC)
DOC = {
    "_id": "a",
    "ix": ["gender\x1fc\x1ffemale", "name\x1fs\x1fanna"],
    "ir": [
        {"p": "date", "lo": D, "hi": datetime(2020, 1, 2, tzinfo=UTC)},
        {"p": "value", "lo": 5.0, "hi": 5.0},
    ],
    "so": {"name": ["anna", "zed"]},
    "flag": True,
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"ix": "gender\x1fc\x1ffemale"}, True),
        ({"ix": "gender\x1fc\x1fmale"}, False),
        ({"ix": {"$in": ["x", "name\x1fs\x1fanna"]}}, True),
        ({"ix": {"$nin": ["name\x1fs\x1fanna"]}}, False),
        ({"ix": {"$ne": "x"}}, True),
        ({"ix": {"$regex": "^name\x1fs\x1fan"}}, True),
        ({"ix": {"$regex": "^name\x1fs\x1fnn"}}, False),
        (
            {
                "ir": {
                    "$elemMatch": {
                        "p": "date",
                        "lo": {"$gte": D},
                        "hi": {"$lte": datetime(2020, 1, 3, tzinfo=UTC)},
                    }
                }
            },
            True,
        ),
        # bounds of different entries must not combine
        ({"ir": {"$elemMatch": {"p": "date", "lo": {"$gte": 4.0}}}}, False),
        ({"ir.lo": {"$gte": 4.0}}, True),
        ({"ir.p": {"$ne": "value"}}, False),
        ({"$nor": [{"ix": "gender\x1fc\x1ffemale"}]}, False),
        ({"$or": [{"ix": "x"}, {"_id": "a"}]}, True),
        ({"$and": [{"ix": "x"}, {"_id": "a"}]}, False),
        ({"missing": {"$exists": False}}, True),
        ({"flag": 1}, False),  # booleans are not numbers
        ({"ir.lo": {"$gt": "a"}}, False),  # comparisons stay within a type
    ],
)
def test_matches(query: dict, expected: bool) -> None:
    assert mql.matches(query, DOC) is expected


def test_without_drops_only_elem_match_clauses() -> None:
    query = {"$and": [{"ix": "a"}, {"ir": {"$elemMatch": {"p": "x"}}}]}
    assert mql.without(query, "$elemMatch") == {"$and": [{"ix": "a"}]}
    assert mql.without({"$or": [{"ir": {"$elemMatch": {"p": 1}}}]}, "$elemMatch") == {}


def test_sort_uses_smallest_ascending_and_largest_descending() -> None:
    docs = [{"_id": "a", "so": {"n": ["b", "y"]}}, {"_id": "b", "so": {"n": "m"}}, {"_id": "c"}]
    assert [d["_id"] for d in mql.sort_documents(docs, [("so.n", 1), ("_id", 1)])] == ["c", "a", "b"]
    assert [d["_id"] for d in mql.sort_documents(docs, [("so.n", -1), ("_id", 1)])] == ["a", "b", "c"]


def test_required_ids() -> None:
    assert mql.required_ids({"_id": "a"}) == ["a"]
    assert mql.required_ids({"_id": {"$in": ["a", "b"]}}) == ["a", "b"]
    assert mql.required_ids({"$and": [{"ix": "x"}, {"_id": "a"}]}) == ["a"]
    assert mql.required_ids({"$or": [{"_id": "a"}, {"ix": "x"}]}) is None
    assert mql.required_ids({"_id": {"$nin": ["a"]}}) is None
    assert mql.required_ids({"ix": "x"}) is None


def test_required_keys_finds_an_identity_clause_at_the_top_level() -> None:
    key, other = "identifier\x1fsc\x1furn:mrn|1", "identifier\x1fsc\x1furn:mrn|2"

    def prefixes(k: str) -> bool:
        return k.startswith("identifier\x1f")

    assert mql.required_keys({"ix": key}, prefixes) == [key]
    assert mql.required_keys({"$and": [{"ix": {"$regex": "^name"}}, {"ix": key}]}, prefixes) == [key]
    assert mql.required_keys({"$or": [{"ix": key}, {"ix": other}]}, prefixes) == [key, other]
    # not required (an alternative without it), or not an identity key
    assert mql.required_keys({"$or": [{"ix": key}, {"ix": "gender\x1fc\x1fmale"}]}, prefixes) is None
    assert mql.required_keys({"ix": "gender\x1fc\x1fmale"}, prefixes) is None
    assert mql.required_keys({"$nor": [{"ix": key}]}, prefixes) is None
