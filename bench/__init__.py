"""Benchmarks: the server measured beside references in the same run (see docs/performance.md)."""
