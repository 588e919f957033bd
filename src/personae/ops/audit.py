"""The audit log (skeleton: contract only; being built)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
