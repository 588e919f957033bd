"""The in-process task pool both job queues run on."""

from __future__ import annotations

import asyncio

import pytest

from personae.tasks import TaskPool


async def test_one_task_per_id_and_at_most_concurrency_at_once() -> None:
    pool = TaskPool(2, "job")
    running = peak = calls = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak, calls
        calls += 1
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    for job_id in ("a", "a", "b", "c"):
        pool.spawn(job_id, work)
    assert len(pool) == 3  # the second "a" is the same work
    await asyncio.sleep(0.01)
    assert peak == 2
    release.set()
    await pool.drain()
    assert (calls, len(pool)) == (3, 0)


async def test_a_failing_task_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    pool = TaskPool(1, "test run")

    async def broken() -> None:
        raise RuntimeError("boom")

    pool.spawn("r1", broken)
    await pool.drain()
    assert len(pool) == 0
    assert "test run r1 failed" in caplog.text


async def test_cancel_and_close_stop_tasks() -> None:
    pool = TaskPool(1, "job")
    never = asyncio.Event()
    pool.spawn("a", never.wait)
    pool.spawn("b", never.wait)
    await asyncio.sleep(0)
    await pool.cancel("a")
    await pool.cancel("missing")  # nothing to stop
    assert len(pool) == 1
    await pool.close()
    await asyncio.sleep(0)
    assert len(pool) == 0
