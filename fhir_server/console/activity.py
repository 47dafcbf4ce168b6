"""Request counts per minute for the dashboard, kept in this process (last hour).

Each gunicorn worker counts its own requests; the dashboard says so. A shared figure
across workers belongs to ``/metrics`` and a Prometheus server, not to a page.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from flask import Flask, Response, request

WINDOW_MINUTES = 60


class RequestActivity:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minutes: deque[list[int]] = deque(maxlen=WINDOW_MINUTES)  # [minute, total, 4xx, 5xx]

    def record(self, status: int, now: float | None = None) -> None:
        minute = int((now if now is not None else time.time()) // 60)
        with self._lock:
            if not self._minutes or self._minutes[-1][0] != minute:
                self._minutes.append([minute, 0, 0, 0])
            row = self._minutes[-1]
            row[1] += 1
            row[2] += 400 <= status < 500
            row[3] += status >= 500

    def summary(self) -> dict[str, Any]:
        with self._lock:
            rows = [list(r) for r in self._minutes]
        return {
            "minutes": [time.strftime("%H:%M", time.gmtime(r[0] * 60)) for r in rows],
            "total": [r[1] for r in rows],
            "client_errors": [r[2] for r in rows],
            "server_errors": [r[3] for r in rows],
            "requests": sum(r[1] for r in rows),
            "errors": sum(r[2] + r[3] for r in rows),
        }


def install(app: Flask) -> None:
    activity = RequestActivity()
    app.extensions["console_activity"] = activity

    @app.after_request
    def count(response: Response) -> Response:
        if not request.path.startswith("/console/static"):
            activity.record(response.status_code)
        return response
