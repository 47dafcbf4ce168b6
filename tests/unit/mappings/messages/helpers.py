"""Small helpers for mapping tests: build a message from segment lines, pick resources from a Bundle."""

from __future__ import annotations

from typing import Any

from mappings import Options, parse, to_bundle

PID = (
    "PID|1||PAT1^^^GHH^MR||Doe^Jane||19800101|F|||1 Main St^^Springfield^IL^62701^USA^H||(555)555-0100^PRN^PH"
)


def msh(kind: str, control: str = "C1", version: str = "2.5.1", when: str = "20240312083000") -> str:
    return f"MSH|^~\\&|APP|GHH|RCV|RCVFAC|{when}||{kind}|{control}|P|{version}"


def bundle(*lines: str, timezone: str = "UTC") -> dict[str, Any]:
    return to_bundle(parse("\r".join(lines)), Options(timezone=timezone))


def resources(b: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == kind]


def entries(b: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in b["entry"] if e["resource"]["resourceType"] == kind]


def one(b: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources(b, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
