"""Feedback summaries per card type."""

from __future__ import annotations

from decision_support.feedback import parse, summarise


def test_summary_counts_outcomes_and_reasons_per_card_type() -> None:
    body = {
        "feedback": [
            {"card": "a", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z",
             "acceptedSuggestions": [{"id": "s1"}]},
            {"card": "b", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00+01:00",
             "overrideReason": {"reason": {"code": "patient-declined", "display": "Patient declined"}}},
            {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z",
             "overrideReason": {"reason": {"code": "patient-declined", "display": "Patient declined"},
                                "userComment": "asked twice"}},
            {"card": "zzz", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z",
             "acceptedSuggestions": []},
        ]
    }  # fmt: skip
    items = parse(body, "svc")
    assert items[2]["overrideReason"] == {
        "reason": {"code": "patient-declined", "display": "Patient declined"},
        "userComment": "asked twice",
    }
    summary = summarise(items, {"a": "ddi", "b": "ddi", "c": "renal"})
    assert summary["feedbackCount"] == 4
    assert summary["cardTypes"] == [
        {"cardType": "ddi", "accepted": 1, "overridden": 1, "total": 2, "acceptanceRate": 0.5,
         "overrideReasons": [{"reason": "Patient declined", "count": 1}]},
        {"cardType": "renal", "accepted": 0, "overridden": 1, "total": 1, "acceptanceRate": 0.0,
         "overrideReasons": [{"reason": "Patient declined", "count": 1}]},
        {"cardType": "unknown", "accepted": 1, "overridden": 0, "total": 1, "acceptanceRate": 1.0},
    ]  # fmt: skip
