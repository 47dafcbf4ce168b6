"""FHIR search: one typed SearchRequest, one parser, one module per parameter type.

This first cut evaluates criteria against current resources in Python (it serves the
conditional interactions and a plain search); the index-backed engine replaces the
evaluation, not the request model. Anything it cannot evaluate exactly is refused
with a 400, never answered with silently wrong results.
"""
