"""The benchmark floor: a bare Flask app that answers a Patient read with constant bytes.

``bench/run.py`` serves it with the same gunicorn command line as the real server (same
workers, worker class, threads and config file); only the application differs. What it
measures is the cost of gunicorn + Flask + HTTP on this machine, so our read can be stated
as a fraction of the best any Flask view could do here.

The body is the exact bytes our server returned for a seeded Patient, read from the file
named by ``INTEROP_BENCH_PATIENT_FILE``. Without it (e.g. run by hand) a Patient of the
same shape as the seed is built here, with ``id`` and ``meta``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response

PATIENT_FILE_ENV = "INTEROP_BENCH_PATIENT_FILE"
CONTENT_TYPE = "application/fhir+json; charset=utf-8"


def _body() -> bytes:
    path = os.environ.get(PATIENT_FILE_ENV, "").strip()
    if path:
        return Path(path).read_bytes()
    from bench.patients import patient

    resource = patient(0)
    resource["id"] = "00000000-0000-4000-8000-000000000000"
    resource["meta"] = {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00.000Z"}
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode()


def create_app() -> Flask:
    body = _body()
    app = Flask(__name__)

    @app.get("/fhir/Patient/<id>")
    def read(id: str) -> Response:
        return Response(body, status=200, content_type=CONTENT_TYPE)

    return app
