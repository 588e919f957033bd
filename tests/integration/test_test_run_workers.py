"""Persona test runs on a real Redis with arq: the API process queues, a worker runs."""

from __future__ import annotations

import uuid
from pathlib import Path

from personae.cli.worker import build_worker
from personae.config import ProviderConfig, Settings
from personae.quality.service import TestRunOptions
from personae.runtime import Runtime
from tests.support.runtime import create_people

SUITE = {"name": "s", "repeat": 2, "cases": [
    {"name": "echo", "turns": ["coffee please"],
     "expect": [{"kind": "contains_any", "words": ["coffee"]}]}]}


async def test_a_burst_worker_runs_a_queued_test_run(database_url: str, tmp_path: Path,
                                                     redis_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                        default_provider="model", judge_provider=None, queue="arq",
                        redis_url=redis_url, queue_name=f"test:{uuid.uuid4().hex[:8]}",
                        providers={"model": ProviderConfig(kind="scripted")})
    runtime = await Runtime.open(settings, watch=False)
    try:
        await runtime.load_samples()
        alice = (await create_people(runtime))["alice"]
        run = await runtime.test_runs.start(alice, "tina-kulkarni", SUITE, TestRunOptions())
        again = await runtime.test_runs.get(alice, run.id)
        assert again.status == "queued"  # nothing runs in the API process
        worker = build_worker(settings, burst=True)
        await worker.async_run()
        await worker.close()
        report = await runtime.test_runs.results(alice, run.id)
        assert report["passed"] is True
        assert report["sides"][0]["cases"][0]["runs"] == 2
        finished = await runtime.test_runs.get(alice, run.id)
        assert (finished.status, finished.done, finished.total) == ("completed", 2, 2)
    finally:
        await runtime.close()
