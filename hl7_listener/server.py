"""The MLLP server: sockets, limits, TLS and shutdown; frames go to the handler.

Our own asyncio server, because senders keep connections open for days and send message
after message: each connection reads frames and hands them to the handler one at a time,
so the replies of one connection come back in the order its messages came; connections
are independent of each other (and share the handler's group commit).

* **Limits:** a connection over ``max_connections`` is closed at once; one idle longer
  than ``idle_timeout`` is closed; a frame larger than ``max_message_bytes`` gets a NAK
  (AR, ERR 207 naming the limit) and the connection is closed, since the rest of the
  stream cannot be trusted.
* **TLS** and mutual TLS come as an ``ssl.SSLContext`` (:func:`tls_context`).
* **Shutdown** (:meth:`MllpServer.shutdown`, SIGTERM in the CLI): stop accepting, close
  idle connections, let each busy one finish and answer its current message, then close;
  what is still running after ``drain_timeout`` is cancelled. A message cut off that way
  got no ACK, so its sender resends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from hl7_listener import ack
from hl7_listener.ack import ErrorDetail
from hl7_listener.handler import Handler
from hl7_listener.mllp import Frame, FrameDecoder, Oversized, Skipped, encode

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    max_message_bytes: int = 1024 * 1024
    idle_timeout: float = 300.0
    max_connections: int = 100
    drain_timeout: float = 30.0
    tls: ssl.SSLContext | None = None


def tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """Server-side TLS; with ``client_ca``, mutual TLS: clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Connection:
    __slots__ = ("busy", "closing", "task")

    def __init__(self, task: asyncio.Task[None]) -> None:
        self.task = task
        self.busy = False
        self.closing = False


class MllpServer:
    def __init__(self, handler: Handler, config: ServerConfig) -> None:
        self.handler = handler
        self.config = config
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): with port 0 in the config, the one the kernel chose."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> tuple[str, int]:
        self._server = await asyncio.start_server(
            self._accept,
            self.config.host,
            self.config.port,
            ssl=self.config.tls,
            ssl_handshake_timeout=10.0 if self.config.tls else None,
            reuse_address=True,
            limit=READ_SIZE,
        )
        log.info("MLLP listening on %s:%d%s", *self.address, " (TLS)" if self.config.tls else "")
        return self.address

    async def shutdown(self) -> None:
        """Stop accepting, finish in-flight messages, close every connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections.values()):
            connection.closing = True
            if not connection.busy:
                connection.task.cancel()
        tasks = [c.task for c in self._connections.values()]
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=self.config.drain_timeout)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*still_running, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if self._stopping or len(self._connections) >= self.config.max_connections:
            log.warning("refusing connection from %s: %d connections open", remote, len(self._connections))
            self.handler.metrics.errors.labels("connection_limit").inc()
            await _close(writer)
            return
        connection = _Connection(task)
        self._connections[task] = connection
        self.handler.metrics.connections.inc()
        try:
            await self._serve(connection, reader, writer, remote)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("connection from %s ended: %s", remote, exc)
        finally:
            self.handler.metrics.connections.dec()
            del self._connections[task]
            await _close(writer)

    async def _serve(
        self, connection: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, remote: str
    ) -> None:
        decoder = FrameDecoder(self.config.max_message_bytes)
        while not connection.closing:
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), self.config.idle_timeout)
            except TimeoutError:
                log.info("closing idle connection from %s", remote)
                return
            if not data:
                return
            for event in decoder.feed(data):
                if isinstance(event, Frame):
                    connection.busy = True
                    try:
                        reply = await self.handler.handle(event.payload, remote)
                        if reply.ack is not None:
                            writer.write(encode(reply.ack))
                            await writer.drain()
                    finally:
                        connection.busy = False
                    if reply.close or connection.closing:
                        return
                elif isinstance(event, Skipped):
                    self.handler.metrics.errors.labels("skipped_bytes").inc(event.count)
                    log.warning(
                        "skipped %d byte(s) outside MLLP frames from %s: %r",
                        event.count,
                        remote,
                        event.preview,
                    )
                elif isinstance(event, Oversized):
                    self.handler.metrics.errors.labels("oversized").inc()
                    log.warning("message from %s exceeds %d bytes; NAK and close", remote, event.limit)
                    detail = ErrorDetail(
                        ack.APPLICATION_INTERNAL_ERROR,
                        f"message exceeds the maximum size of {event.limit} bytes",
                    )
                    nak = ack.build(ack.MINIMAL, "AR", [detail])
                    self.handler.metrics.acks.labels("AR").inc()
                    writer.write(encode(nak.encode()))
                    await writer.drain()
                    return


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5.0)


__all__ = ["MllpServer", "ServerConfig", "tls_context"]
