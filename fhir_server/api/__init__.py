"""Thin Flask views for the FHIR REST API: parse, call one service, render."""
