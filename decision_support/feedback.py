"""Card feedback (CDS Hooks 2.0 section "Feedback"): parse, and summarise per card type.

The summary joins each feedback item to the audit record of its card, which says which rule
or model made it, so that accepted/overridden counts and override reasons are per card type.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from fhir_server import outcomes

OUTCOMES = ("accepted", "overridden")


def _bad(message: str, where: str) -> outcomes.InvalidRequest:
    return outcomes.InvalidRequest(message, expression=where)


def _timestamp(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad("outcomeTimestamp must be an ISO 8601 instant", where)
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad("outcomeTimestamp must be an ISO 8601 instant", where) from exc
    return value


def parse(body: Any, service: str) -> list[dict[str, Any]]:
    """The feedback items of a request, checked, as records to store."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise _bad("The body must be an object with a non-empty 'feedback' list", "feedback")
    records = []
    for i, item in enumerate(body["feedback"]):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            raise _bad("Each feedback item must be an object", where)
        card, outcome = item.get("card"), item.get("outcome")
        if not isinstance(card, str) or not card:
            raise _bad("card must be the uuid of a card", f"{where}.card")
        if outcome not in OUTCOMES:
            raise _bad(f"outcome must be one of {OUTCOMES}", f"{where}.outcome")
        record: dict[str, Any] = {
            "service": service,
            "card": card,
            "outcome": outcome,
            "outcomeTimestamp": _timestamp(item.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
        }
        accepted = item.get("acceptedSuggestions")
        if outcome == "accepted":
            if not isinstance(accepted, list) or not all(
                isinstance(a, dict) and a.get("id") for a in accepted
            ):
                raise _bad("acceptedSuggestions must list {id} objects", f"{where}.acceptedSuggestions")
            record["acceptedSuggestions"] = [str(a["id"]) for a in accepted]
        reason = item.get("overrideReason")
        if reason is not None:
            if outcome != "overridden" or not isinstance(reason, dict):
                raise _bad("overrideReason belongs to an overridden outcome", f"{where}.overrideReason")
            coding = reason.get("reason")
            if coding is not None and not (isinstance(coding, dict) and coding.get("code")):
                raise _bad("overrideReason.reason must be a Coding", f"{where}.overrideReason.reason")
            comment = reason.get("userComment")
            if comment is not None and not isinstance(comment, str):
                raise _bad(
                    "overrideReason.userComment must be a string", f"{where}.overrideReason.userComment"
                )
            record["overrideReason"] = {k: v for k, v in (("reason", coding), ("userComment", comment)) if v}
        records.append(record)
    return records


def summarise(items: list[dict[str, Any]], card_types: dict[str, str]) -> dict[str, Any]:
    """Per card type: how often accepted and overridden, and the override reasons given."""
    by_type: dict[str, dict[str, Any]] = {}
    reasons: dict[str, Counter[str]] = {}
    for item in items:
        kind = card_types.get(item["card"], "unknown")
        entry = by_type.setdefault(kind, {"cardType": kind, "accepted": 0, "overridden": 0})
        entry[item["outcome"]] += 1
        coding = (item.get("overrideReason") or {}).get("reason")
        if item["outcome"] == "overridden":
            label = coding.get("display") or coding["code"] if coding else "no reason given"
            reasons.setdefault(kind, Counter())[label] += 1
    summary = []
    for kind, entry in sorted(by_type.items()):
        total = entry["accepted"] + entry["overridden"]
        entry["total"] = total
        entry["acceptanceRate"] = round(entry["accepted"] / total, 3)
        if kind in reasons:
            entry["overrideReasons"] = [{"reason": r, "count": n} for r, n in reasons[kind].most_common()]
        summary.append(entry)
    return {"cardTypes": summary, "feedbackCount": len(items)}
