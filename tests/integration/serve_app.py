"""A server process for crash tests: recover, then serve the app on a free loopback port.

Run as ``python -m tests.integration.serve_app``; configured by the environment like the
real server (INTEROP_MONGODB_URI, INTEROP_MONGODB_DATABASE, INTEROP_AUTH). Prints the port
on its first line of output once it accepts connections. Start-up recovery runs first, as
``interop run`` does, so a test can kill this process at any instant and start another.
"""

from __future__ import annotations

import sys

from werkzeug.serving import make_server

from fhir_server import create_app
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    assert settings.mongodb_uri
    repository = MongoRepository(settings.mongodb_uri, settings.database)
    repository.recover(None, abandon_in_flight=True)  # this test's server is the only writer
    app = create_app(settings, repository=repository)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
