"""Operator tooling: the ``interop`` command, the embedded document store and process supervision.

Nothing here is imported by the HTTP server, the MLLP listener or the mappings; this package
only starts and stops them as child processes.
"""
