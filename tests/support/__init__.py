"""Helpers shared by the test suite, benchmarks and multi-process tests."""
