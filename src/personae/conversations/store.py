"""The only module that reads and writes sessions, messages and persona metrics.

Every query that reads a session is scoped to its user: another user's session id
simply does not exist here. A turn claims its session by compare-and-set on
``turn_id``, so "one turn at a time" holds across processes, not just tasks.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.db.tables import aware, messages, persona_metrics, sessions, utcnow


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    user_id: str
    persona_id: str
    persona_version: int
    status: str
    created_at: datetime
    last_active_at: datetime
    turns: int
    response_ms_total: float
    meta: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        average = self.response_ms_total / self.turns if self.turns else None
        return {"id": self.id, "persona_id": self.persona_id,
                "persona_version": self.persona_version, "status": self.status,
                "created_at": self.created_at.isoformat(),
                "last_active_at": self.last_active_at.isoformat(), "turns": self.turns,
                "average_response_ms": round(average, 1) if average is not None else None,
                "meta": self.meta}


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    session_id: str
    role: str
    content: str
    persona_id: str
    persona_version: int
    status: str
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "content": self.content,
                "persona_id": self.persona_id, "persona_version": self.persona_version,
                "status": self.status, "created_at": self.created_at.isoformat(),
                "meta": self.meta}


def _session(row: sa.RowMapping) -> SessionRecord:
    return SessionRecord(
        id=row["id"], user_id=row["user_id"], persona_id=row["persona_id"],
        persona_version=row["persona_version"], status=row["status"],
        created_at=aware(row["created_at"]), last_active_at=aware(row["last_active_at"]),
        turns=row["turns"], response_ms_total=row["response_ms_total"], meta=row["meta"] or {})


def _message(row: sa.RowMapping) -> MessageRecord:
    return MessageRecord(
        id=row["id"], session_id=row["session_id"], role=row["role"], content=row["content"],
        persona_id=row["persona_id"], persona_version=row["persona_version"],
        status=row["status"], created_at=aware(row["created_at"]), meta=row["meta"] or {})


class ConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_session(self, user_id: str, persona_id: str, version: int,
                             meta: dict[str, Any] | None = None) -> SessionRecord:
        now = utcnow()
        values = {"id": uuid.uuid4().hex, "user_id": user_id, "persona_id": persona_id,
                  "persona_version": version, "status": "open", "created_at": now,
                  "last_active_at": now, "turns": 0, "response_ms_total": 0.0,
                  "meta": meta or {}}
        async with self.engine.begin() as conn:
            await conn.execute(sessions.insert().values(**values))
        return _session(values)  # type: ignore[arg-type]

    async def get_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        query = sa.select(sessions).where(sessions.c.id == session_id,
                                          sessions.c.user_id == user_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _session(row) if row else None

    async def list_sessions(self, user_id: str, limit: int, offset: int
                            ) -> tuple[list[SessionRecord], int]:
        where = sessions.c.user_id == user_id
        query = (sa.select(sessions).where(where).order_by(sessions.c.last_active_at.desc())
                 .limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(sessions)
                                        .where(where))).scalar_one()
            rows = (await conn.execute(query)).mappings().all()
        return [_session(r) for r in rows], total

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(sessions.delete().where(
                sessions.c.id == session_id, sessions.c.user_id == user_id))
        return result.rowcount == 1

    async def switch_persona(self, session_id: str, persona_id: str, version: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(
                persona_id=persona_id, persona_version=version, last_active_at=utcnow()))

    async def claim_turn(self, session_id: str, stale_after: timedelta) -> str | None:
        """Claim the session for one turn; None if another turn holds it."""
        turn_id, now = uuid.uuid4().hex, utcnow()
        free = sa.or_(sessions.c.turn_id.is_(None), sessions.c.turn_started_at < now - stale_after)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sessions.update().where(sessions.c.id == session_id, free)
                .values(turn_id=turn_id, turn_started_at=now))
        return turn_id if result.rowcount == 1 else None

    async def turn_busy(self, session_id: str, stale_after: timedelta) -> bool:
        query = sa.select(sessions.c.turn_id).where(
            sessions.c.id == session_id, sessions.c.turn_id.is_not(None),
            sessions.c.turn_started_at >= utcnow() - stale_after)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def finish_turn(self, session_id: str, turn_id: str, response_ms: float | None) -> None:
        values: dict[str, Any] = {"turn_id": None, "turn_started_at": None,
                                  "last_active_at": utcnow()}
        if response_ms is not None:
            values["turns"] = sessions.c.turns + 1
            values["response_ms_total"] = sessions.c.response_ms_total + response_ms
        async with self.engine.begin() as conn:
            await conn.execute(sessions.update().where(
                sessions.c.id == session_id, sessions.c.turn_id == turn_id).values(**values))

    async def add_message(self, session_id: str, role: str, content: str, persona_id: str,
                          version: int, status: str = "complete",
                          meta: dict[str, Any] | None = None) -> MessageRecord:
        values = {"session_id": session_id, "role": role, "content": content,
                  "persona_id": persona_id, "persona_version": version, "status": status,
                  "created_at": utcnow(), "meta": meta or {}}
        async with self.engine.begin() as conn:
            result = await conn.execute(messages.insert().values(**values))
            await conn.execute(sessions.update().where(sessions.c.id == session_id)
                               .values(last_active_at=values["created_at"]))
        key = result.inserted_primary_key
        assert key is not None  # an insert always has one
        return _message({"id": key[0], **values})  # type: ignore[arg-type]

    async def messages(self, session_id: str, limit: int | None = None) -> list[MessageRecord]:
        """Messages oldest first (the last ``limit`` when given)."""
        query = sa.select(messages).where(messages.c.session_id == session_id)
        if limit is not None:
            query = query.order_by(messages.c.id.desc()).limit(limit)
        else:
            query = query.order_by(messages.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [_message(r) for r in rows]
        return found[::-1] if limit is not None else found

    async def expire_idle(self, idle: timedelta) -> int:
        cutoff = utcnow() - idle
        async with self.engine.begin() as conn:
            result = await conn.execute(sessions.update().where(
                sessions.c.status == "open", sessions.c.last_active_at < cutoff,
                sessions.c.turn_id.is_(None)).values(status="expired"))
        return result.rowcount or 0

    async def record_metrics(self, persona_id: str, version: int,
                             values: dict[str, float]) -> None:
        """Add one observation per metric to this hour's bucket (count, total, min, max)."""
        bucket = utcnow().replace(minute=0, second=0, microsecond=0)
        rows = [{"persona_id": persona_id, "version": version, "metric": metric,
                 "bucket_start": bucket, "count": 1, "total": value, "minimum": value,
                 "maximum": value} for metric, value in values.items()]
        async with self.engine.begin() as conn:
            await conn.execute(self._metrics_upsert, rows)

    @functools.cached_property
    def _metrics_upsert(self) -> sa.Insert:
        """One upsert statement, built once so SQLAlchemy caches its compiled form."""
        on_postgres = self.engine.dialect.name == "postgresql"
        insert = (postgresql.insert if on_postgres else sqlite.insert)(persona_metrics)
        smaller = sa.func.least if on_postgres else sa.func.min
        larger = sa.func.greatest if on_postgres else sa.func.max
        cell = persona_metrics.c
        return insert.on_conflict_do_update(
            index_elements=["persona_id", "version", "metric", "bucket_start"],
            set_={"count": cell.count + 1, "total": cell.total + insert.excluded.total,
                  "minimum": smaller(cell.minimum, insert.excluded.minimum),
                  "maximum": larger(cell.maximum, insert.excluded.maximum)})

    async def metrics(self, persona_id: str) -> list[dict[str, Any]]:
        query = (sa.select(persona_metrics).where(persona_metrics.c.persona_id == persona_id)
                 .order_by(persona_metrics.c.bucket_start, persona_metrics.c.metric))
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]
