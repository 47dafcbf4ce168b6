"""Where missing prefetch data comes from: this server's services, or the client's FHIR server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import requests

from decision_support.hooks import CdsRequest
from decision_support.prefetch import Fetcher
from fhir_server import outcomes
from fhir_server.search.request import parse_query_string
from fhir_server.services.resources import ResourceService

REMOTE_TIMEOUT = (2.0, 5.0)  # connect, read (seconds): a CDS answer is wanted within ~500 ms
REMOTE_MAX_RESULTS = 100


class LocalFetcher:
    """Runs prefetch queries through the same search service as REST (one parser, one engine)."""

    def __init__(self, resources: ResourceService, base_url: str) -> None:
        self._resources = resources
        self._base_url = base_url

    def __call__(self, query: str) -> dict[str, Any] | None:
        path, _, params = query.partition("?")
        path = path.strip("/")
        if not params and path.count("/") == 1:
            resource_type, id = path.split("/")
            try:
                return self._resources.read(resource_type, id).resource
            except (outcomes.NotFound, outcomes.Gone):
                return None
        request = parse_query_string(path, params, strict=False)
        found = self._resources.search(request, base_url=self._base_url)
        entries = [{"resource": m.resource} for m in [*found.matches, *found.included] if m.resource]
        return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


class RemoteFetcher:
    """Reads from the client's FHIR server with the token it lent us (timeouts; no retries)."""

    def __init__(self, base_url: str, token: str, session: requests.Session | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        self._session = session or requests.Session()

    def __call__(self, query: str) -> dict[str, Any] | None:
        url = f"{self._base}/{query.lstrip('/')}"
        try:
            response = self._session.get(url, headers=self._headers, timeout=REMOTE_TIMEOUT)
        except requests.RequestException as exc:
            raise outcomes.PreconditionFailed(
                f"The FHIR server could not be reached: {type(exc).__name__}"
            ) from exc
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            raise outcomes.PreconditionFailed(
                f"The FHIR server answered {response.status_code} to a prefetch query"
            )
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise outcomes.PreconditionFailed("The FHIR server answered with invalid JSON") from exc
        return body if isinstance(body, dict) else None


def fetcher_factory(resources: ResourceService, own_base: str) -> Callable[[CdsRequest], Fetcher | None]:
    """Choose per request: ours when fhirServer is absent or ours, remote with a token, else none.
    Remote reads share one connection pool per app."""
    local = LocalFetcher(resources, own_base)
    own = own_base.rstrip("/")
    session = requests.Session()

    def choose(request: CdsRequest) -> Fetcher | None:
        if request.fhir_server is None or request.fhir_server.rstrip("/") == own:
            return local
        if request.fhir_authorization is None:
            return None
        return RemoteFetcher(request.fhir_server, request.fhir_authorization.access_token, session)

    return choose
