"""The only module that reads and writes sessions, messages and persona metrics.

Every query that reads a session is scoped to its user: another user's session id
simply does not exist here. A turn claims its session by compare-and-set on
``turn_id``, so "one turn at a time" holds across processes, not just tasks. The claim
is a lease (see ``conversations.durability``): free once ``turn_expires_at`` has passed,
and whoever takes a claim over, or recovers a dead holder's, marks the replies that
holder left ``streaming`` as ``interrupted`` in the same transaction.
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


@dataclass(frozen=True, slots=True)
class TurnHolder:
    """Who holds a turn claim: a process (``instance``, new at every start) and, for a
    server, the ``node`` name its restarts share (None: freed by expiry alone)."""

    instance: str
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Recovered:
    """What :meth:`ConversationStore.recover_turns` released and interrupted."""

    claims: int = 0
    replies: int = 0


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

    async def close_session(self, session_id: str) -> None:
        """Mark an open session closed: it keeps its history but takes no more turns."""
        async with self.engine.begin() as conn:
            await conn.execute(sessions.update().where(
                sessions.c.id == session_id, sessions.c.status == "open").values(status="closed"))

    async def claim_turn(self, session_id: str, holder: TurnHolder,
                         lease: timedelta) -> str | None:
        """Claim the session for one turn; None while another live turn holds it.

        An expired claim is taken over; the replies its holder left ``streaming``
        become ``interrupted`` in the same transaction."""
        turn_id, now = uuid.uuid4().hex, utcnow()
        claim = sessions.update().values(
            turn_id=turn_id, turn_started_at=now, turn_expires_at=now + lease,
            turn_holder=holder.instance, turn_node=holder.node)
        async with self.engine.begin() as conn:
            free = await conn.execute(claim.where(sessions.c.id == session_id,
                                                  sessions.c.turn_id.is_(None)))
            if free.rowcount == 1:
                return turn_id
            expired = await conn.execute(claim.where(sessions.c.id == session_id,
                                                     sessions.c.turn_expires_at < now))
            if expired.rowcount != 1:
                return None
            await conn.execute(_interrupt_streaming(messages.c.session_id == session_id))
        return turn_id

    async def renew_turn(self, session_id: str, turn_id: str, lease: timedelta) -> bool:
        """Extend this turn's lease; False if the claim is no longer this turn's."""
        async with self.engine.begin() as conn:
            result = await conn.execute(sessions.update().where(
                sessions.c.id == session_id, sessions.c.turn_id == turn_id)
                .values(turn_expires_at=utcnow() + lease))
        return result.rowcount == 1

    async def turn_busy(self, session_id: str) -> bool:
        query = sa.select(sessions.c.turn_id).where(
            sessions.c.id == session_id, sessions.c.turn_id.is_not(None),
            sessions.c.turn_expires_at >= utcnow())
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def finish_turn(self, session_id: str, turn_id: str, response_ms: float | None) -> None:
        values: dict[str, Any] = {**_RELEASED, "last_active_at": utcnow()}
        if response_ms is not None:
            values["turns"] = sessions.c.turns + 1
            values["response_ms_total"] = sessions.c.response_ms_total + response_ms
        async with self.engine.begin() as conn:
            await conn.execute(sessions.update().where(
                sessions.c.id == session_id, sessions.c.turn_id == turn_id).values(**values))

    async def recover_turns(self, holder: TurnHolder) -> Recovered:
        """Release the claims whose holder is gone (expired, or held by an earlier process
        of ``holder.node``) and interrupt the replies they left ``streaming``; also any
        ``streaming`` reply whose session no turn holds."""
        dead = _dead_claims(holder, utcnow())
        async with self.engine.connect() as conn:
            claims = (await conn.execute(
                sa.select(sessions.c.id, sessions.c.turn_id).where(dead))).all()
        released = replies = 0
        for session_id, turn_id in claims:
            async with self.engine.begin() as conn:  # compare-and-set, one session at a time
                result = await conn.execute(sessions.update().where(
                    sessions.c.id == session_id, sessions.c.turn_id == turn_id,
                    _dead_claims(holder, utcnow())).values(**_RELEASED))
                if result.rowcount == 1:
                    released += 1
                    replies += (await conn.execute(_interrupt_streaming(
                        messages.c.session_id == session_id))).rowcount or 0
        unclaimed = sa.select(sessions.c.id).where(sessions.c.turn_id.is_(None))
        async with self.engine.begin() as conn:
            replies += (await conn.execute(_interrupt_streaming(
                messages.c.session_id.in_(unclaimed)))).rowcount or 0
        return Recovered(released, replies)

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

    async def open_exchange(self, session_id: str, text: str, persona_id: str, version: int
                            ) -> tuple[MessageRecord, MessageRecord]:
        """The user's message and, in the same transaction, the reply's row (empty,
        ``streaming``), so a reply has a row before its first word reaches anyone."""
        now = utcnow()
        common = {"session_id": session_id, "persona_id": persona_id,
                  "persona_version": version, "created_at": now, "meta": {}}
        user = {**common, "role": "user", "content": text, "status": "complete"}
        reply = {**common, "role": "assistant", "content": "", "status": "streaming"}
        async with self.engine.begin() as conn:
            user_key = (await conn.execute(messages.insert().values(**user))).inserted_primary_key
            reply_key = (await conn.execute(messages.insert().values(**reply))
                         ).inserted_primary_key
            await conn.execute(sessions.update().where(sessions.c.id == session_id)
                               .values(last_active_at=now))
        assert user_key is not None and reply_key is not None  # an insert always has one
        return (_message({"id": user_key[0], **user}),  # type: ignore[arg-type]
                _message({"id": reply_key[0], **reply}))  # type: ignore[arg-type]

    async def flush_reply(self, message_id: int, content: str) -> None:
        """Write a streaming reply's text so far (a finished reply is left alone)."""
        async with self.engine.begin() as conn:
            await conn.execute(messages.update().where(
                messages.c.id == message_id, messages.c.status == "streaming")
                .values(content=content))

    async def finish_reply(self, message_id: int, content: str, status: str,
                           meta: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(messages.update().where(messages.c.id == message_id)
                               .values(content=content, status=status, meta=meta))

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
        now = utcnow()
        unclaimed = sa.or_(sessions.c.turn_id.is_(None), sessions.c.turn_expires_at < now)
        async with self.engine.begin() as conn:
            result = await conn.execute(sessions.update().where(
                sessions.c.status == "open", sessions.c.last_active_at < now - idle,
                unclaimed).values(status="expired"))
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


_RELEASED: dict[str, Any] = {"turn_id": None, "turn_started_at": None, "turn_expires_at": None,
                             "turn_holder": None, "turn_node": None}


def _dead_claims(holder: TurnHolder, now: datetime) -> sa.ColumnElement[bool]:
    """Claims no live process holds: expired, or taken by an earlier run of this node."""
    gone = sessions.c.turn_expires_at < now
    if holder.node is not None:
        gone = sa.or_(gone, sa.and_(sessions.c.turn_node == holder.node,
                                    sessions.c.turn_holder != holder.instance))
    return sa.and_(sessions.c.turn_id.is_not(None), gone)


def _interrupt_streaming(where: sa.ColumnElement[bool]) -> sa.Update:
    """Replies left ``streaming`` by a turn that is gone keep their flushed text."""
    return (messages.update().where(where, messages.c.status == "streaming")
            .values(status="interrupted"))
