"""Configuration, read once from the environment into a typed, immutable object.

This is the only module that reads ``os.environ``; everything else receives a
:class:`Settings`. Variable names and defaults are part of the public contract
(docs/CONTRACT.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from fhir_server.outcomes import InvalidRequest

AUTH_MODES = ("required", "disabled")


class SettingsError(ValueError):
    """A configuration value that cannot be used; the process should not start."""


@dataclass(frozen=True)
class Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2575
    mongodb_uri: str | None = None
    database: str = "interop"
    data_dir: Path = Path("./var")
    auth: str = "required"
    base_url_override: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024
    max_bundle_entries: int = 10_000
    log_level: str = "INFO"
    http_workers: int = 4
    history_page_size: int = 50
    history_max_page_size: int = 1000
    # CDS Hooks clients we trust: (issuer, JWKS URL) pairs (INTEROP_CDS_TRUSTED_ISSUERS, a JSON object).
    cds_trusted_issuers: tuple[tuple[str, str], ...] = ()

    @property
    def base_url(self) -> str:
        """Public URL of the server root (without ``/fhir``), no trailing slash."""
        if self.base_url_override:
            return self.base_url_override.rstrip("/")
        return f"http://{self.http_host}:{self.http_port}"

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def text(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        def integer(name: str, default: int, low: int = 1, high: int = 2**31) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError as exc:
                raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
            if not low <= value <= high:
                raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
            return value

        auth = text("INTEROP_AUTH", "required").lower()
        if auth not in AUTH_MODES:
            raise SettingsError(f"INTEROP_AUTH must be one of {AUTH_MODES}, got {auth!r}")
        return cls(
            http_host=text("INTEROP_HTTP_HOST", "127.0.0.1"),
            http_port=integer("INTEROP_HTTP_PORT", 8080, 0, 65535),
            mllp_host=text("INTEROP_MLLP_HOST", "127.0.0.1"),
            mllp_port=integer("INTEROP_MLLP_PORT", 2575, 0, 65535),
            mongodb_uri=env.get("INTEROP_MONGODB_URI", "").strip() or None,
            database=text("INTEROP_MONGODB_DATABASE", "interop"),
            data_dir=Path(text("INTEROP_DATA_DIR", "./var")),
            auth=auth,
            base_url_override=env.get("INTEROP_BASE_URL", "").strip() or None,
            max_body_bytes=integer("INTEROP_MAX_BODY_BYTES", 16 * 1024 * 1024),
            max_bundle_entries=integer("INTEROP_MAX_BUNDLE_ENTRIES", 10_000, 1),
            log_level=text("INTEROP_LOG_LEVEL", "INFO").upper(),
            http_workers=integer("INTEROP_HTTP_WORKERS", 4, 1, 256),
            cds_trusted_issuers=_issuers(env.get("INTEROP_CDS_TRUSTED_ISSUERS", "")),
        )


def _issuers(raw: str) -> tuple[tuple[str, str], ...]:
    """``{"issuer": "jwks url", ...}``: the CDS clients whose signed JWTs we accept."""
    if not raw.strip():
        return ()
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise SettingsError("INTEROP_CDS_TRUSTED_ISSUERS must be a JSON object") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith(("https://", "http://"))
        for k, v in value.items()
    ):
        raise SettingsError("INTEROP_CDS_TRUSTED_ISSUERS must map each issuer to its JWKS URL")
    return tuple(sorted(value.items()))


__all__ = ["InvalidRequest", "Settings", "SettingsError"]
