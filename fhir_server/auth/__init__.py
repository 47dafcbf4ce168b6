"""The SMART on FHIR authorization server: keys, tokens, clients, grants.

Storage goes through ``fhir_server.repository.auth_store``; HTTP through
``fhir_server.api.oauth``; what a token may reach is ``fhir_server.services.access``.
"""
