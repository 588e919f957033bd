"""The work of one test run, as both queues (in-process and arq) run it.

The run is claimed (``running``, progress 0), its owner's access checked again through
the tester, and the suite run against the pinned persona version. Progress goes to the
store at most every PROGRESS_SECONDS (and at least every POLL_SECONDS, which is also
how a job on another process notices a cancel). The report is written once, at the
end, so a run interrupted anywhere can be started again from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pydantic import ValidationError

from personae.auth.principal import Principal
from personae.auth.service import UserService
from personae.errors import PersonaeError
from personae.quality.records import TestRun
from personae.quality.report import json_report
from personae.quality.results import SuiteResult, Target
from personae.quality.runner import PersonaTester
from personae.quality.store import TestRunStore
from personae.quality.suite import Suite

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 0.5
POLL_SECONDS = 2.0


class ProgressWriter:
    """Counts repetitions as the tester reports them and writes them, throttled; stops
    the run's task once the store says the run is no longer running (cancelled)."""

    def __init__(self, store: TestRunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.done = 0
        self.stopped = False
        self._changed = asyncio.Event()

    def tick(self, _case: str) -> None:
        self.done += 1
        self._changed.set()

    async def follow(self, work: asyncio.Task[SuiteResult]) -> None:
        while not work.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), POLL_SECONDS)
            self._changed.clear()
            if not await self.store.advance(self.run_id, self.done):
                self.stopped = True
                work.cancel()
                return
            await asyncio.sleep(PROGRESS_SECONDS)


class TestRunJob:
    __test__ = False

    def __init__(self, store: TestRunStore, tester: PersonaTester, users: UserService, *,
                 on_failed: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.tester = tester
        self.users = users
        self.on_failed = on_failed  # told "test" when a run fails (metrics)

    async def run(self, run_id: str) -> str:
        """Run one stored test run to its end; returns its final status."""
        status = await self._claimed(run_id)
        log.info("test_run.failed" if status == "failed" else "test_run.finished",
                 extra={"test_run_id": run_id, "status": status})
        if status == "failed" and self.on_failed is not None:
            self.on_failed("test")
        return status

    async def _claimed(self, run_id: str) -> str:
        run = await self.store.claim(run_id)
        if run is None:
            return "skipped"  # finished already (a replayed job), or cancelled
        try:
            principal = await self._owner(run)
            suite = Suite.model_validate(run.suite)
        except PersonaeError as exc:
            await self.store.fail(run_id, exc.message)
            return "failed"
        except ValidationError as exc:  # stored by an older release, say
            await self.store.fail(run_id, f"the stored suite is no longer valid: {exc}")
            return "failed"
        return await self._run(run, principal, suite)

    async def _run(self, run: TestRun, principal: Principal, suite: Suite) -> str:
        log.info("test_run.started", extra={"test_run_id": run.id, "persona_id": run.persona_id,
                                            "persona_version": run.persona_version})
        writer = ProgressWriter(self.store, run.id)
        target = Target(run.persona_id, run.persona_version, run.options.get("provider"),
                        run.options.get("model"))
        work = asyncio.create_task(self.tester.run(
            principal, suite, target, repeat=run.options.get("repeat"), progress=writer.tick))
        following = asyncio.create_task(writer.follow(work))
        try:
            result = await work
        except asyncio.CancelledError:
            if writer.stopped and not _cancelling():
                return "cancelled"
            raise
        except PersonaeError as exc:
            await self.store.fail(run.id, exc.message)
            return "failed"
        except Exception as exc:  # recorded, so the run does not stay running forever
            log.exception("test run %s failed", run.id)
            await self.store.fail(run.id, f"the run failed unexpectedly: {exc}")
            return "failed"
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        done = await self.store.complete(run.id, json_report([result]), writer.done)
        return "completed" if done else "cancelled"

    async def _owner(self, run: TestRun) -> Principal:
        user = await self.users.get_user(run.owner_id)
        if user is None or user.disabled:
            raise PersonaeError("the user who started the run no longer exists or is "
                                "disabled")
        return Principal(user.id, user.name, user.role)


def _cancelling() -> bool:
    """Whether this task itself is being cancelled (not just the work it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
