"""Change feeds that tell a process another process wrote a persona.

PostgreSQL: LISTEN on the channel the store NOTIFYs in each write transaction, on a
dedicated connection, reconnecting (and reporting "everything changed") if it drops.
SQLite: poll the ``change_log`` table the store appends to. Either way the callback
gets a persona id, :data:`AUTH_CHANGED` (a key was revoked, a user's role or a key's
limits changed: drop cached principals), or None meaning "drop everything".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personae.db.engine import is_sqlite
from personae.db.tables import change_log, utcnow

log = logging.getLogger(__name__)
OnChange = Callable[[str | None], None]
ALL = "*"
NOTIFY_CHANNEL = "personae_changes"
# Not a persona id (those never start with "~"): cached principals are stale.
AUTH_CHANGED = "~auth"


async def record_changes(conn: AsyncConnection, ids: Sequence[str | None]) -> None:
    """Append ``ids`` to the change log in the caller's transaction (and NOTIFY on
    PostgreSQL, delivered at commit), so every process hears of the write."""
    now = utcnow()
    await conn.execute(change_log.insert(),
                       [{"persona_id": pid, "changed_at": now} for pid in ids])
    if not is_sqlite(conn.engine.url):
        for pid in ids:
            await conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, pid or ALL)))


class ChangeFeed(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class PollingFeed:
    """Reads new ``change_log`` rows every ``interval`` seconds."""

    def __init__(self, since: Callable[[int], Awaitable[tuple[list[str | None], int]]],
                 last: Callable[[], Awaitable[int]], on_change: OnChange,
                 interval: float) -> None:
        self._since, self._last, self._on_change = since, last, on_change
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._mark = 0

    async def start(self) -> None:
        self._mark = await self._last()
        self._task = asyncio.create_task(self._run(), name="personae-change-poll")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                changed, self._mark = await self._since(self._mark)
            except Exception:  # the database may be briefly unavailable; keep polling
                log.warning("change poll failed; retrying", exc_info=True)
                continue
            for persona_id in changed:
                self._on_change(persona_id)

    async def stop(self) -> None:
        await _cancel(self._task)


class PostgresListenFeed:
    """LISTEN/NOTIFY on a dedicated connection; reconnects and flushes on loss."""

    def __init__(self, engine: AsyncEngine, channel: str, on_change: OnChange,
                 retry_seconds: float = 1.0) -> None:
        self.engine, self.channel, self._on_change = engine, channel, on_change
        self.retry_seconds = retry_seconds
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="personae-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with self.engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    assert raw is not None  # an open connection has its driver's
                    lost = asyncio.Event()
                    raw.add_termination_listener(lambda _c, event=lost: event.set())
                    await raw.add_listener(self.channel, self._notified)
                    if not first:
                        self._on_change(None)  # notifications may have been missed
                    first = False
                    self._ready.set()
                    await self._watch(raw, lost)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            self._on_change(None)
            await asyncio.sleep(self.retry_seconds)

    @staticmethod
    async def _watch(raw: Any, lost: asyncio.Event) -> None:
        """Return when the connection ends; a ping every few seconds detects silent loss."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), timeout=5)
            except TimeoutError:
                await asyncio.wait_for(raw.execute("SELECT 1"), timeout=5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_change(None if payload == ALL else payload)

    async def stop(self) -> None:
        await _cancel(self._task)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_feed(engine: AsyncEngine, channel: str, on_change: OnChange, *,
              since: Callable[[int], Awaitable[tuple[list[str | None], int]]],
              last: Callable[[], Awaitable[int]], poll_seconds: float) -> ChangeFeed:
    if is_sqlite(engine.url) or sa.make_url(engine.url).get_driver_name() != "asyncpg":
        return PollingFeed(since, last, on_change, poll_seconds)
    return PostgresListenFeed(engine, channel, on_change)
