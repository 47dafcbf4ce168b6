"""One error taxonomy for the whole server.

Every failure that reaches a client is a :class:`FhirError`. Each subclass fixes the
HTTP status and the OperationOutcome ``issue.code``; renderers (REST, batch entries,
HL7 ACKs, CDS JSON errors) turn the same object into their own shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what went wrong and where (a FHIRPath expression)."""

    diagnostics: str
    code: str = "processing"
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


class FhirError(Exception):
    """Base of the taxonomy: a status, an issue code and one or more issues."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: str | list[str] | tuple[str, ...] | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        if isinstance(expression, str):
            expression = (expression,)
        self.issues: list[Issue] = issues or [
            Issue(diagnostics, code=self.code, expression=tuple(expression or ()))
        ]
        self.headers = headers or {}

    def to_outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def information(diagnostics: str) -> dict[str, Any]:
    """A success OperationOutcome, for ``Prefer: return=OperationOutcome``."""
    return operation_outcome([Issue(diagnostics, code="informational", severity="information")])


class InvalidRequest(FhirError):
    """Malformed request: bad JSON, bad parameter, bad header (400)."""

    status = 400
    code = "invalid"


class UnknownParameter(InvalidRequest):
    """A search or query parameter the server does not support (400, strict handling)."""

    code = "not-supported"


class NotAuthenticated(FhirError):
    status = 401
    code = "login"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    code = "not-supported"


class Conflict(FhirError):
    """Version conflict or a business-rule conflict (409)."""

    status = 409
    code = "conflict"


class Gone(FhirError):
    status = 410
    code = "deleted"


class PreconditionFailed(FhirError):
    """If-Match mismatch, or a conditional operation with too many matches (412)."""

    status = 412
    code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    """A well-formed body that is not a valid FHIR resource (422)."""

    status = 422
    code = "processing"


class TooCostly(FhirError):
    """A search the store could not finish within the configured time (400, too-costly)."""

    status = 400
    code = "too-costly"


class StoreUnavailable(FhirError):
    """The document store cannot be reached; the request may be retried (503)."""

    status = 503
    code = "transient"


class InternalError(FhirError):
    status = 500
    code = "exception"


@dataclass
class ErrorList:
    """Collects issues so one response can report every problem at once."""

    issues: list[Issue] = field(default_factory=list)

    def add(self, diagnostics: str, expression: str | None = None, code: str = "invalid") -> None:
        self.issues.append(Issue(diagnostics, code=code, expression=(expression,) if expression else ()))

    def raise_if_any(self, error: type[FhirError] = Unprocessable) -> None:
        if self.issues:
            raise error(self.issues[0].diagnostics, issues=self.issues)
