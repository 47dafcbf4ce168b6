"""Bulk Data export jobs and their NDJSON files, kept in the store.

Keeping both in the store (not on a worker's disk) lets any gunicorn worker, on any
node, answer a status poll or serve a file. Files are written as parts of at most
``PART_RESOURCES`` resources, one document each (well under the 16 MB document limit).
Who runs a job is decided by inserting ``export_runs/{job}/{run}``: the unique ``_id``
is the one atomic primitive both stores have (see docs/architecture.md), so after a
restart exactly one process takes over a job whose worker stopped beating.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fhir_server.repository.records import replace_or_insert

JOBS = "export_jobs"
FILES = "export_files"
RUNS = "export_runs"


class ExportStore:
    """Mixed into the MongoDB repository; ``_db`` is the repository's database."""

    _db: Database[dict[str, Any]]

    def _jobs(self) -> Collection[dict[str, Any]]:
        return self._db[JOBS]

    def create_export_job(self, job: dict[str, Any]) -> None:
        self._jobs().insert_one(job)

    def export_job(self, job_id: str) -> dict[str, Any] | None:
        return self._jobs().find_one({"_id": job_id})

    def update_export_job(self, job_id: str, changes: dict[str, Any]) -> None:
        self._jobs().update_one({"_id": job_id}, {"$set": changes})

    def claim_export_run(self, job_id: str, run: int, at: datetime) -> bool:
        """True for the one caller that inserts this run's claim."""
        try:
            self._db[RUNS].insert_one({"_id": f"{job_id}/{run}", "at": at})
        except DuplicateKeyError:
            return False
        return True

    def put_export_file(self, job_id: str, name: str, text: str, count: int) -> None:
        replace_or_insert(
            self._db[FILES], {"_id": f"{job_id}/{name}", "job": job_id, "n": count, "text": text}
        )

    def export_file(self, job_id: str, name: str) -> str | None:
        found = self._db[FILES].find_one({"_id": f"{job_id}/{name}"})
        return None if found is None else str(found["text"])

    def delete_export_job(self, job_id: str) -> None:
        """The job, its files and its run claims."""
        self._db[FILES].delete_many({"job": job_id})
        self._db[RUNS].delete_many({"_id": {"$regex": f"^{job_id}/"}})
        self._jobs().delete_one({"_id": job_id})
