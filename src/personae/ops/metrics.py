"""Prometheus metrics (skeleton: contract only; being built)."""

from __future__ import annotations


class Metrics:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
