"""Cached persona reads, invalidated on every write in this process and in others.

The cache keeps each persona's record and its API body serialised once, so a hot read
costs a dict lookup. Entries also expire after a TTL, a backstop in case a change
notification is ever missed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from personae.db.changes import NOTIFY_CHANNEL, ChangeFeed, OnChange, make_feed
from personae.personas.records import PersonaRecord
from personae.personas.store import PersonaStore


@dataclass(frozen=True, slots=True)
class CachedPersona:
    record: PersonaRecord
    body: bytes  # the API JSON, encoded once
    etag: str


def serialise(record: PersonaRecord) -> CachedPersona:
    body = json.dumps(record.public(), ensure_ascii=False, separators=(",", ":")).encode()
    return CachedPersona(record=record, body=body, etag=f'"{record.version}"')


class PersonaRegistry:
    """Read-through cache over :class:`PersonaStore` (negative results cached too)."""

    def __init__(self, store: PersonaStore, *, ttl_seconds: float = 30.0,
                 max_entries: int = 10_000, poll_seconds: float = 0.25,
                 on_lookup: Callable[[bool], None] | None = None) -> None:
        self.store = store
        self.on_lookup = on_lookup  # told of each lookup: True on a hit (metrics)
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: TTLCache[str, CachedPersona | None] = TTLCache(max_entries, ttl_seconds)
        self._epoch = 0  # bumped on every invalidation; a load racing a write is discarded
        self._listeners: list[OnChange] = []
        self._feed: ChangeFeed = make_feed(
            store.engine, NOTIFY_CHANNEL, self._changed, since=store.changes_since,
            last=store.last_change, poll_seconds=poll_seconds)

    def subscribe(self, listener: OnChange) -> None:
        """Also tell ``listener`` of every change another process reports (the feed
        carries more than personas: :data:`~personae.db.changes.AUTH_CHANGED`)."""
        self._listeners.append(listener)

    def _changed(self, persona_id: str | None) -> None:
        self.invalidate(persona_id)
        for listener in self._listeners:
            listener(persona_id)

    async def start(self) -> None:
        await self._feed.start()

    async def stop(self) -> None:
        await self._feed.stop()

    async def get(self, persona_id: str) -> CachedPersona | None:
        try:
            found = self._entries[persona_id]  # None: known not to exist
        except KeyError:
            pass
        else:
            if self.on_lookup is not None:
                self.on_lookup(True)
            return found
        if self.on_lookup is not None:
            self.on_lookup(False)
        epoch = self._epoch
        record = await self.store.get(persona_id)
        entry = serialise(record) if record is not None else None
        if epoch == self._epoch:
            self._entries[persona_id] = entry
        return entry

    def invalidate(self, persona_id: str | None = None) -> None:
        """Forget one persona, or everything when ``persona_id`` is None."""
        self._epoch += 1
        if persona_id is None:
            self._entries.clear()
        else:
            self._entries.pop(persona_id, None)

    def __len__(self) -> int:
        return len(self._entries)
