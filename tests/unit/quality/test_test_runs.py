"""Test runs through their service, store and jobs on a real database (SQLite and
PostgreSQL), with the scripted model: resume after a restart, cancels seen by a job
on another process, compare-and-set on the status, and the arq registration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.auth.principal import Principal
from personae.cli.worker import build_worker
from personae.config import ProviderConfig, Settings
from personae.quality.jobs import TestRunJob
from personae.quality.queue import RUN_JOB, LocalTestQueue
from personae.quality.service import TestRunOptions
from personae.quality.store import TestRunStore
from personae.runtime import Runtime
from tests.support.runtime import create_people, open_runtime

SUITE: dict[str, Any] = {"name": "s", "repeat": 3, "cases": [
    {"name": "echo", "turns": ["coffee please"],
     "expect": [{"kind": "contains_any", "words": ["coffee"]}]}]}


def settings_for(database_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                    default_provider="model", judge_provider=None,
                    providers={"model": ProviderConfig(kind="scripted")}, **extra)


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with open_runtime(settings_for(database_url, tmp_path)) as opened:
        await opened.load_samples()
        yield opened


async def alice(runtime: Runtime) -> Principal:
    return (await create_people(runtime))["alice"]


async def test_the_store_changes_a_run_only_from_the_states_allowed(runtime: Runtime) -> None:
    owner = await alice(runtime)
    store = runtime.test_run_job.store
    run = await store.create(owner.user_id, "tina-kulkarni", 1, SUITE, {"repeat": None}, 3)
    assert (await store.get(run.id, owner.user_id)) == run
    assert await store.get(run.id, "someone-else") is None
    assert not await store.advance(run.id, 1)  # queued, not running
    claimed = await store.claim(run.id)
    assert claimed is not None and claimed.status == "running"
    assert await store.advance(run.id, 2)
    assert not await store.complete("nope", {}, 0)
    assert await store.cancel(run.id)
    assert not await store.complete(run.id, {"passed": True}, 3)  # a cancel wins
    assert await store.claim(run.id) is None
    found, count = await store.runs(owner.user_id, limit=10, offset=0, status="cancelled")
    assert [r.id for r in found] == [run.id] and count == 1
    assert await store.open_runs() == []


async def test_open_runs_start_again_from_scratch_after_a_restart(runtime: Runtime) -> None:
    owner = await alice(runtime)
    run = await runtime.test_runs.start(owner, "tina-kulkarni", SUITE, TestRunOptions())
    await runtime.test_runs.queue.close()  # the process "stops" before the job ran
    store = runtime.test_run_job.store
    assert await store.claim(run.id) is not None and await store.advance(run.id, 2)
    restarted = LocalTestQueue(runtime.test_run_job, 2)
    assert await restarted.resume() == 1
    await restarted.drain()
    finished = await store.get(run.id)
    assert finished is not None and finished.status == "completed"
    assert finished.done == 3 and finished.result is not None
    assert finished.result["sides"][0]["cases"][0]["runs"] == 3


class CancelledElsewhere(TestRunStore):
    """A store on which another process cancels the run as its first progress arrives."""

    async def advance(self, run_id: str, done: int) -> bool:
        await self.cancel(run_id)
        return await super().advance(run_id, done)


async def test_a_job_stops_when_the_store_says_cancelled(runtime: Runtime) -> None:
    owner = await alice(runtime)
    run = await runtime.test_run_job.store.create(owner.user_id, "tina-kulkarni", 1,
                                                   {**SUITE, "repeat": 50}, {}, 50)
    store = CancelledElsewhere(runtime.engine)
    job = TestRunJob(store, runtime.test_run_job.tester, runtime.users)
    assert await job.run(run.id) == "cancelled"
    found = await store.get(run.id)
    assert found is not None and found.status == "cancelled" and found.result is None
    assert await job.run(run.id) == "skipped"  # a replayed job does nothing


async def test_a_stored_suite_that_no_longer_validates_fails_the_run(
        runtime: Runtime) -> None:
    owner = await alice(runtime)
    store = runtime.test_run_job.store
    bad = await store.create(owner.user_id, "tina-kulkarni", 1, {"name": "x"}, {}, 1)
    assert await runtime.test_run_job.run(bad.id) == "failed"
    failed = await store.get(bad.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and "no longer valid" in failed.error


async def test_a_persona_the_owner_can_no_longer_read_fails_the_run(runtime: Runtime) -> None:
    people = await create_people(runtime)
    store = runtime.test_run_job.store
    run = await store.create(people["bob"].user_id, "no-such-persona", 1, SUITE, {}, 3)
    assert await runtime.test_run_job.run(run.id) == "failed"
    failed = await store.get(run.id)
    assert failed is not None and failed.error is not None and "not found" in failed.error


def test_the_worker_runs_test_run_jobs(tmp_path: Path) -> None:
    settings = settings_for("sqlite+aiosqlite:///unused.db", tmp_path, queue="arq",
                            redis_url="redis://127.0.0.1:1/0")
    worker = build_worker(settings, burst=True)
    assert RUN_JOB in worker.functions
    assert worker.functions[RUN_JOB].timeout_s == settings.job_timeout_seconds
    # no longer than the panel jobs': a killed worker's jobs are recovered as soon
    assert worker.in_progress_timeout_s == settings.job_timeout_seconds + 10
