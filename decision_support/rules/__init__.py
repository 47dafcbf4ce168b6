"""Transparent clinical rules: one small pure module each, with its published source."""
