"""Which store a CLI command talks to: INTEROP_MONGODB_URI, else the embedded store a
running ``interop run`` recorded in its data directory (so ``interop hl7 inbox`` or
``interop reindex`` work from a second terminal beside ``make run``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from fhir_server.settings import Settings

STORE_URI_FILE = "store.uri"


def remember_store_uri(data_dir: Path, uri: str) -> None:
    """Where later commands find the embedded store `interop run` started."""
    path = data_dir / STORE_URI_FILE
    path.write_text(uri + "\n")
    path.chmod(0o600)


def running_store_uri(data_dir: Path) -> str | None:
    """The embedded store of a running `interop run`, if it answers."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    path = data_dir / STORE_URI_FILE
    if not path.exists():
        return None
    uri = path.read_text().strip()
    probe: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=1000)
    try:
        probe.admin.command("ping")
    except PyMongoError:
        return None
    finally:
        probe.close()
    return uri


def with_store(settings: Settings) -> Settings:
    """``settings`` with a store to talk to, or a clear error saying how to get one."""
    if settings.mongodb_uri:
        return settings
    uri = running_store_uri(settings.data_dir)
    if uri is None:
        raise click.ClickException(
            "no store to talk to: start the server (`make run`) or set INTEROP_MONGODB_URI"
        )
    return dataclasses.replace(settings, mongodb_uri=uri)
