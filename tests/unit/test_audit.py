"""The audit log on a real database: what an entry keeps, filters, bounds, ordering."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from personae.auth.principal import Principal, Role
from personae.config import Settings
from personae.db.engine import make_engine
from personae.errors import InvalidInput, PermissionDenied
from personae.ops import context
from personae.ops.audit import MAX_LIMIT, AuditLog, AuditQuery, AuditStore, parse_moment
from personae.runtime import Runtime
from tests.conftest import sqlite_url_for
from tests.support.runtime import open_runtime

ADMIN = Principal("u-admin", "admin", Role.admin)
ALICE = Principal("u-alice", "alice", Role.member)


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with open_runtime(Settings(data_dir=tmp_path, database_url=database_url)) as rt:
        yield rt


async def _seed(audit: AuditLog) -> None:
    await audit.record(ADMIN, "user.create", "user", "u-alice", {"role": "member"})
    await audit.record(ALICE, "persona.create", "persona", "alice/tutor", {"version": 1})
    await audit.record(ALICE, "persona.update", "persona", "alice/tutor",
                       {"changed_fields": ["description"], "from_version": 1,
                        "to_version": 2})
    await audit.record(ADMIN, "key.revoke", "key", "k1")
    await audit.record(None, "persona.sync", "persona", None, {"created": 3})


async def _actions(audit: AuditLog, **filters: object) -> list[str]:
    entries, _ = await audit.list(AuditQuery(**filters))  # type: ignore[arg-type]
    return [entry.action for entry in entries]


async def test_an_entry_keeps_who_what_and_where_from(runtime: Runtime) -> None:
    token = context.current.set(context.RequestContext("req-42", "10.0.0.7"))
    try:
        await runtime.audit.record(ALICE, "persona.visibility", "persona", "alice/tutor",
                                   {"from": "private", "to": "public"})
    finally:
        context.current.reset(token)
    (entry,), count = await runtime.audit.list(AuditQuery())
    assert count == 1
    assert (entry.actor_id, entry.actor_name, entry.action, entry.target_type,
            entry.target_id) == ("u-alice", "alice", "persona.visibility", "persona",
                                 "alice/tutor")
    assert entry.summary == {"from": "private", "to": "public"}
    assert (entry.client, entry.request_id) == ("10.0.0.7", "req-42")
    assert entry.at.tzinfo is not None
    assert abs((datetime.now(UTC) - entry.at).total_seconds()) < 60


async def test_filters_by_actor_action_and_target(runtime: Runtime) -> None:
    audit = runtime.audit
    await _seed(audit)
    assert await _actions(audit) == ["persona.sync", "key.revoke", "persona.update",
                                     "persona.create", "user.create"]  # newest first
    assert await _actions(audit, actor="alice") == ["persona.update", "persona.create"]
    assert await _actions(audit, actor="u-admin") == ["key.revoke", "user.create"]
    assert await _actions(audit, action="persona.") == ["persona.sync", "persona.update",
                                                        "persona.create"]
    assert await _actions(audit, action="key.revoke") == ["key.revoke"]
    assert await _actions(audit, target_type="user") == ["user.create"]
    assert await _actions(audit, target_type="persona", target_id="alice/tutor") == [
        "persona.update", "persona.create"]
    entries, count = await audit.list(AuditQuery(actor="alice", action="persona.update"))
    assert count == 1 and entries[0].summary["changed_fields"] == ["description"]


async def test_time_window(runtime: Runtime) -> None:
    await _seed(runtime.audit)
    now = datetime.now(UTC)
    assert len(await _actions(runtime.audit, since=now - timedelta(minutes=5))) == 5
    assert await _actions(runtime.audit, since=now + timedelta(minutes=5)) == []
    assert await _actions(runtime.audit, until=now - timedelta(minutes=5)) == []


async def test_pages_newest_first_with_a_cursor(runtime: Runtime) -> None:
    for number in range(7):
        await runtime.audit.record(ADMIN, "key.create", "key", f"k{number}")
    first, count = await runtime.audit.list(AuditQuery(limit=3))
    assert count == 7 and [e.target_id for e in first] == ["k6", "k5", "k4"]
    second, _ = await runtime.audit.list(AuditQuery(limit=3, cursor=first[-1].id))
    third, _ = await runtime.audit.list(AuditQuery(limit=3, cursor=second[-1].id))
    assert [e.target_id for e in second + third] == ["k3", "k2", "k1", "k0"]


@pytest.mark.parametrize("query", [
    AuditQuery(limit=0), AuditQuery(limit=MAX_LIMIT + 1), AuditQuery(cursor=-1),
    AuditQuery(action="persona.eat"), AuditQuery(action="nothing."),
    AuditQuery(target_type="session"), AuditQuery(actor="x" * 201),
    AuditQuery(since=datetime(2026, 2, 1, tzinfo=UTC), until=datetime(2026, 1, 1, tzinfo=UTC)),
])
async def test_bad_filters_are_refused(runtime: Runtime, query: AuditQuery) -> None:
    with pytest.raises(InvalidInput):
        await runtime.audit.list(query)


async def test_the_largest_page_is_allowed(runtime: Runtime) -> None:
    await _seed(runtime.audit)
    entries, _ = await runtime.audit.list(AuditQuery(limit=MAX_LIMIT))
    assert len(entries) == 5


async def test_only_admins_read_it(runtime: Runtime) -> None:
    with pytest.raises(PermissionDenied):
        await runtime.audit.list(AuditQuery(), viewer=ALICE)
    assert (await runtime.audit.list(AuditQuery(), viewer=ADMIN))[1] == 0


async def test_a_failed_write_is_logged_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_url_for(tmp_path / "empty"))  # no tables: the insert fails
    (tmp_path / "empty").mkdir()
    try:
        with caplog.at_level(logging.ERROR, logger="personae.ops.audit"):
            await AuditLog(AuditStore(engine)).record(ADMIN, "key.revoke", "key", "k1")
    finally:
        await engine.dispose()
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "key.revoke" in caplog.records[0].getMessage()


def test_moments() -> None:
    now = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
    assert parse_moment("1h", "since", now) == datetime(2026, 12, 8, 11, 0, tzinfo=UTC)
    assert parse_moment("7d", "since", now) == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_moment("2026-12-01", "since") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_moment("2026-12-01T10:00:00+02:00", "since") == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC)
    for bad in ("yesterday", "1y", "", "9999999d"):
        with pytest.raises(InvalidInput):
            parse_moment(bad, "since", now)
