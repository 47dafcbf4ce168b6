"""``interop hl7``: the MLLP listener process, an MLLP sender, the inbox and replay."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from interop.running_store import with_store

if TYPE_CHECKING:
    from fhir_server.settings import Settings

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _settings() -> Settings:
    from interop.cli import _load_settings

    return _load_settings()


def _since(value: str | None) -> datetime | None:
    """``2h``, ``30m``, ``7d`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    if not value:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"expected 2h, 30m, 7d or an ISO date/time, got {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


DEFAULT_PROCESS = "hl7_listener.processing:process"
_PROCESS_HELP = (
    "Processing as module:function (default: map to FHIR and store, "
    f"{DEFAULT_PROCESS}; 'none': store and mark processed only)."
)


@click.group()
def hl7() -> None:
    """HL7 v2 over MLLP: the listener, a sender, the inbox of received messages."""


@hl7.command()
@click.option("--process", "process_spec", default=DEFAULT_PROCESS, help=_PROCESS_HELP)
def listen(process_spec: str | None) -> None:
    """Run the MLLP listener in the foreground until Ctrl-C or SIGTERM.

    Listens on INTEROP_MLLP_HOST:INTEROP_MLLP_PORT (INTEROP_MLLP_* for limits, TLS,
    metrics and INTEROP_MLLP_ACK_AFTER); needs INTEROP_MONGODB_URI. Prints "MLLP listening
    on HOST:PORT" once ready. Messages are acknowledged once durably stored and processed
    in the background (in order per sender); stored messages an earlier run left
    unprocessed are processed at start. On SIGTERM the message in hand on each connection
    is answered and each processing lane finishes its current message; the rest waits in
    the inbox for the next start.
    """
    from hl7_listener.app import load_process, serve
    from hl7_listener.server import MllpServer

    settings = with_store(_settings())
    assert settings.mongodb_uri
    process = load_process(process_spec)

    def ready(server: MllpServer) -> None:
        host, port = server.address
        click.echo(f"MLLP listening on {host}:{port}")
        sys.stdout.flush()

    asyncio.run(serve(settings, process, ready=ready))


@hl7.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--host", default=None, help="Listener host [default: INTEROP_MLLP_HOST].")
@click.option("--port", type=int, default=None, help="Listener port [default: INTEROP_MLLP_PORT].")
@click.option("--tls", is_flag=True, help="Connect with TLS.")
@click.option("--tls-ca", default=None, help="CA file to verify the server (default: system CAs).")
@click.option("--tls-cert", default=None, help="Client certificate (mutual TLS).")
@click.option("--tls-key", default=None, help="Client key (mutual TLS).")
@click.option("--insecure", is_flag=True, help="With --tls: do not verify the server certificate.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the progress and the summary, not each ACK.")
def send(
    files: tuple[Path, ...],
    host: str | None,
    port: int | None,
    tls: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    insecure: bool,
    quiet: bool,
) -> None:
    """Send the HL7 messages in FILE... over one MLLP connection and print each ACK.

    A file may hold many messages (separated by blank lines or just the next MSH; CR, LF or
    CRLF segment ends; or MLLP-framed). Exits 1 if any message was not accepted (AA/CA).
    """
    from hl7_listener.client import MllpClient, ack_code, client_tls_context, split_messages
    from hl7_listener.mllp import encode

    settings = _settings()
    messages = [m for f in files for m in split_messages(f.read_bytes())]
    context = client_tls_context(tls_ca, tls_cert, tls_key, verify=not insecure) if tls else None
    target = (host or settings.mllp_host, port if port is not None else settings.mllp_port)

    async def go() -> dict[str, int]:
        counts: dict[str, int] = {}
        started = time.monotonic()
        async with MllpClient(*target, tls=context) as client:
            for n, message in enumerate(messages, 1):
                condition = _accept_ack_condition(message)
                if condition in ("NE", "ER"):
                    # Enhanced mode: NE asks for no accept ACK at all, ER only on an error.
                    await client.send_raw(encode(message))
                    try:
                        if condition == "NE":
                            raise TimeoutError
                        reply = await asyncio.wait_for(client.receive(), 2.0)
                    except TimeoutError:
                        counts["sent"] = counts.get("sent", 0) + 1
                        if not quiet:
                            click.echo(f"(no ACK requested: MSH-15 {condition})")
                        continue
                else:
                    reply = await client.send(message)
                code = ack_code(reply) or "?"
                counts[code] = counts.get(code, 0) + 1
                if not quiet:
                    click.echo(reply.replace(b"\r", b"\n").decode(errors="replace"))
                if n % 100 == 0 or n == len(messages):
                    rate = n / max(time.monotonic() - started, 1e-9)
                    click.echo(f"{n}/{len(messages)} sent ({rate:.0f}/s)", err=True)
        return counts

    try:
        counts = asyncio.run(go())
    except (OSError, TimeoutError) as exc:
        raise click.ClickException(f"MLLP {target[0]}:{target[1]}: {exc}") from exc
    summary = ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
    click.echo(f"{len(messages)} message(s): {summary}", err=True)
    if set(counts) - {"AA", "CA", "sent"}:
        sys.exit(1)


def _accept_ack_condition(message: bytes) -> str:
    """MSH-15 of an outgoing message (empty when it cannot be read: wait for the ACK)."""
    from mappings.errors import ParseError
    from mappings.message import parse

    try:
        return parse(message).accept_ack_type.upper()
    except ParseError:
        return ""


@hl7.command()
@click.option("--status", type=click.Choice(["received", "processed", "error"]), default=None)
@click.option("--since", default=None, help="Only messages received since: 2h, 30m, 7d or an ISO date/time.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
def inbox(status: str | None, since: str | None, limit: int) -> None:
    """List recent received messages and their status, newest first."""
    from fhir_server.repository.inbox import MongoInbox

    settings = with_store(_settings())
    assert settings.mongodb_uri
    store = MongoInbox(settings.mongodb_uri, settings.database)
    try:
        records = store.list_recent(status, _since(since), limit)
    finally:
        store.close()
    for r in records:
        detail = r.error or ",".join(r.resources)
        click.echo(
            f"{r.received:%Y-%m-%d %H:%M:%S} {r.status:<9} {r.ack or '-':<2} {r.message_type:<8} "
            f"{r.sending_application}/{r.sending_facility} {r.control_id} {r.remote} {detail}".rstrip()
        )


@hl7.command()
@click.option(
    "--status", type=click.Choice(["received", "processed", "error"]), default="error", show_default=True
)
@click.option("--since", default=None, help="Only messages received since: 2h, 30m, 7d or an ISO date/time.")
@click.option("--limit", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--process", "process_spec", default=DEFAULT_PROCESS, help=_PROCESS_HELP)
def replay(status: str, since: str | None, limit: int, process_spec: str | None) -> None:
    """Run stored messages through processing again (by default those that failed)."""
    from concurrent.futures import ThreadPoolExecutor

    from fhir_server.repository.inbox import MongoInbox
    from hl7_listener.app import load_process
    from hl7_listener.handler import Handler

    settings = with_store(_settings())
    assert settings.mongodb_uri
    store = MongoInbox(settings.mongodb_uri, settings.database)

    async def go() -> dict[str, int]:
        with ThreadPoolExecutor(4) as executor:
            handler = Handler(store, load_process(process_spec), executor=executor)
            counts: dict[str, int] = {}
            for record in reversed(store.list_recent(status, _since(since), limit)):
                result = await handler.reprocess(record)
                counts[result] = counts.get(result, 0) + 1
                click.echo(
                    f"{record.control_id} {record.sending_application}/{record.sending_facility}: {result}"
                )
            return counts

    try:
        counts = asyncio.run(go())
    finally:
        store.close()
    click.echo(
        f"replayed {sum(counts.values())}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    )


__all__ = ["hl7"]
