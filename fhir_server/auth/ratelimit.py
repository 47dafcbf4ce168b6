"""A per-process sliding-window limit on the auth endpoints (token, authorize, introspect).

Each gunicorn worker keeps its own window, so the effective limit is the configured rate
times the number of workers: enough to stop password and assertion guessing at speed
without a shared store round trip on every call.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int:
        """0 if the call may go ahead (and counts it), else seconds until it may."""
        now = self._clock()
        with self._lock:
            if len(self._hits) > 10_000:  # forget idle keys so memory stays bounded
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - 60}
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= self._limit:
                return max(1, math.ceil(hits[0] + 60 - now))
            hits.append(now)
            return 0
