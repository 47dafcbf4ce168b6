"""Helpers for the listener tests: a listener on a background event loop, a sending
client, sample messages, and a TCP proxy in front of the store that can be cut."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from fhir_server.settings import Settings
from hl7_listener.app import serve
from hl7_listener.client import MllpClient
from hl7_listener.handler import Process, no_processing
from hl7_listener.server import MllpServer


def adt(
    control_id: str, app: str = "LAB", facility: str = "HOSP", extra: str = "", version: str = "2.5.1"
) -> bytes:
    return (
        f"MSH|^~\\&|{app}|{facility}|EHR|MAIN|20240101120000||ADT^A01^ADT_A01|{control_id}|P|{version}{extra}\r"
        "EVN|A01|20240101120000\r"
        f"PID|1||MRN{control_id}^^^HOSP^MR||Doe^Jane||19800101|F\r"
        f"PV1|1|I|W^101^1{'|' * 16}V{control_id}^^^HOSP^VN\r"  # PV1-19: the visit number
    ).encode()


def fields(reply: bytes, segment: str) -> list[str]:
    """The fields of the first ``segment`` in a reply, HL7 numbering (MSH: [1] is '|')."""
    for line in reply.decode().split("\r"):
        parts = line.split("|")
        if parts[0] == segment:
            return ["MSH", "|", *parts[1:]] if segment == "MSH" else parts
    raise AssertionError(f"no {segment} in {reply!r}")


class RunningListener:
    """The real listener (``hl7_listener.app.serve``) on its own event loop thread."""

    def __init__(
        self, settings: Settings, process: Process = no_processing, retry_pause: float = 1.0
    ) -> None:
        self.settings = settings.with_overrides(mllp_port=0, mllp_metrics_port=0)
        self.process = process
        self.retry_pause = retry_pause
        self.loop = asyncio.new_event_loop()
        self.server: MllpServer | None = None
        self._stop: asyncio.Event | None = None
        self._done: Future[None] = Future()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RunningListener:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("listener did not start")
        if self._done.done():
            self._done.result()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return self.server.address

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()

            def ready(server: MllpServer) -> None:
                self.server = server
                self._ready.set()

            await serve(
                self.settings, self.process, ready=ready, stop=self._stop, retry_pause=self.retry_pause
            )

        try:
            self.loop.run_until_complete(main())
            self._done.set_result(None)
        except BaseException as exc:
            self._done.set_exception(exc)
        finally:
            self._ready.set()
            self.loop.close()

    def stop(self) -> None:
        if self._stop is not None and not self._done.done():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self._done.result(0)

    def drain(self, timeout: float = 60.0) -> None:
        """Block until the background processor has processed everything acknowledged
        (nothing queued, running or left in the inbox by a scan); a deadline, not a pause."""
        assert self.server is not None
        processor = self.server.handler.processor
        done = asyncio.run_coroutine_threadsafe(processor.wait_idle(timeout), self.loop)
        if not done.result(timeout + 10):
            raise TimeoutError(f"processing backlog not drained in {timeout} s: {processor.backlog}")

    def wait_for_connections(self, count: int, timeout: float = 30.0) -> None:
        """Block until the server has exactly ``count`` open connections."""
        deadline = time.monotonic() + timeout
        while self.call(lambda: self.server.open_connections if self.server else -1) != count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still not {count} open connections")
            time.sleep(0.01)  # a poll of the condition, not a guess at timing

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the listener's loop (to read state safely)."""
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(func())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(10)


def send(address: tuple[str, int], messages: Sequence[bytes], **client: Any) -> list[bytes]:
    """Send messages over one connection, one at a time; the replies."""

    async def go() -> list[bytes]:
        async with MllpClient(*address, **client) as c:
            return [await c.send(m) for m in messages]

    return asyncio.run(go())


class StoreProxy:
    """A TCP relay to the store that the test can cut (an outage) and restore, on one port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self._open.clear()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()


def host_port(uri: str) -> tuple[str, int]:
    hostport = uri.split("//", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


@contextlib.contextmanager
def listening(settings: Settings, process: Process = no_processing) -> Iterator[RunningListener]:
    with RunningListener(settings, process) as listener:
        yield listener
