"""Rate limits per API key and route class (skeleton: contract only; being built)."""

from __future__ import annotations

from enum import StrEnum

from personae.config import Settings


class RouteClass(StrEnum):
    chat = "chat"
    audio = "audio"
    jobs = "jobs"
    writes = "writes"
    other = "other"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None
