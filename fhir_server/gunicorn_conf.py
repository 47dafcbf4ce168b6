"""gunicorn settings shared by `interop run`, the Dockerfile and the benchmarks."""

from __future__ import annotations

import os

worker_class = os.environ.get("INTEROP_GUNICORN_WORKER_CLASS", "gthread")
threads = int(os.environ.get("INTEROP_GUNICORN_THREADS", "16"))
keepalive = 5
timeout = 60
graceful_timeout = 30
accesslog = None  # the app writes its own JSON access line with the request id
errorlog = "-"
loglevel = os.environ.get("INTEROP_LOG_LEVEL", "info").lower()
# gunicorn 27 opens a control socket at one fixed per-user path; parallel servers clash on it.
control_socket_disable = True

# gunicorn's own messages in the application's JSON shape; no duplicate access log.
logger_class = "fhir_server.gunicorn_logging.JsonLogger"


def post_worker_init(worker: object) -> None:
    from fhir_server.warmup import warm_up

    warm_up()


def ssl_context(conf: object, default_ssl_context_factory: object) -> object:
    """With --certfile/--keyfile (INTEROP_TLS_CERT/KEY): refuse anything older than TLS 1.2."""
    import ssl

    context = default_ssl_context_factory()  # type: ignore[operator]
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def worker_exit(server: object, worker: object) -> None:
    """Store the audit events still queued before the worker goes (atexit is the fallback)."""
    app = getattr(worker, "wsgi", None)
    components = getattr(app, "extensions", {}).get("interop") if app is not None else None
    audit = getattr(components, "audit", None)
    if audit is not None:
        audit.close()
