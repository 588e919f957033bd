"""The only module that reads and writes the audit log.

Entries are appended, never changed; a listing is newest first, paged by a cursor (the
id of the last entry seen), so pages stay stable while new entries arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.db.tables import audit_log, aware


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: str | None
    actor_name: str | None
    action: str
    target_type: str
    target_id: str | None
    summary: dict[str, Any]
    client: str | None
    request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor_id": self.actor_id,
                "actor_name": self.actor_name, "action": self.action,
                "target_type": self.target_type, "target_id": self.target_id,
                "summary": self.summary, "client": self.client,
                "request_id": self.request_id}


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of a listing (checked by :class:`~personae.ops.audit.AuditLog`)."""

    actor: str | None = None  # a user's name or id
    action: str | None = None  # exact, or a prefix ending in "."
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: int | None = None  # entries older than this id


class AuditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def append(self, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(audit_log.insert().values(**values))

    async def list(self, query: AuditQuery) -> tuple[list[AuditEntry], int]:
        """One page, newest first, and how many entries match the filters in all."""
        conditions = _conditions(query)
        page = sa.select(audit_log).where(*conditions)
        if query.cursor is not None:
            page = page.where(audit_log.c.id < query.cursor)
        page = page.order_by(audit_log.c.id.desc()).limit(query.limit)
        total = sa.select(sa.func.count()).select_from(audit_log).where(*conditions)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(page)).mappings().all()
            count = (await conn.execute(total)).scalar_one()
        return [_entry(row) for row in rows], int(count)


def _conditions(query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if query.actor is not None:
        found.append(sa.or_(audit_log.c.actor_id == query.actor,
                            audit_log.c.actor_name == query.actor))
    if query.action is not None:
        if query.action.endswith("."):
            found.append(audit_log.c.action.startswith(query.action, autoescape=True))
        else:
            found.append(audit_log.c.action == query.action)
    if query.target_type is not None:
        found.append(audit_log.c.target_type == query.target_type)
    if query.target_id is not None:
        found.append(audit_log.c.target_id == query.target_id)
    if query.since is not None:
        found.append(audit_log.c.at >= query.since)
    if query.until is not None:
        found.append(audit_log.c.at < query.until)
    return found


def _entry(row: sa.RowMapping) -> AuditEntry:
    return AuditEntry(id=row["id"], at=aware(row["at"]), actor_id=row["actor_id"],
                      actor_name=row["actor_name"], action=row["action"],
                      target_type=row["target_type"], target_id=row["target_id"],
                      summary=row["summary"] or {}, client=row["client"],
                      request_id=row["request_id"])
