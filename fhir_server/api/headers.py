"""Security headers on every response (HTML pages set their own stricter policy)."""

from __future__ import annotations

from flask import Flask, Response


def install(app: Flask, *, tls: bool) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        if tls:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
