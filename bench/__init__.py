"""Reproducible workloads and the scripts that measure them (see docs/benchmarks.md)."""
