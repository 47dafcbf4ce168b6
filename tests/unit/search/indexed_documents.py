"""A mongomock collection of documents indexed by one parameter type's ``index``:
the pure query semantics of compiled criteria, without a store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mongomock

from fhir_server.search.index import IndexEntries


@contextmanager
def indexed_collection(
    code: str, documents: dict[str, list[Any]], index: Callable[[str, list[Any], IndexEntries], None]
) -> Iterator[Any]:
    client: Any = mongomock.MongoClient(tz_aware=True)
    docs = []
    for name, nodes in documents.items():
        out = IndexEntries()
        index(code, nodes, out)
        docs.append({"_id": name, **out.as_fields()})
    client.db.resources.insert_many(docs)
    try:
        yield client.db.resources
    finally:
        client.close()
