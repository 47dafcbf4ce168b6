"""Integration fixtures shared by the SMART authorization tests (see smart.py)."""

from tests.integration.smart import auth, mint, secure_app, secure_client, store

__all__ = ["auth", "mint", "secure_app", "secure_client", "store"]
