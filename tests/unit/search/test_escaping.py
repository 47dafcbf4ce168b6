from __future__ import annotations

from fhir_server.search.escaping import split_unescaped


def test_split_and_unescape() -> None:
    assert split_unescaped(r"a,b\,c,d\\", ",") == ["a", "b,c", "d\\"]
    assert split_unescaped(r"sys\|x|code", "|") == ["sys|x", "code"]


def test_kept_escapes_survive_for_a_later_split() -> None:
    assert split_unescaped(r"a\|b,c", ",", keep=frozenset("|")) == [r"a\|b", "c"]
