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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fhir_server.outcomes import InvalidRequest

AUTH_MODES = ("required", "disabled")
MLLP_STORE_ERROR_MODES = ("ae", "close")
MLLP_ACK_AFTER = ("stored", "processed")
READ_CACHE_MODES = ("auto", "on", "off")


class SettingsError(ValueError):
    """A configuration value that cannot be used; the process should not start."""


def default_workers() -> int:
    """One gunicorn process per core (at least two), each with many threads: a worker's
    concurrent writes share one store insert (repository/group_insert.py), and measured
    on 2 cores, 2 x 16 gave more creates/s and a better read share than 4 x 4."""
    return max(2, os.cpu_count() or 2)


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
    hl7_timezone: str = "UTC"
    search_timeout_ms: int = 30_000
    log_level: str = "INFO"
    http_workers: int = 2
    history_page_size: int = 50
    mllp_max_message_bytes: int = 1024 * 1024
    mllp_idle_timeout: int = 300
    mllp_max_connections: int = 100
    mllp_store_timeout_ms: int = 2000
    mllp_on_store_error: str = "ae"
    mllp_ack_after: str = "stored"  # AA once durably stored (processing behind), or after processing
    mllp_tls_cert: Path | None = None
    mllp_tls_key: Path | None = None
    mllp_tls_client_ca: Path | None = None
    mllp_metrics_port: int = 2576
    hl7_process: str | None = None  # module:function the console reprocesses HL7 messages with
    history_max_page_size: int = 1000
    # Security (issue 8): TLS for the HTTP server, auth endpoint rate limit, key rotation.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    auth_rate_per_minute: int = 60
    api_rate_per_minute: int = 6000
    key_rotation_hours: int = 24
    audit: bool = True
    # CDS Hooks clients we trust: (issuer, JWKS URL) pairs (INTEROP_CDS_TRUSTED_ISSUERS, a JSON object).
    cds_trusted_issuers: tuple[tuple[str, str], ...] = ()
    # Heads kept in memory per process (repository/head_cache.py): "on" only where every
    # writer of the database runs on this host; "auto" is on for the embedded store.
    read_cache: str = "auto"
    read_cache_mb: int = 64

    @property
    def read_cache_bytes(self) -> int:
        """What the read cache may hold in this process; 0 when off. ``auto`` is resolved
        by ``interop run`` (it knows whether it started the embedded store)."""
        return self.read_cache_mb * 1024 * 1024 if self.read_cache == "on" else 0

    @property
    def base_url(self) -> str:
        """Public URL of the server root (without ``/fhir``), no trailing slash."""
        if self.base_url_override:
            return self.base_url_override.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.http_host}:{self.http_port}"

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

        def zone(name: str, default: str) -> str:
            value = text(name, default)
            try:
                ZoneInfo(value)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                raise SettingsError(
                    f"{name} must be an IANA time zone such as Europe/Berlin, got {value!r}"
                ) from exc
            return value

        http_tls_cert = env.get("INTEROP_TLS_CERT", "").strip() or None
        http_tls_key = env.get("INTEROP_TLS_KEY", "").strip() or None
        if bool(http_tls_cert) != bool(http_tls_key):
            raise SettingsError("INTEROP_TLS_CERT and INTEROP_TLS_KEY must be set together")
        auth = text("INTEROP_AUTH", "required").lower()
        if auth not in AUTH_MODES:
            raise SettingsError(f"INTEROP_AUTH must be one of {AUTH_MODES}, got {auth!r}")
        on_store_error = text("INTEROP_MLLP_ON_STORE_ERROR", "ae").lower()
        if on_store_error not in MLLP_STORE_ERROR_MODES:
            raise SettingsError(
                f"INTEROP_MLLP_ON_STORE_ERROR must be one of {MLLP_STORE_ERROR_MODES}, got {on_store_error!r}"
            )
        ack_after = text("INTEROP_MLLP_ACK_AFTER", "stored").lower()
        if ack_after not in MLLP_ACK_AFTER:
            raise SettingsError(f"INTEROP_MLLP_ACK_AFTER must be one of {MLLP_ACK_AFTER}, got {ack_after!r}")

        read_cache = text("INTEROP_READ_CACHE", "auto").lower()
        if read_cache not in READ_CACHE_MODES:
            raise SettingsError(f"INTEROP_READ_CACHE must be one of {READ_CACHE_MODES}, got {read_cache!r}")

        def path(name: str) -> Path | None:
            raw = env.get(name, "").strip()
            return Path(raw) if raw else None

        tls_cert, tls_key = path("INTEROP_MLLP_TLS_CERT"), path("INTEROP_MLLP_TLS_KEY")
        if (tls_cert is None) != (tls_key is None):
            raise SettingsError("INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY go together")
        tls_client_ca = path("INTEROP_MLLP_TLS_CLIENT_CA")
        if tls_client_ca is not None and tls_cert is None:
            raise SettingsError("INTEROP_MLLP_TLS_CLIENT_CA (mutual TLS) needs INTEROP_MLLP_TLS_CERT/KEY")
        return cls(
            mllp_max_message_bytes=integer("INTEROP_MLLP_MAX_MESSAGE_BYTES", 1024 * 1024, 1024),
            mllp_idle_timeout=integer("INTEROP_MLLP_IDLE_TIMEOUT", 300),
            mllp_max_connections=integer("INTEROP_MLLP_MAX_CONNECTIONS", 100, 1, 100_000),
            mllp_store_timeout_ms=integer("INTEROP_MLLP_STORE_TIMEOUT_MS", 2000, 100, 600_000),
            mllp_on_store_error=on_store_error,
            mllp_ack_after=ack_after,
            mllp_tls_cert=tls_cert,
            mllp_tls_key=tls_key,
            mllp_tls_client_ca=tls_client_ca,
            mllp_metrics_port=integer("INTEROP_MLLP_METRICS_PORT", 2576, 0, 65535),
            hl7_process=env.get("INTEROP_HL7_PROCESS", "").strip() or None,
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
            hl7_timezone=zone("INTEROP_HL7_TIMEZONE", "UTC"),
            search_timeout_ms=integer("INTEROP_SEARCH_TIMEOUT_MS", 30_000, 10),
            log_level=text("INTEROP_LOG_LEVEL", "INFO").upper(),
            http_workers=integer("INTEROP_HTTP_WORKERS", default_workers(), 1, 256),
            tls_cert=Path(http_tls_cert) if http_tls_cert else None,
            tls_key=Path(http_tls_key) if http_tls_key else None,
            auth_rate_per_minute=integer("INTEROP_AUTH_RATE_LIMIT", 60, 1, 100_000),
            api_rate_per_minute=integer("INTEROP_RATE_LIMIT", 6000, 1, 10_000_000),
            key_rotation_hours=integer("INTEROP_KEY_ROTATION_HOURS", 24, 2, 24 * 365),
            cds_trusted_issuers=_issuers(env.get("INTEROP_CDS_TRUSTED_ISSUERS", "")),
            read_cache=read_cache,
            read_cache_mb=integer("INTEROP_READ_CACHE_MB", 64, 1, 1_000_000),
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
