"""The one bounded thread pool the offline speech models run on, per process.

Whisper and Piper inference are CPU-heavy calls that release the GIL; running them
on the event loop would stall every other session. They go through
:func:`run_speech`, which runs them on a pool of ``settings.voice_threads`` threads,
so at most that many recognitions and syntheses run at once and the rest wait
their turn in the pool's queue.

The pool is made on first use and its size is fixed from then on: the first size
asked for wins (a process has one setting; a later, different request is logged and
ignored rather than tearing down a pool that may be busy).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

DEFAULT_THREADS = 2
T = TypeVar("T")
log = logging.getLogger(__name__)


class SpeechPool:
    """A fixed-size thread pool that also counts how many calls run at once."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads,
                                            thread_name_prefix="personae-speech")
        self._lock = threading.Lock()
        self.busy = 0
        self.peak = 0  # the most calls seen running at once (bench and tests read it)

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.busy

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on one of the pool's threads, awaited from the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._counted, fn, args)

    def _counted(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        with self._lock:
            self.busy += 1
            self.peak = max(self.peak, self.busy)
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.busy -= 1


_pool: SpeechPool | None = None
_pool_lock = threading.Lock()


def speech_pool(threads: int | None = None) -> SpeechPool:
    """The process's pool, made with ``threads`` workers (default 2) on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = SpeechPool(threads or DEFAULT_THREADS)
        elif threads is not None and threads != _pool.threads:
            log.warning("the speech pool already has %d threads; %d asked for later is "
                        "ignored (the first size wins)", _pool.threads, threads)
        return _pool


async def run_speech(fn: Callable[..., T], *args: object) -> T:
    """Run a CPU-heavy speech call on the shared pool without blocking the loop."""
    return await speech_pool().run(fn, *args)
