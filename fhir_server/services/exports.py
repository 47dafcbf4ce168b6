"""FHIR Bulk Data ``$export`` (Bulk Data Access 2.0): jobs, their work, their files.

A kick-off stores the job and starts its work in a background thread of the process
that took the request. The worker writes NDJSON parts to the store and beats
(``heartbeat``) after each one. Threads die with their process, so a status poll (in any
process) that finds a running job whose heartbeat is older than ``STALE`` claims the
next run and starts the job again from the beginning: a restart costs the work done,
never the job. Parts have fixed names, so a rerun overwrites them.

Resources are read as they are when the worker reaches them (no snapshot at the
transaction time: a store without multi-document transactions has none to offer);
``_since`` filters on ``meta.lastUpdated``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from conformance.registry import patient_compartment
from fhir_server import outcomes
from fhir_server.repository.base import StoredVersion
from fhir_server.search.compartments import any_patient_filter, compartment_filter
from fhir_server.search.dates import parse_range
from fhir_server.services.resources import ResourceService, check_id, check_type, format_instant

log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
PAGE = 500
PART_RESOURCES = 5000
STALE = timedelta(seconds=30)
MAX_GROUP_CHUNK = 100


class ExportJobStore(Protocol):
    def create_export_job(self, job: dict[str, Any]) -> None: ...
    def export_job(self, job_id: str) -> dict[str, Any] | None: ...
    def update_export_job(self, job_id: str, changes: dict[str, Any]) -> None: ...
    def claim_export_run(self, job_id: str, run: int, at: datetime) -> bool: ...
    def put_export_file(self, job_id: str, name: str, text: str, count: int) -> None: ...
    def export_file(self, job_id: str, name: str) -> str | None: ...
    def delete_export_job(self, job_id: str) -> None: ...

    def search(
        self,
        resource_type: str,
        mongo_filter: dict[str, Any],
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[StoredVersion]: ...

    def resource_types_in_use(self) -> list[str]: ...


class Cancelled(Exception):
    """The job was cancelled or taken over by a newer run: stop quietly."""


class ExportService:
    def __init__(
        self,
        store: ExportJobStore,
        resources: ResourceService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._resources = resources
        self._clock = clock
        self._threads: dict[str, threading.Thread] = {}

    # -- the client's calls ----------------------------------------------------------------

    def kick_off(
        self,
        *,
        level: str,
        group: str | None,
        types: list[str],
        since: str | None,
        output_format: str | None,
        request_url: str,
    ) -> str:
        if output_format is not None and output_format not in OUTPUT_FORMATS:
            raise outcomes.InvalidRequest(
                f"_outputFormat '{output_format}' is not supported; use application/fhir+ndjson",
                expression="_outputFormat",
            )
        for resource_type in types:
            check_type(resource_type)
            if level != "system" and resource_type not in patient_compartment():
                raise outcomes.InvalidRequest(
                    f"{resource_type} is not in the Patient compartment", expression="_type"
                )
        if since is not None:
            parse_range(since, name="_since")
        if group is not None:
            check_id(group)
            self._resources.read("Group", group)  # 404/410 before accepting the job
        now = self._clock()
        job_id = uuid.uuid4().hex
        self._store.create_export_job(
            {
                "_id": job_id,
                "status": "in-progress",
                "level": level,
                "group": group,
                "types": types,
                "since": since,
                "request": request_url,
                "transactionTime": format_instant(now),
                "run": 0,
                "heartbeat": now,
                "progress": "queued",
                "output": [],
                "error": None,
            }
        )
        self._start(job_id, 1)
        return job_id

    def status(self, job_id: str) -> dict[str, Any]:
        job = self._job(job_id)
        heartbeat = (
            job["heartbeat"].replace(tzinfo=UTC) if job["heartbeat"].tzinfo is None else job["heartbeat"]
        )
        if job["status"] == "in-progress" and self._clock() - heartbeat > STALE:
            log.warning("export %s: its worker stopped (run %s); starting it again", job_id, job["run"])
            self._start(job_id, int(job["run"]) + 1)
        return job

    def cancel(self, job_id: str) -> None:
        self._job(job_id)
        self._store.update_export_job(job_id, {"status": "cancelled"})
        self._store.delete_export_job(job_id)

    def file(self, job_id: str, name: str) -> str:
        text = self._store.export_file(job_id, name)
        if text is None:
            raise outcomes.NotFound(f"Export {job_id} has no file '{name}'")
        return text

    def wait(self, job_id: str, timeout: float) -> None:
        """Join this process's worker of a job (tests and the in-process CLI)."""
        thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self._store.export_job(job_id) if job_id.isalnum() else None
        if job is None:
            raise outcomes.NotFound(f"No export job '{job_id}'")
        return job

    # -- the work --------------------------------------------------------------------------

    def _start(self, job_id: str, run: int) -> None:
        if not self._store.claim_export_run(job_id, run, self._clock()):
            return  # another process took this run
        self._store.update_export_job(job_id, {"run": run, "heartbeat": self._clock(), "output": []})
        thread = threading.Thread(target=self._work, args=(job_id, run), name=f"export-{job_id}", daemon=True)
        self._threads[job_id] = thread
        thread.start()

    def _work(self, job_id: str, run: int) -> None:
        try:
            job = self._check(job_id, run)
            output: list[dict[str, Any]] = []
            types = self._types(job)
            for done, resource_type in enumerate(types):
                self._export_type(job, run, resource_type, output)
                self._store.update_export_job(
                    job_id,
                    {
                        "progress": f"{done + 1} of {len(types)} types",
                        "heartbeat": self._clock(),
                        "output": output,
                    },
                )
            self._check(job_id, run)
            self._store.update_export_job(
                job_id, {"status": "completed", "progress": "done", "output": output}
            )
        except Cancelled:
            return
        except outcomes.FhirError as exc:
            self._fail(job_id, exc.diagnostics)
        except Exception as exc:  # a worker must leave a verdict behind, whatever broke
            log.exception("export %s failed", job_id)
            self._fail(job_id, f"export failed: {exc.__class__.__name__}")
        finally:
            if self._threads.get(job_id) is threading.current_thread():
                del self._threads[job_id]

    def _fail(self, job_id: str, message: str) -> None:
        if self._store.export_job(job_id) is not None:
            self._store.update_export_job(job_id, {"status": "failed", "error": message})

    def _check(self, job_id: str, run: int) -> dict[str, Any]:
        job = self._store.export_job(job_id)
        if job is None or job["status"] != "in-progress" or int(job["run"]) != run:
            raise Cancelled
        return job

    def _types(self, job: dict[str, Any]) -> list[str]:
        in_use = set(self._store.resource_types_in_use())
        wanted = job["types"] or sorted(in_use)
        if job["level"] != "system":
            wanted = [t for t in wanted if t in patient_compartment()]
        return [t for t in wanted if t in in_use]

    def _export_type(
        self, job: dict[str, Any], run: int, resource_type: str, output: list[dict[str, Any]]
    ) -> None:
        lines: list[bytes] = []
        part = 0

        def flush() -> None:
            nonlocal lines, part
            if not lines:
                return
            part += 1
            name = f"{resource_type}-{part}.ndjson"
            self._check(job["_id"], run)
            self._store.put_export_file(job["_id"], name, b"".join(lines).decode(), len(lines))
            output.append({"type": resource_type, "name": name, "count": len(lines)})
            self._store.update_export_job(job["_id"], {"heartbeat": self._clock()})
            lines = []

        for stored in self._resources_of(job, resource_type):
            if stored.raw is not None:
                lines.append(stored.raw + b"\n")
            if len(lines) >= PART_RESOURCES:
                flush()
        flush()

    def _resources_of(self, job: dict[str, Any], resource_type: str) -> Iterator[StoredVersion]:
        base: list[dict[str, Any]] = []
        if job["since"]:
            base.append({"lu": {"$gte": parse_range(job["since"], name="_since")[0]}})
        if job["level"] == "patient" and (condition := any_patient_filter(resource_type)):
            base.append(condition)
        if job["level"] != "group":
            yield from self._pages(resource_type, base)
            return
        members = self._group_patients(job["group"])
        seen: set[str] = set()
        for start in range(0, len(members), MAX_GROUP_CHUNK):
            chunk = members[start : start + MAX_GROUP_CHUNK]
            clauses = [compartment_filter("Patient", id, resource_type) for id in chunk]
            for stored in self._pages(resource_type, [*base, {"$or": clauses}]):
                if stored.id not in seen:
                    seen.add(stored.id)
                    yield stored

    def _pages(self, resource_type: str, conditions: list[dict[str, Any]]) -> Iterator[StoredVersion]:
        """Every match in ``_id`` order, a page at a time (keyset paging)."""
        last: str | None = None
        while True:
            page_conditions = conditions + ([{"_id": {"$gt": last}}] if last is not None else [])
            where: dict[str, Any] = {"$and": page_conditions} if page_conditions else {}
            page = self._store.search(resource_type, where, [("_id", 1)], 0, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1].id

    def _group_patients(self, group_id: str) -> list[str]:
        group = self._resources.read("Group", group_id).resource or {}
        found = []
        for member in group.get("member") or []:
            reference = (member.get("entity") or {}).get("reference", "")
            if reference.startswith("Patient/") and not member.get("inactive"):
                found.append(reference.split("/", 1)[1])
        return sorted(set(found))


def manifest(job: dict[str, Any], file_url: Callable[[str], str], requires_token: bool) -> dict[str, Any]:
    """The completion manifest (Bulk Data Access 2.0, "Response - Complete Status")."""
    return {
        "transactionTime": job["transactionTime"],
        "request": job["request"],
        "requiresAccessToken": requires_token,
        "output": [
            {"type": o["type"], "url": file_url(o["name"]), "count": o["count"]} for o in job["output"]
        ],
        "error": [],
    }
