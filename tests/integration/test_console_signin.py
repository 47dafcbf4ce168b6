"""Console sign-in with INTEROP_AUTH=required: the users of `interop user create`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from fhir_server import create_app
from fhir_server.auth.hashing import hash_secret
from fhir_server.repository.auth_store import USERS, AuthStore
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings


@pytest.fixture
def secured(settings: Settings, repository: MongoRepository) -> Iterator[FlaskClient]:
    store = AuthStore.of(repository)
    for name, admin in (("ada", True), ("bob", False)):
        store.insert(
            USERS,
            {
                "_id": name,
                "password_hash": hash_secret(f"{name}-secret-pw"),
                "patient": None,
                "admin": admin,
                "created": datetime.now(UTC),
            },
        )
    app = create_app(settings.with_overrides(auth="required"), repository=repository)
    yield app.test_client()
    for name in ("console_inbox",):
        if app.extensions.get(name) is not None:
            app.extensions[name].close()
    audit = getattr(app.extensions["interop"], "audit", None)
    if audit is not None:
        audit.close()


def sign_in(client: FlaskClient, user: str, password: str, next_url: str = "/console/") -> object:
    return client.post(
        "/console/signin/",
        data={"username": user, "password": password, "next": next_url},
        headers={"Sec-Fetch-Site": "same-origin"},
    )


def test_the_console_asks_administrators_to_sign_in(secured: FlaskClient) -> None:
    first = secured.get("/console/")
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/console/signin/")
    page = secured.get(first.headers["Location"])
    assert page.status_code == 200 and b'name="password"' in page.data
    assert "nonce-" in page.headers["Content-Security-Policy"]
    wrong = sign_in(secured, "ada", "not-her-password")
    assert wrong.status_code == 401 and b"wrong password" in wrong.data
    assert sign_in(secured, "nobody", "whatever-password").status_code == 401
    right = sign_in(secured, "ada", "ada-secret-pw")
    assert right.status_code == 302 and right.headers["Location"] == "/console/"
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    dashboard = secured.get("/console/")
    assert dashboard.status_code == 200
    assert b"Dashboard" in dashboard.data and b"ada" in dashboard.data
    secured.post("/console/signin/out")
    assert secured.get("/console/").status_code == 302


def test_a_user_without_the_administrator_role_is_refused(secured: FlaskClient) -> None:
    assert sign_in(secured, "bob", "bob-secret-pw").status_code == 302
    assert secured.get("/console/").status_code == 403


def test_sign_in_refuses_cross_site_posts_and_open_redirects(secured: FlaskClient) -> None:
    cross = secured.post(
        "/console/signin/",
        data={"username": "ada", "password": "ada-secret-pw"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    away = sign_in(secured, "ada", "ada-secret-pw", next_url="https://evil.example/console")
    assert away.headers["Location"] == "/console"
    assert (
        sign_in(secured, "ada", "ada-secret-pw", next_url="//evil.example/x").headers["Location"]
        == "/console/"
    )
