"""The listener process: settings in, a running MLLP server out, stopped by SIGTERM/SIGINT.

Wires the pieces together (inbox, processor with the injected processing, handler, server,
metrics). The processor runs in the background: it processes what the handler acknowledged
(``INTEROP_MLLP_ACK_AFTER=stored``), retries what a store failure deferred, and at start-up
picks up messages an earlier run stored but never processed (it died in between), while new
traffic is already accepted. SIGTERM: the server stops first (every message in hand answered),
then the processor (every message in hand finished; the rest waits in the inbox).
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
from hl7_listener.handler import Handler
from hl7_listener.processor import RETRY_PAUSE, Process, Processor, no_processing
from hl7_listener.server import MllpServer, ServerConfig, tls_context

log = logging.getLogger(__name__)

WORKER_THREADS = 8


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
    retry_pause: float = RETRY_PAUSE,
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
    processor = Processor(inbox, process, executor=executor, retry_pause=retry_pause)
    handler = Handler(
        inbox,
        executor=executor,
        close_on_store_error=settings.mllp_on_store_error == "close",
        ack_after=settings.mllp_ack_after,
        processor=processor,
    )
    server = MllpServer(handler, server_config(settings))
    stop_metrics: Callable[[], None] | None = None
    try:
        await server.start()
        if settings.mllp_metrics_port:
            stop_metrics = handler.metrics.serve(settings.mllp_host, settings.mllp_metrics_port)
        scanner = asyncio.create_task(processor.run(stop))
        if ready is not None:
            result = ready(server)
            if result is not None:
                await result
        await stop.wait()
        log.info("stopping the MLLP listener: finishing in-flight messages")
        await server.shutdown()
        await processor.close(server.config.drain_timeout)
        await asyncio.gather(scanner, return_exceptions=True)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        executor.shutdown(wait=True, cancel_futures=True)
        inbox.close()


def run(settings: Settings, process: Process = no_processing) -> None:
    """Blocking entry point of ``interop hl7 listen``."""
    asyncio.run(serve(settings, process))


__all__ = ["load_process", "run", "serve", "server_config"]
