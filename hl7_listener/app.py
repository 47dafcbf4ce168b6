"""The listener process: settings in, a running MLLP server out, stopped by SIGTERM/SIGINT.

Wires the pieces together (inbox, handler with the injected processing, server, metrics)
and runs recovery: messages stored by an earlier run but never processed (it died in
between) are processed in the background while new traffic is already accepted, and so
are messages whose processing a store failure deferred.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from fhir_server.repository.inbox import MongoInbox
from fhir_server.settings import Settings
from hl7_listener.handler import Handler, Process, no_processing
from hl7_listener.server import MllpServer, ServerConfig, tls_context

log = logging.getLogger(__name__)

WORKER_THREADS = 8
RECOVERY_PAUSE = 30.0


def load_process(spec: str | None) -> Process:
    """The processing callable named ``module:attribute``; :func:`no_processing` when None."""
    if not spec or spec == "none":
        return no_processing
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"processing must be given as module:function, got {spec!r}")
    target = getattr(importlib.import_module(module_name), attribute)
    if not callable(target):
        raise ValueError(f"{spec} is not callable")
    return target


def server_config(settings: Settings) -> ServerConfig:
    tls = None
    if settings.mllp_tls_cert is not None and settings.mllp_tls_key is not None:
        tls = tls_context(settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca)
    return ServerConfig(
        host=settings.mllp_host,
        port=settings.mllp_port,
        max_message_bytes=settings.mllp_max_message_bytes,
        idle_timeout=float(settings.mllp_idle_timeout),
        max_connections=settings.mllp_max_connections,
        tls=tls,
    )


async def serve(
    settings: Settings,
    process: Process = no_processing,
    *,
    ready: Callable[[MllpServer], Awaitable[None] | None] | None = None,
    stop: asyncio.Event | None = None,
    recovery_pause: float = RECOVERY_PAUSE,
) -> None:
    """Run until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    if not settings.mongodb_uri:
        raise ValueError("INTEROP_MONGODB_URI must point at a running store")
    loop = asyncio.get_running_loop()
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    inbox = MongoInbox(settings.mongodb_uri, settings.database, timeout_ms=settings.mllp_store_timeout_ms)
    executor = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="hl7")
    handler = Handler(
        inbox, process, executor=executor, close_on_store_error=settings.mllp_on_store_error == "close"
    )
    server = MllpServer(handler, server_config(settings))
    stop_metrics: Callable[[], None] | None = None
    try:
        await server.start()
        if settings.mllp_metrics_port:
            stop_metrics = handler.metrics.serve(settings.mllp_host, settings.mllp_metrics_port)
        recovery = asyncio.create_task(_recover(handler, recovery_pause, stop))
        if ready is not None:
            result = ready(server)
            if result is not None:
                await result
        await stop.wait()
        log.info("stopping the MLLP listener: finishing in-flight messages")
        await server.shutdown()
        # Recovery stops between two messages; one it is processing is finished first.
        done, _ = await asyncio.wait({recovery}, timeout=server.config.drain_timeout)
        if not done:
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        executor.shutdown(wait=True, cancel_futures=True)
        inbox.close()


async def _until(stop: asyncio.Event, waiting: Awaitable[object]) -> None:
    """Wait for ``waiting`` or ``stop``, whichever comes first."""
    tasks = {asyncio.ensure_future(waiting), asyncio.ensure_future(stop.wait())}
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _recover(handler: Handler, pause: float, stop: asyncio.Event) -> None:
    """Process stored-but-unprocessed messages: at start-up, then whenever processing was
    deferred by a store failure (after ``pause`` seconds), retrying while the store is
    unreachable."""
    delay = 1.0
    while not stop.is_set():
        try:
            handler.deferred.clear()
            await handler.recover(stop=stop)
            delay = 1.0
            await _until(stop, handler.deferred.wait())
            await _until(stop, asyncio.sleep(pause))  # let the store come back before scanning
        except Exception as exc:
            log.warning("recovery of unprocessed messages failed (%s); retrying in %.0f s", exc, delay)
            handler.deferred.set()
            await _until(stop, asyncio.sleep(delay))
            delay = min(delay * 2, max(pause, 1.0))


def run(settings: Settings, process: Process = no_processing) -> None:
    """Blocking entry point of ``interop hl7 listen``."""
    asyncio.run(serve(settings, process))


__all__ = ["load_process", "run", "serve", "server_config"]
