"""Shared fixtures: the real document store, an isolated database per test, the app.

The store is the embedded FerretDB (one per pytest worker, on free ports) unless
INTEROP_MONGODB_URI points at a server; each test gets its own database, dropped after.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from fhir_server import create_app
from fhir_server.repository.inbox import MongoInbox
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("INTEROP_MONGODB_URI")
    if external:
        yield external
        return
    from interop.embedded_store import EmbeddedStore

    store = EmbeddedStore(Path(tmp_path_factory.mktemp("store")))
    uri = store.start()
    try:
        yield uri
    finally:
        store.stop()


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def settings(mongo_uri: str, database_name: str) -> Settings:
    # The read cache on, as `make run` has it: every test's reads go through it.
    return Settings(
        mongodb_uri=mongo_uri, database=database_name, auth="disabled", log_level="WARNING", read_cache="on"
    )


@pytest.fixture
def repository(settings: Settings) -> Iterator[MongoRepository]:
    assert settings.mongodb_uri
    cache = settings.read_cache_bytes
    repo = MongoRepository(settings.mongodb_uri, settings.database, read_cache_bytes=cache)
    try:
        yield repo
    finally:
        clock = repo._write_clock
        repo._client.drop_database(settings.database)
        repo.close()
        if clock is not None:
            clock.path.unlink(missing_ok=True)


@pytest.fixture
def app(settings: Settings, repository: MongoRepository) -> Iterator[Flask]:
    app = create_app(settings, repository=repository)
    yield app
    inbox = app.extensions.get("console_inbox")  # the console opens the HL7 inbox on first use
    if inbox is not None:
        inbox.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def inbox(settings: Settings) -> Iterator[MongoInbox]:
    """The HL7 inbox of the test's database (emptied and closed afterwards)."""
    assert settings.mongodb_uri
    store = MongoInbox(settings.mongodb_uri, settings.database)
    try:
        yield store
    finally:
        store.drop()
        store.close()


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The app on a real loopback socket (a free port), in a thread: for HTTP clients."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
