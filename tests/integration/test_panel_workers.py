"""Panel jobs on a real Redis with arq: burst workers, idempotent ids, a worker crash drill."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from personae.cli.worker import build_worker
from personae.config import Settings
from personae.panels.runner import CellJob
from personae.panels.service import EvaluationRequest
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
from tests.support.panels import TEXT, panel_answer, panel_settings, seeded

LONG_TEXT = " ".join(f"Point number {n} is made here." for n in range(24))  # 8 segments


def arq_settings(tmp_path: Path, database_url: str, base_url: str, redis_url: str,
                 **extra: object) -> Settings:
    return panel_settings(tmp_path, database_url, base_url, queue="arq", redis_url=redis_url,
                          queue_name=f"test:{uuid.uuid4().hex[:8]}", **extra)


async def test_burst_worker_runs_an_evaluation_to_the_end(database_url: str, tmp_path: Path,
                                                          redis_url: str) -> None:
    async with FakeOpenAIServer(json_reply=panel_answer) as server:
        settings = arq_settings(tmp_path, database_url, server.base_url, redis_url)
        runtime, alice, _ = await seeded(settings)
        try:
            evaluation = await runtime.panels.evaluate(alice, EvaluationRequest(
                content=TEXT, personas=["zed", "ada"]))
            assert server.chat_count == 0  # nothing runs in the API process
            worker = build_worker(settings, burst=True)
            await worker.async_run()
            await worker.close()
            progress = await runtime.panels.progress(alice, evaluation.id)
            assert (progress.status, progress.cells) == ("completed", {"done": 4})
            assert progress.segments == {"done": 2}
        finally:
            await runtime.close()


async def test_the_same_job_id_is_queued_once(database_url: str, tmp_path: Path,
                                              redis_url: str) -> None:
    async with FakeOpenAIServer() as server:
        settings = arq_settings(tmp_path, database_url, server.base_url, redis_url)
        runtime, _, _ = await seeded(settings)
        client = Redis.from_url(redis_url)
        try:
            job = CellJob("e1", 0, "zed", 1)
            for _ in range(3):
                await runtime.panels.queue.score(job)
            assert await client.zcard(settings.queue_name) == 1
        finally:
            await client.aclose()
            await runtime.close()


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    providers = {name: config.model_dump(mode="json")
                 for name, config in settings.providers.items()}
    env = {**os.environ, "PERSONAE_DATA_DIR": str(settings.data_dir),
           "PERSONAE_DATABASE_URL": settings.database_url or "",
           "PERSONAE_QUEUE": "arq", "PERSONAE_REDIS_URL": settings.redis_url or "",
           "PERSONAE_QUEUE_NAME": settings.queue_name,
           "PERSONAE_DEFAULT_PROVIDER": settings.default_provider,
           "PERSONAE_PROVIDERS": json.dumps(providers),
           "PERSONAE_JOB_TIMEOUT_SECONDS": str(settings.job_timeout_seconds),
           "PERSONAE_PANEL_CONCURRENCY": str(settings.panel_concurrency)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "personae", "worker"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


async def until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the condition")
        await asyncio.sleep(0.01)


async def wait_for(runtime: Runtime, alice, evaluation_id: str,  # type: ignore[no-untyped-def]
                   done_at_least: int, seconds: float, *, mid_job: bool = False,
                   ) -> dict[str, int]:
    """Wait until ``done_at_least`` cells are done (and, with ``mid_job``, one is running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        progress = await runtime.panels.progress(alice, evaluation_id)
        cells = progress.cells
        if progress.status != "running" or (cells.get("done", 0) >= done_at_least and (
                not mid_job or cells.get("running", 0) > 0)):
            return progress.cells
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; progress {progress.public()}")


async def test_a_killed_worker_loses_nothing_and_duplicates_nothing(
        database_url: str, tmp_path: Path, redis_url: str) -> None:
    async with FakeOpenAIServer(latency=0.3, json_reply=panel_answer) as server:
        settings = arq_settings(tmp_path, database_url, server.base_url, redis_url,
                                job_timeout_seconds=2.0, panel_concurrency=2)
        runtime, alice, _ = await seeded(settings)
        log = tmp_path / "workers.log"
        first = start_worker(settings, log)
        try:
            evaluation = await runtime.panels.evaluate(alice, EvaluationRequest(
                content=LONG_TEXT, personas=["zed", "ada"]))
            await wait_for(runtime, alice, evaluation.id, 3, seconds=60, mid_job=True)
            await until(lambda: server.waiting > 0, seconds=30)  # a model call in flight
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            second = start_worker(settings, log)
            try:
                await wait_for(runtime, alice, evaluation.id, 16, seconds=90)
            finally:
                second.terminate()
                second.wait(timeout=20)
            progress = await runtime.panels.progress(alice, evaluation.id)
            assert (progress.status, progress.cells) == ("completed", {"done": 16}), \
                log.read_text()[-3000:]
            cells = await runtime.panels.store.cells(evaluation.id)
            keys = [(c.segment_index, c.persona_id) for c in cells]
            assert len(keys) == len(set(keys)) == 16
            assert all(c.score == (2 if c.persona_id == "zed" else 4) for c in cells)
            assert server.chat_count > 8 + 16  # the killed worker's jobs were run again
        finally:
            if first.poll() is None:
                first.kill()
            await runtime.close()
