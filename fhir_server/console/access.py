"""Who may use the console: one small interface the security component plugs into.

``current_user()`` returns the signed-in :class:`ConsoleUser` or None. With
``INTEROP_AUTH=disabled`` everyone is a local administrator. Otherwise the user comes
from the provider registered as ``app.extensions["console_auth"]`` (the SMART/users
component provides it: a session login for people, with roles); without one the console
is closed (fail closed, like the FHIR API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app

ADMINISTRATOR = "administrator"


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_administrator(self) -> bool:
        return ADMINISTRATOR in self.roles


class ConsoleAuthProvider(Protocol):
    """What the security component registers as ``app.extensions["console_auth"]``."""

    def current_user(self) -> ConsoleUser | None:
        """The user of the current request (from its session cookie), or None."""

    def login_url(self, next_url: str) -> str:
        """Where to send a visitor to sign in, returning to ``next_url`` afterwards."""


LOCAL = ConsoleUser("local (INTEROP_AUTH=disabled)", frozenset({ADMINISTRATOR}))


def provider() -> ConsoleAuthProvider | None:
    found: ConsoleAuthProvider | None = current_app.extensions.get("console_auth")
    return found


def current_user() -> ConsoleUser | None:
    if current_app.config["INTEROP_SETTINGS"].auth == "disabled":
        return LOCAL
    auth = provider()
    return None if auth is None else auth.current_user()
