"""Storage behind one interface.

:mod:`fhir_server.repository.base` defines what the services may ask of a store;
:mod:`fhir_server.repository.mongo` implements it on the MongoDB wire protocol
(MongoDB 6/7 in production, FerretDB 1.24 embedded). Nothing else imports pymongo
or mongoengine.
"""

from fhir_server.repository.base import (
    HistoryPage,
    NewVersion,
    Repository,
    StoredVersion,
    VersionClaimed,
)

__all__ = ["HistoryPage", "NewVersion", "Repository", "StoredVersion", "VersionClaimed"]
