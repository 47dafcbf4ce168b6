"""``interop import``: FHIR Bundles and NDJSON, from files or folders, into the server.

* A transaction Bundle is posted as it is: the server commits it all or nothing.
* A batch Bundle is posted as it is: each entry succeeds or fails alone.
* Resources from NDJSON lines, collection Bundles and single-resource files are grouped
  into transactions of ``batch_size`` (``PUT Type/id`` when they carry an id, keeping it,
  else ``POST``). If a group is refused, it is sent again as a batch, so the good
  resources land and each bad one is reported with the server's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from interop.transport import Transport

SUFFIXES = (".json", ".ndjson", ".jsonl")


@dataclass
class Failure:
    where: str
    reason: str


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    failed: list[Failure] = field(default_factory=list)
    files: int = 0

    def line(self) -> str:
        return (
            f"{self.files} file(s): {self.created} created, {self.updated} updated, {len(self.failed)} failed"
        )


@dataclass
class Item:
    where: str
    resource: Any


def files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def _reason(body: bytes) -> str:
    try:
        outcome = orjson.loads(body)
        issues = outcome.get("issue") or []
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues) or "no reason given"
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace") or "no reason given"


class Importer:
    def __init__(
        self, transport: Transport, *, batch_size: int = 500, progress: Callable[[int], None] | None = None
    ) -> None:
        self._transport = transport
        self._batch_size = batch_size
        self._progress = progress or (lambda _n: None)
        self.summary = Summary()

    def run(self, files: list[Path]) -> Summary:
        for path in files:
            self.summary.files += 1
            if path.suffix == ".json":
                self._json_file(path)
            else:
                self._ndjson_file(path)
        return self.summary

    # -- sources -------------------------------------------------------------------------

    def _json_file(self, path: Path) -> None:
        data = path.read_bytes()
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self.summary.failed.append(Failure(str(path), f"not valid JSON: {exc}"))
            self._progress(len(data))
            return
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            kind = document.get("type")
            if kind in ("transaction", "batch"):
                self._post_bundle(document, str(path))
            else:
                entries = document.get("entry") or []
                items = [Item(f"{path} entry {i}", e.get("resource")) for i, e in enumerate(entries)]
                self._in_groups(iter(items))
        else:
            self._in_groups(iter([Item(str(path), document)]))
        self._progress(len(data))

    def _ndjson_file(self, path: Path) -> None:
        def lines() -> Iterator[Item]:
            with path.open("rb") as handle:
                for number, line in enumerate(handle, 1):
                    self._progress(len(line))
                    if not line.strip():
                        continue
                    where = f"{path}:{number}"
                    try:
                        yield Item(where, orjson.loads(line))
                    except orjson.JSONDecodeError as exc:
                        self.summary.failed.append(Failure(where, f"not valid JSON: {exc}"))

        self._in_groups(lines())

    # -- sending -------------------------------------------------------------------------

    def _in_groups(self, items: Iterator[Item]) -> None:
        group: list[Item] = []
        for item in items:
            if not isinstance(item.resource, dict) or not item.resource.get("resourceType"):
                self.summary.failed.append(Failure(item.where, "not a FHIR resource"))
                continue
            group.append(item)
            if len(group) >= self._batch_size:
                self._send_group(group)
                group = []
        if group:
            self._send_group(group)

    def _send_group(self, group: list[Item]) -> None:
        entries = [_entry(item.resource) for item in group]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        reply = self._post(bundle)
        if reply.status == 200:
            self._count(orjson.loads(reply.body), [i.where for i in group])
            return
        # Refused as a whole: send the same entries as a batch to learn which ones fail.
        bundle["type"] = "batch"
        reply = self._post(bundle)
        if reply.status != 200:
            self.summary.failed += [Failure(i.where, _reason(reply.body)) for i in group]
            return
        self._count(orjson.loads(reply.body), [i.where for i in group])

    def _post_bundle(self, bundle: dict[str, Any], where: str) -> None:
        entries = bundle.get("entry") or []
        places = [f"{where} entry {i}" for i in range(len(entries))]
        reply = self._post(bundle)
        if reply.status != 200:
            reason = _reason(reply.body)
            if bundle.get("type") == "transaction":
                reason = f"transaction refused, nothing written: {reason}"
            self.summary.failed += [Failure(p, reason) for p in places] or [Failure(where, reason)]
            return
        self._count(orjson.loads(reply.body), places)

    def _post(self, bundle: dict[str, Any]) -> Any:
        return self._transport.request("POST", "/fhir", body=orjson.dumps(bundle))

    def _count(self, response: dict[str, Any], places: list[str]) -> None:
        for entry, where in zip(response.get("entry") or [], places, strict=False):
            answer = entry.get("response") or {}
            status = str(answer.get("status", ""))
            if status.startswith("201"):
                self.summary.created += 1
            elif status.startswith("2"):
                self.summary.updated += 1
            else:
                outcome = answer.get("outcome")
                reason = _reason(orjson.dumps(outcome)) if outcome else status
                self.summary.failed.append(Failure(where, reason))


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    resource_type, id = resource["resourceType"], resource.get("id")
    if id:
        return {"resource": resource, "request": {"method": "PUT", "url": f"{resource_type}/{id}"}}
    return {"resource": resource, "request": {"method": "POST", "url": resource_type}}
