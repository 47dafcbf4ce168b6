"""How the ``import`` and ``export`` commands reach the server: over HTTP (``--url``, the
way to use them beside ``make run``), or in-process against INTEROP_MONGODB_URI through
the same Flask app. Both paths run the same views and services, so a transaction Bundle
is all-or-nothing either way."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fhir_server.settings import Settings

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """``url`` is absolute, or a path under the FHIR base (``/fhir/...``)."""

    def close(self) -> None: ...


class HttpTransport:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 300.0) -> None:
        self._root = base_url.rstrip("/").removesuffix("/fhir")
        self._token = token
        self._timeout = timeout

    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        full = url if url.startswith(("http://", "https://")) else self._root + url
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if body is not None:
            sent.setdefault("Content-Type", FHIR_JSON)
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(full, data=body, method=method, headers=sent)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return Reply(response.status, response.read(), dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), dict(exc.headers.items()))

    def close(self) -> None:
        return None


class InProcessTransport:
    """The server's own app, without a socket (needs INTEROP_MONGODB_URI)."""

    def __init__(self, settings: Settings) -> None:
        from fhir_server import create_app

        self._settings = settings.with_overrides(auth="disabled")  # a local, trusted caller
        self._app = create_app(self._settings)
        self._client = self._app.test_client()

    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        root = self._settings.base_url
        path = url[len(root) :] if url.startswith(root) else url
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        if body is not None:
            sent.setdefault("Content-Type", FHIR_JSON)
        response = self._client.open(path, method=method, data=body, headers=sent)
        return Reply(response.status_code, response.get_data(), dict(response.headers.items()))

    def close(self) -> None:
        self._app.extensions["interop"].repository.close()
