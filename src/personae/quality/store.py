"""The only module that reads and writes persona test runs.

Reads take an owner (``None``: any owner, for admins and for the job itself). A run's
report is written once, at the end, and only while the run is still ``running``: a
cancelled run can never be completed by a job that did not notice the cancel in time.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.db.tables import aware, test_runs, utcnow
from personae.quality.records import OPEN, RunStatus, TestRun


def _run(row: sa.RowMapping) -> TestRun:
    finished = row["finished_at"]
    return TestRun(row["id"], row["owner_id"], row["persona_id"], row["persona_version"],
                   row["suite"], row["options"], row["status"], row["done"], row["total"],
                   row["result"], row["error"], aware(row["created_at"]),
                   aware(row["updated_at"]), aware(finished) if finished else None)


class TestRunStore:
    __test__ = False

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, owner_id: str, persona_id: str, persona_version: int,
                     suite: dict[str, Any], options: dict[str, Any], total: int) -> TestRun:
        now = utcnow()
        run = TestRun(uuid.uuid4().hex[:16], owner_id, persona_id, persona_version, suite,
                      options, "queued", 0, total, None, None, now, now, None)
        values = {name: getattr(run, name) for name in run.__dataclass_fields__}
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(test_runs).values(**values))
        return run

    async def get(self, run_id: str, owner_id: str | None = None) -> TestRun | None:
        query = sa.select(test_runs).where(test_runs.c.id == run_id)
        if owner_id is not None:
            query = query.where(test_runs.c.owner_id == owner_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _run(row) if row else None

    async def runs(self, owner_id: str | None, *, limit: int, offset: int,
                   status: RunStatus | None = None,
                   persona_id: str | None = None) -> tuple[list[TestRun], int]:
        """Newest first, and how many there are in all."""
        where = [test_runs.c.owner_id == owner_id] if owner_id is not None else []
        if status is not None:
            where.append(test_runs.c.status == status)
        if persona_id is not None:
            where.append(test_runs.c.persona_id == persona_id)
        query = (sa.select(test_runs).where(*where)
                 .order_by(test_runs.c.created_at.desc(), test_runs.c.id.desc())
                 .limit(limit).offset(offset))
        count = sa.select(sa.func.count()).select_from(test_runs).where(*where)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            total = (await conn.execute(count)).scalar_one()
        return [_run(row) for row in rows], int(total)

    async def delete(self, run_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(test_runs).where(test_runs.c.id == run_id))

    async def open_runs(self) -> list[str]:
        """Ids of runs queued or running, oldest first (to resume after a restart)."""
        query = (sa.select(test_runs.c.id).where(test_runs.c.status.in_(OPEN))
                 .order_by(test_runs.c.created_at))
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars().all())

    async def count_open(self) -> dict[str, int]:
        """Runs queued and running, by status (for the metrics gauges)."""
        query = (sa.select(test_runs.c.status, sa.func.count())
                 .where(test_runs.c.status.in_(OPEN)).group_by(test_runs.c.status))
        async with self.engine.connect() as conn:
            return {status: int(n) for status, n in (await conn.execute(query)).all()}

    async def claim(self, run_id: str) -> TestRun | None:
        """Mark an open run running from scratch (progress 0); None if it is finished."""
        return await self._update(run_id, OPEN, status="running", done=0)

    async def restart(self, run_id: str) -> TestRun | None:
        """Put an open run back in the queue from scratch (after a restart)."""
        return await self._update(run_id, OPEN, status="queued", done=0)

    async def advance(self, run_id: str, done: int) -> bool:
        """Record progress; False once the run is no longer running (cancelled)."""
        return await self._update(run_id, ("running",), done=done) is not None

    async def complete(self, run_id: str, result: dict[str, Any], done: int) -> bool:
        return await self._finish(run_id, ("running",), status="completed", result=result,
                                  done=done)

    async def fail(self, run_id: str, error: str) -> bool:
        return await self._finish(run_id, OPEN, status="failed", error=error)

    async def cancel(self, run_id: str) -> bool:
        return await self._finish(run_id, OPEN, status="cancelled")

    async def _finish(self, run_id: str, states: tuple[RunStatus, ...],
                      **values: Any) -> bool:
        return await self._update(run_id, states, finished_at=utcnow(), **values) is not None

    async def _update(self, run_id: str, states: tuple[RunStatus, ...],
                      **values: Any) -> TestRun | None:
        """Compare-and-set on the status: only a run in ``states`` changes."""
        statement = (sa.update(test_runs)
                     .where(test_runs.c.id == run_id, test_runs.c.status.in_(states))
                     .values(updated_at=utcnow(), **values))
        async with self.engine.begin() as conn:
            changed = (await conn.execute(statement)).rowcount
            if not changed:
                return None
            row = (await conn.execute(sa.select(test_runs)
                                      .where(test_runs.c.id == run_id))).mappings().first()
        return _run(row) if row else None
