"""Prometheus metrics of the listener, in a registry of its own.

The listener is its own process (gunicorn workers serve ``/metrics`` for HTTP), so it
exposes these on ``INTEROP_MLLP_METRICS_PORT``. Each :class:`Metrics` owns its registry, so
several listeners in one test process do not collide.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "hl7_messages_received", "Frames received, by message type", ["type"], registry=self.registry
        )
        self.acks = Counter(
            "hl7_acks_sent", "Acknowledgments sent, by MSA-1 code", ["code"], registry=self.registry
        )
        self.errors = Counter(
            "hl7_errors",
            "Failures by kind (parse, store, processing, oversized, skipped_bytes)",
            ["kind"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hl7_duplicates", "Messages received again (same sender, MSH-10)", registry=self.registry
        )
        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
        self.ack_latency = Histogram(
            "hl7_ack_latency_seconds",
            "Time from a complete frame to its ACK (parse, durable intake; with "
            "INTEROP_MLLP_ACK_AFTER=processed also processing and its outcome)",
            buckets=buckets,
            registry=self.registry,
        )
        self.processing = Histogram(
            "hl7_processing_seconds",
            "Time the injected processing (mapping and FHIR writes) takes per message",
            buckets=buckets,
            registry=self.registry,
        )
        self.processed = Counter(
            "hl7_processed_messages",
            "Processing runs by result: processed, error (recorded, reprocessable), "
            "deferred (a store failure; retried)",
            ["status"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "hl7_processing_backlog",
            "Messages stored (acknowledged) but not yet processed",
            registry=self.registry,
        )
        self.connections = Gauge("hl7_open_connections", "Open MLLP connections", registry=self.registry)

    def serve(self, host: str, port: int) -> Callable[[], None]:
        """Expose ``/metrics`` on a port of its own (a daemon thread); returns its stop."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        return stop


__all__ = ["Metrics"]
