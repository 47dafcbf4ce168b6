"""The embedded store against the real FerretDB binary: start, write, read, stop, isolation."""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from interop import embedded_store
from interop.embedded_store import EmbeddedStore, EmbeddedStoreError


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore(tmp_path / "data") as running:
        yield running


def test_start_write_read_stop(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    uri = store.start()
    try:
        assert uri == store.uri == f"mongodb://127.0.0.1:{store.port}/?directConnection=true"
        with MongoClient(uri) as client:
            patients = client.interop_test.patients
            patients.insert_one({"_id": "p1", "name": [{"family": "Lovelace"}]})
            assert patients.find_one({"_id": "p1"}) == {"_id": "p1", "name": [{"family": "Lovelace"}]}
        port = store.port
    finally:
        store.stop()

    assert _refuses_connections(port)
    with pytest.raises(EmbeddedStoreError, match="not running"):
        _ = store.uri
    store.stop()  # idempotent
    assert list((tmp_path / "ferretdb" / "sqlite").glob("*.sqlite"))
    assert (tmp_path / "logs" / "ferretdb.log").is_file()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as first, MongoClient(first.uri) as client:
        client.interop_test.things.insert_one({"_id": "kept"})
    with EmbeddedStore(tmp_path) as second, MongoClient(second.uri) as client:
        assert client.interop_test.things.find_one({"_id": "kept"}) == {"_id": "kept"}


def test_two_stores_run_side_by_side(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "a") as a, EmbeddedStore(tmp_path / "b") as b:
        assert a.port != b.port
        with MongoClient(a.uri) as client_a, MongoClient(b.uri) as client_b:
            client_a.interop_test.things.insert_one({"_id": "only-in-a"})
            assert client_b.interop_test.things.count_documents({}) == 0
            assert client_a.interop_test.things.count_documents({}) == 1


def test_second_store_on_the_same_directory_is_refused(store: EmbeddedStore) -> None:
    with pytest.raises(EmbeddedStoreError, match="already running"):
        EmbeddedStore(store.data_dir).start()
    with MongoClient(store.uri) as client:  # the first one is untouched
        assert client.admin.command("ping")["ok"] == 1.0


def test_start_twice_is_an_error(store: EmbeddedStore) -> None:
    with pytest.raises(EmbeddedStoreError, match="already running"):
        store.start()


def test_a_binary_that_exits_fails_with_its_output(tmp_path: Path) -> None:
    fake = tmp_path / "fake-ferretdb"
    fake.write_text("#!/bin/sh\necho 'something went badly wrong' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    failing = EmbeddedStore(tmp_path / "data", binary=fake)
    with pytest.raises(EmbeddedStoreError, match=r"status 3(.|\n)*something went badly wrong"):
        failing.start()
    # The failed start released the directory: a real store can use it now.
    with EmbeddedStore(tmp_path / "data") as real, MongoClient(real.uri) as client:
        assert client.admin.command("ping")["ok"] == 1.0


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedStoreError, match="does not exist"):
        EmbeddedStore(tmp_path, binary=tmp_path / "nope").start()


def test_binary_env_var_overrides_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(embedded_store.BINARY_ENV, str(tmp_path / "from-env"))
    with pytest.raises(EmbeddedStoreError, match="from-env"):
        EmbeddedStore(tmp_path).ensure_binary()


def test_start_retries_when_a_port_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_free_ports = embedded_store._free_ports
    with socket.socket() as squatter:  # listens but never speaks MongoDB
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([[taken, real_free_ports(1)[0]]])
        monkeypatch.setattr(embedded_store, "_free_ports", lambda n: next(picks, None) or real_free_ports(n))
        with EmbeddedStore(tmp_path) as store, MongoClient(store.uri) as client:
            assert store.port != taken
            assert "address already in use" in store.log_file.read_text()
            assert client.admin.command("ping")["ok"] == 1.0
