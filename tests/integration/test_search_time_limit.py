"""A search that runs past INTEROP_SEARCH_TIMEOUT_MS answers 400 too-costly, not 503 or a hang."""

from __future__ import annotations

import uuid

from fhir_server import create_app
from fhir_server.repository.mongo import MongoRepository
from fhir_server.search.extract import index_resource
from fhir_server.settings import Settings
from tests.integration.helpers import headers


def test_a_search_past_the_time_limit_is_too_costly(settings: Settings, repository: MongoRepository) -> None:
    docs = []
    for n in range(3000):
        id = str(uuid.uuid4())
        resource = {"resourceType": "Patient", "id": id, "name": [{"family": f"Family{n}"}]}
        docs.append(
            {
                "_id": id,
                "v": 1,
                "del": False,
                "m": "POST",
                "json": "{}",
                **index_resource("Patient", resource).as_fields(),
            }
        )
    repository._search_docs("Patient").insert_many(docs)
    assert settings.mongodb_uri
    limited = MongoRepository(settings.mongodb_uri, settings.database, query_timeout_ms=1)
    try:
        client = create_app(settings, repository=limited).test_client()
        response = client.get("/fhir/Patient?name=nobody", headers=headers())
        assert response.status_code == 400
        assert response.json["issue"][0]["code"] == "too-costly"
        # The same search without the limit answers normally.
        normal = create_app(settings, repository=repository).test_client()
        assert normal.get("/fhir/Patient?name=nobody", headers=headers()).json["total"] == 0
    finally:
        limited.close()
