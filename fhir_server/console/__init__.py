"""The operator console (``/console``): server-rendered pages over the same services.

Pages: dashboard, resource browser (search, JSON, history with diffs), analytics
charts, HL7 inbox (when the listener's inbox is in this build). Access goes through
:mod:`fhir_server.console.access`; charts use Chart.js, vendored as one static file.
"""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    from fhir_server.console import activity
    from fhir_server.console.views import console

    activity.install(app)
    app.register_blueprint(console)
