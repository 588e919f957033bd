"""Persona regression tests: suites of cases, checked reply by reply."""
