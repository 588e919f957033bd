"""Panel jobs on Redis with arq: any number of ``personae worker`` processes.

Job ids are deterministic, so enqueueing work that is already queued or running is a
no-op, and results are not kept in Redis (``keep_result=0``: the database has them),
so the same id can run again on a rerun. A worker killed mid-job leaves its job in
the queue; once the job's in-progress mark expires (job timeout + 10 s) another
worker runs it again, and the cell, still ``running`` in the database, is redone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Function, func
from redis.exceptions import RedisError

from personae.config import Settings
from personae.errors import QueueUnavailable
from personae.panels.runner import CellJob, PanelRunner, classify_job_id

log = logging.getLogger(__name__)
CLASSIFY = "classify_segment"
SCORE = "score_cell"


def redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url:
        raise ValueError("PERSONAE_REDIS_URL is required when PERSONAE_QUEUE=arq")
    return RedisSettings.from_dsn(settings.redis_url)


async def enqueue_classify(redis: ArqRedis, queue_name: str, evaluation_id: str,
                           index: int) -> None:
    await redis.enqueue_job(CLASSIFY, evaluation_id, index, _queue_name=queue_name,
                            _job_id=classify_job_id(evaluation_id, index))


async def enqueue_score(redis: ArqRedis, queue_name: str, job: CellJob) -> None:
    await redis.enqueue_job(SCORE, job.evaluation_id, job.segment_index, job.persona_id,
                            job.persona_version, _queue_name=queue_name, _job_id=job.job_id)


class ArqQueue:
    """Sends jobs to Redis; ``personae worker`` processes run them.

    The connection is made on first use, so a process that never queues a job (or
    starts while Redis is down) is not held up; a failure to queue is a clear 503.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue_name = settings.queue_name
        self._redis: ArqRedis | None = None

    async def redis(self) -> ArqRedis:
        if self._redis is None:
            try:
                connection = redis_settings(self.settings)
                connection.conn_retries = 2  # a request should not wait long on a dead Redis
                self._redis = await create_pool(connection)
            except (RedisError, OSError) as exc:
                raise QueueUnavailable(f"cannot reach Redis at {self._url()}: {exc}") from None
        return self._redis

    def _url(self) -> str:
        """Where Redis was expected (host and port; never the password)."""
        connection = redis_settings(self.settings)
        return f"{connection.host}:{connection.port}"

    async def classify(self, evaluation_id: str, index: int) -> None:
        await self._send(enqueue_classify(await self.redis(), self.queue_name,
                                          evaluation_id, index))

    async def score(self, job: CellJob) -> None:
        await self._send(enqueue_score(await self.redis(), self.queue_name, job))

    async def _send(self, sending: Awaitable[None]) -> None:
        try:
            await sending
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"could not queue a job in Redis: {exc}") from None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


# -- the worker side -------------------------------------------------------------------


async def classify_segment(ctx: dict[str, Any], evaluation_id: str, index: int) -> int:
    runner: PanelRunner = ctx["runner"]
    cells = await runner.classify(evaluation_id, index)
    for cell in cells:
        await enqueue_score(ctx["redis"], ctx["queue_name"], cell)
    return len(cells)


async def score_cell(ctx: dict[str, Any], evaluation_id: str, index: int, persona_id: str,
                     version: int) -> str:
    runner: PanelRunner = ctx["runner"]
    return await runner.score(CellJob(evaluation_id, index, persona_id, version))


def worker_functions(settings: Settings) -> list[Function]:
    """The two jobs, as arq runs them; each expects ``ctx["runner"]`` (a PanelRunner),
    ``ctx["redis"]`` and ``ctx["queue_name"]``, set up by the worker's startup."""
    timeout = settings.job_timeout_seconds
    return [func(classify_segment, name=CLASSIFY, timeout=timeout, keep_result=0),
            func(score_cell, name=SCORE, timeout=timeout, keep_result=0)]
