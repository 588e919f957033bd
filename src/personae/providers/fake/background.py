"""A loopback server run on its own thread, usable with ``with`` and ``async with``."""

from __future__ import annotations

import asyncio
from typing import Self


class BackgroundServer:
    """Subclasses start their server in :meth:`start` and stop it in :meth:`stop`
    (both blocking); the async forms run them off the caller's event loop."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)
