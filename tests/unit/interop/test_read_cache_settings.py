"""INTEROP_READ_CACHE: parsed strictly; ``auto`` is on only with the embedded store."""

from __future__ import annotations

import pytest

from fhir_server.settings import Settings, SettingsError
from interop.cli import read_cache_mode


def test_the_cache_is_sized_only_when_on() -> None:
    assert Settings.from_env({}).read_cache == "auto"
    assert Settings.from_env({}).read_cache_bytes == 0  # undecided: a bare gunicorn does not cache
    on = Settings.from_env({"INTEROP_READ_CACHE": "ON", "INTEROP_READ_CACHE_MB": "8"})
    assert on.read_cache_bytes == 8 * 1024 * 1024
    assert Settings.from_env({"INTEROP_READ_CACHE": "off"}).read_cache_bytes == 0


def test_unknown_modes_and_sizes_are_refused() -> None:
    with pytest.raises(SettingsError, match="INTEROP_READ_CACHE"):
        Settings.from_env({"INTEROP_READ_CACHE": "yes"})
    with pytest.raises(SettingsError, match="INTEROP_READ_CACHE_MB"):
        Settings.from_env({"INTEROP_READ_CACHE_MB": "0"})


def test_interop_run_turns_auto_on_only_for_the_embedded_store() -> None:
    assert read_cache_mode("auto", embedded=True) == "on"
    assert read_cache_mode("auto", embedded=False) == "off"
    assert read_cache_mode("off", embedded=True) == "off"
    assert read_cache_mode("on", embedded=False) == "on"
