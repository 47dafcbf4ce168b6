"""INTEROP_MLLP_ACK_AFTER: when the listener acknowledges."""

from __future__ import annotations

import pytest

from fhir_server.settings import Settings, SettingsError
from hl7_listener.handler import Handler


def test_ack_after_defaults_to_stored_and_accepts_processed() -> None:
    assert Settings.from_env({}).mllp_ack_after == "stored"
    assert Settings.from_env({"INTEROP_MLLP_ACK_AFTER": "Processed"}).mllp_ack_after == "processed"


def test_ack_after_rejects_anything_else() -> None:
    with pytest.raises(SettingsError, match="INTEROP_MLLP_ACK_AFTER"):
        Settings.from_env({"INTEROP_MLLP_ACK_AFTER": "received"})
    with pytest.raises(ValueError, match="ack_after"):
        Handler(object(), ack_after="later")  # type: ignore[arg-type]
