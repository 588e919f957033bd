"""A bounded pool of named background tasks, for the in-process job queues.

Panels and persona test runs both queue work in this process by default. Their state
lives in the database, so the pool only has to run each named job once at a time, at
most ``concurrency`` at once, and log (not lose) a job that fails: the queue that owns
it starts it again when it resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class TaskPool:
    """Named tasks, each id once at a time, at most ``concurrency`` running at once."""

    def __init__(self, concurrency: int, what: str) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.what = what  # how failures are logged: "panel job", "test run"
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, job_id: str, work: Callable[[], Awaitable[None]]) -> None:
        """Start ``work`` unless a task of that id is queued or running already."""
        if job_id in self._tasks:
            return

        async def guarded() -> None:
            try:
                async with self.slots:
                    await work()
            except Exception:  # the job's state stays open and is resumed later
                log.exception("%s %s failed", self.what, job_id)
            finally:
                self._tasks.pop(job_id, None)

        self._tasks[job_id] = asyncio.get_running_loop().create_task(guarded())

    async def cancel(self, job_id: str) -> None:
        """Stop one task now, if it is queued or running."""
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until no task is queued or running (tasks may add tasks meanwhile)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
