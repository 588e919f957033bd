"""Where panel jobs run: in this process (the default) or on arq workers over Redis.

Both queues take the same two jobs, named by deterministic ids, and both run them
through :class:`~personae.panels.runner.PanelRunner`. State lives in the database,
not in the queue, so a job that runs twice finds its cell done and does nothing, and
an in-process queue that restarts picks up what was left (:meth:`LocalQueue.resume`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from personae.panels.runner import CellJob, PanelRunner, classify_job_id
from personae.panels.store import PanelStore
from personae.tasks import TaskPool

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    async def classify(self, evaluation_id: str, index: int) -> None: ...

    async def score(self, job: CellJob) -> None: ...

    async def close(self) -> None: ...


class LocalQueue:
    """An in-process pool: at most ``concurrency`` jobs run at once, ids deduplicated."""

    def __init__(self, runner: PanelRunner, concurrency: int) -> None:
        self.runner = runner
        self._pool = TaskPool(concurrency, "panel job")

    @property
    def busy(self) -> int:
        return len(self._pool)

    async def classify(self, evaluation_id: str, index: int) -> None:
        async def job() -> None:
            for cell in await self.runner.classify(evaluation_id, index):
                await self.score(cell)

        self._pool.spawn(classify_job_id(evaluation_id, index), job)

    async def score(self, job: CellJob) -> None:
        async def run() -> None:
            await self.runner.score(job)

        self._pool.spawn(job.job_id, run)

    async def resume(self) -> int:
        """Requeue the unfinished work of every running evaluation (after a restart)."""
        return await resume_running(self.runner.store, self)

    async def drain(self) -> None:
        """Wait until no job is queued or running (jobs may add jobs while we wait)."""
        await self._pool.drain()

    async def close(self) -> None:
        await self._pool.close()


async def resume_running(store: PanelStore, queue: JobQueue) -> int:
    """Enqueue every pending classification and cell of running evaluations."""
    queued = 0
    for evaluation in await store.running_evaluations():
        queued += await requeue(store, queue, evaluation.id)
    return queued


async def requeue(store: PanelStore, queue: JobQueue, evaluation_id: str) -> int:
    """Enqueue one evaluation's open work: classifications first, then cells whose
    segment is labelled (a classification job enqueues its own segment's cells).
    Ids are deterministic, so work already queued is not queued twice."""
    waiting = sorted(s.index for s in await store.segments(evaluation_id)
                     if s.status == "pending")
    for index in waiting:
        await queue.classify(evaluation_id, index)
    unlabelled = set(waiting)
    cells = [CellJob(evaluation_id, c.segment_index, c.persona_id, c.persona_version)
             for c in await store.cells(evaluation_id)
             if c.status in ("pending", "running") and c.segment_index not in unlabelled]
    for cell in cells:
        await queue.score(cell)
    if not waiting and not cells:
        await store.finish_if_done(evaluation_id)
    return len(waiting) + len(cells)
