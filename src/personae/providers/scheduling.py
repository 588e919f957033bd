"""Slots on a shared local model, granted round-robin across callers.

One box serves many conversations with a few generation slots; a caller with many
requests, or a long one running, must not starve the others.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, deque
from collections.abc import Hashable

from personae.errors import ProviderUnavailable

NAME = "embedded"


class FairScheduler:
    """A fixed number of slots, granted round-robin across callers, not first-come.

    Among callers with waiting requests the next free slot goes to the one with the
    fewest generations running, then the one served longest ago, then the earliest.
    Lives on one event loop.
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._free = slots
        self._waiting: dict[Hashable, deque[tuple[int, asyncio.Future[None]]]] = {}
        self._active: Counter[Hashable] = Counter()
        self._last_served: dict[Hashable, int] = {}
        self._seq = itertools.count()
        self._closed = False

    @property
    def running(self) -> int:
        return self.slots - self._free

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def next_key(self) -> Hashable | None:
        """The caller whose request gets the next free slot (None when nobody waits)."""
        return min(self._waiting, key=self._priority) if self._waiting else None

    async def acquire(self, key: Hashable) -> None:
        if self._closed:
            raise ProviderUnavailable(NAME, "shutting down")
        if self._free > 0 and not self._waiting:
            self._grant(key)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append((next(self._seq), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(key)  # granted just as the caller gave up
            else:
                self._forget(key, future)
            raise

    def release(self, key: Hashable) -> None:
        self._active[key] -= 1
        if self._active[key] <= 0:
            del self._active[key]
            if key not in self._waiting:
                self._last_served.pop(key, None)
        self._free += 1
        self._dispatch()

    def close(self) -> None:
        """Fail every waiting request; running ones finish or are cancelled by the owner."""
        self._closed = True
        for _, future in itertools.chain.from_iterable(self._waiting.values()):
            if not future.done():
                future.set_exception(ProviderUnavailable(NAME, "shutting down"))
        self._waiting.clear()

    def _grant(self, key: Hashable) -> None:
        self._free -= 1
        self._active[key] += 1
        self._last_served[key] = next(self._seq)

    def _dispatch(self) -> None:
        while self._free > 0 and self._waiting:
            key = min(self._waiting, key=self._priority)
            queue = self._waiting[key]
            _, future = queue.popleft()
            if not queue:
                del self._waiting[key]
            if not future.done():
                self._grant(key)
                future.set_result(None)

    def _priority(self, key: Hashable) -> tuple[int, int, int]:
        return (self._active[key], self._last_served.get(key, -1), self._waiting[key][0][0])

    def _forget(self, key: Hashable, future: asyncio.Future[None]) -> None:
        left = deque(item for item in self._waiting.pop(key, ()) if item[1] is not future)
        if left:
            self._waiting[key] = left
