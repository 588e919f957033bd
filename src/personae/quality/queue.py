"""Where test runs execute: in this process (the default) or on arq workers over Redis.

Both take a run id and hand it to :class:`~personae.quality.jobs.TestRunJob`. State
lives in the database: a job that runs twice finds its run finished and does nothing,
and an in-process queue that restarts starts the runs left open again from scratch
(:meth:`LocalTestQueue.resume`; a run writes its report only at the end).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from personae.config import Settings
from personae.errors import QueueUnavailable
from personae.quality.jobs import TestRunJob
from personae.tasks import TaskPool

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from arq.worker import Function

log = logging.getLogger(__name__)
RUN_JOB = "run_persona_test"


def job_id(run_id: str) -> str:
    return f"test-run:{run_id}"


class TestRunQueue(Protocol):
    async def submit(self, run_id: str) -> None: ...

    async def cancel(self, run_id: str) -> None: ...

    async def close(self) -> None: ...


class LocalTestQueue:
    """An in-process pool: at most ``concurrency`` runs at once, ids deduplicated."""

    __test__ = False

    def __init__(self, job: TestRunJob, concurrency: int) -> None:
        self.job = job
        self.pool = TaskPool(concurrency, "test run")

    async def submit(self, run_id: str) -> None:
        async def run() -> None:
            await self.job.run(run_id)

        self.pool.spawn(run_id, run)  # a failed run stays open and starts again on resume

    async def cancel(self, run_id: str) -> None:
        """Stop the run's task now (the store already says it is cancelled)."""
        await self.pool.cancel(run_id)

    async def resume(self) -> int:
        """Queue again, from scratch, every run a restart left queued or running."""
        queued = 0
        for run_id in await self.job.store.open_runs():
            if await self.job.store.restart(run_id) is not None:
                await self.submit(run_id)
                queued += 1
        return queued

    async def drain(self) -> None:
        """Wait until no run is queued or running."""
        await self.pool.drain()

    async def close(self) -> None:
        await self.pool.close()


class ArqTestQueue:
    """Sends runs to Redis; ``personae worker`` processes run them. A cancel reaches
    the job through the store (it checks at least every few seconds). The connection
    is made on first use; failing to queue is a clear 503."""

    __test__ = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue_name = settings.queue_name
        self._redis: ArqRedis | None = None

    async def submit(self, run_id: str) -> None:
        from redis.exceptions import RedisError

        try:
            redis = await self._pool()
            await redis.enqueue_job(RUN_JOB, run_id, _queue_name=self.queue_name,
                                    _job_id=job_id(run_id))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"could not queue a test run in Redis: {exc}") from None

    async def _pool(self) -> ArqRedis:
        if self._redis is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            if not self.settings.redis_url:
                raise QueueUnavailable("PERSONAE_REDIS_URL is required when PERSONAE_QUEUE=arq")
            connection = RedisSettings.from_dsn(self.settings.redis_url)
            connection.conn_retries = 2  # a request should not wait long on a dead Redis
            self._redis = await create_pool(connection)
        return self._redis

    async def cancel(self, run_id: str) -> None:
        return None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


async def run_persona_test(ctx: dict[str, Any], run_id: str) -> str:
    """The arq job: expects ``ctx["test_runs"]`` (a TestRunJob), set by the worker."""
    job: TestRunJob = ctx["test_runs"]
    return await job.run(run_id)


def worker_functions(settings: Settings) -> list[Function]:
    """The job as arq runs it. Its time limit is the panel jobs' (arq keeps a job's
    in-progress mark for the longest limit of any function, so a longer one here would
    delay the recovery of every job a killed worker held): a long suite on a slow model
    needs PERSONAE_JOB_TIMEOUT_SECONDS raised. A job past it is run again from scratch."""
    from arq.worker import func

    return [func(run_persona_test, name=RUN_JOB, timeout=settings.job_timeout_seconds,
                 keep_result=0)]
