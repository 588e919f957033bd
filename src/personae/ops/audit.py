"""The audit log (skeleton: contract only; being built)."""

from __future__ import annotations


class AuditLog:
    def __init__(self, engine: object) -> None:
        self.engine = engine
