"""An MLLP client: send messages over one connection, one at a time, and read each ACK.

Used by ``interop hl7 send``, the tests and the benchmark. :func:`split_messages` reads
files the way interface engines write them: one message or many, segments ended by CR,
LF or CRLF, messages separated by blank lines or simply by the next ``MSH``, or already
MLLP-framed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from types import TracebackType

from hl7_listener.mllp import Frame, FrameDecoder, Oversized, encode

_SEGMENT_END = re.compile(rb"\r\n|\n|\r")


class MllpClosed(ConnectionError):
    """The server closed the connection before answering."""


def split_messages(data: bytes) -> list[bytes]:
    """The messages in a file, each with CR segment separators."""
    if b"\x0b" in data and b"\x1c\r" in data:
        return [e.payload for e in FrameDecoder(len(data) + 1).feed(data) if isinstance(e, Frame)]
    messages: list[list[bytes]] = []
    for line in _SEGMENT_END.split(data.lstrip(b"\xef\xbb\xbf")):
        if not line.strip():
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return [b"\r".join(segments) + b"\r" for segments in messages]


def client_tls_context(
    ca: str | None = None, cert: str | None = None, key: str | None = None, verify: bool = True
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class MllpClient:
    """``async with MllpClient(host, port) as c: ack = await c.send(message)``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        max_ack_bytes: int = 1024 * 1024,
    ) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self._decoder = FrameDecoder(max_ack_bytes)
        self._frames: list[bytes] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(
                self.host, self.port, ssl=self.tls, server_hostname=self.host if self.tls else None
            ),
            self.timeout,
        )

    async def send(self, message: bytes) -> bytes:
        """Send one message and return the payload of the reply frame."""
        await self.send_raw(encode(message))
        return await self.receive()

    async def send_raw(self, data: bytes) -> None:
        assert self._writer is not None, "not connected"
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self) -> bytes:
        """The next reply frame; :class:`MllpClosed` if the server closes first."""
        assert self._reader is not None, "not connected"
        while not self._frames:
            data = await asyncio.wait_for(self._reader.read(65536), self.timeout)
            if not data:
                raise MllpClosed("connection closed by the server")
            for event in self._decoder.feed(data):
                if isinstance(event, Frame):
                    self._frames.append(event.payload)
                elif isinstance(event, Oversized):
                    raise ValueError("reply larger than max_ack_bytes")
        return self._frames.pop(0)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self) -> MllpClient:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def ack_code(reply: bytes) -> str:
    """MSA-1 of an ACK (``""`` when there is no MSA)."""
    for segment in _SEGMENT_END.split(reply):
        if segment.startswith(b"MSA") and len(segment) > 4:
            return segment[4:].split(segment[3:4])[0].decode(errors="replace")
    return ""


__all__ = ["MllpClient", "MllpClosed", "ack_code", "client_tls_context", "split_messages"]
