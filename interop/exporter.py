"""``interop export``: a Bulk Data client: kick off, poll the status, fetch the files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import orjson

from interop.transport import Transport


class ExportError(Exception):
    """The server refused or failed the export."""


def _reason(body: bytes) -> str:
    try:
        issues = orjson.loads(body).get("issue") or []
        return "; ".join(str(i.get("diagnostics")) for i in issues) or body.decode(errors="replace")
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode(errors="replace")


def bulk_export(
    transport: Transport,
    directory: Path,
    *,
    types: list[str],
    since: str | None,
    level: str = "system",
    group: str | None = None,
    timeout: float = 3600,
    echo: Callable[[str], None] = lambda _m: None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, int]:
    """Run one export to completion; returns resources written per file name."""
    path = {"system": "/fhir/$export", "patient": "/fhir/Patient/$export"}.get(
        level, f"/fhir/Group/{group}/$export"
    )
    query = {k: v for k, v in (("_type", ",".join(types)), ("_since", since)) if v}
    reply = transport.request(
        "GET", path + ("?" + urlencode(query) if query else ""), headers={"Prefer": "respond-async"}
    )
    if reply.status != 202:
        raise ExportError(f"kick-off refused ({reply.status}): {_reason(reply.body)}")
    status_url = reply.headers.get("Content-Location", "")
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        reply = transport.request("GET", status_url)
        if reply.status == 200:
            break
        if reply.status != 202:
            raise ExportError(f"export failed ({reply.status}): {_reason(reply.body)}")
        if time.monotonic() > deadline:
            transport.request("DELETE", status_url)
            raise ExportError(f"export not finished after {timeout:.0f} s; cancelled")
        echo(f"export: {reply.headers.get('X-Progress', 'in progress')}")
        # Poll quickly at first, then as often as the server's Retry-After asks.
        pause = min(pause * 2, float(reply.headers.get("Retry-After", "1")))
        sleep(pause)
    manifest = orjson.loads(reply.body)
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for output in manifest["output"]:
        name = f"{output['type']}.ndjson"
        mode = "ab" if name in written else "wb"
        file_reply = transport.request("GET", output["url"], headers={"Accept": "application/fhir+ndjson"})
        if file_reply.status != 200:
            raise ExportError(f"could not fetch {output['url']} ({file_reply.status})")
        with (directory / name).open(mode) as handle:
            handle.write(file_reply.body)
        written[name] = written.get(name, 0) + int(output.get("count", 0))
    transport.request("DELETE", status_url)  # the server may drop the files now
    return written
