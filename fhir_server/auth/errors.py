"""OAuth 2.0 errors (RFC 6749 section 5.2) inside the server's one error taxonomy.

They are :class:`~fhir_server.outcomes.FhirError` subclasses, so the FHIR renderers and
logs treat them like every other failure; the OAuth endpoints render them as the JSON
``{"error", "error_description"}`` that OAuth clients expect.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fhir_server import outcomes


class OAuthError(outcomes.FhirError):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "security"

    def __init__(self, error: str, description: str, *, status: int | None = None, **kwargs: Any) -> None:
        super().__init__(description, **kwargs)
        self.error = error
        if status is not None:
            self.status = status  # type: ignore[misc]

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.diagnostics}


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str) -> OAuthError:
    return OAuthError(
        "invalid_client", description, status=401, headers={"WWW-Authenticate": 'Basic realm="token"'}
    )


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def too_many_requests(retry_after: int) -> OAuthError:
    return OAuthError(
        "slow_down",
        f"Too many requests; retry in {retry_after} s",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


class InvalidToken(Exception):
    """An access token that does not verify (the message says why, for the 401)."""
