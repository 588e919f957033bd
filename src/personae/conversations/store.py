"""The only module that reads and writes sessions, messages and persona metrics.

Every query that reads a session is scoped to its user: another user's session id
simply does not exist here. A turn claims its session by compare-and-set on
``turn_id``, so "one turn at a time" holds across processes, not just tasks. The claim
is a lease (see ``conversations.durability``): free once ``turn_expires_at`` has passed,
and whoever takes a claim over, or recovers a dead holder's, marks the replies that
holder left ``streaming`` as ``interrupted`` in the same transaction.

A turn costs three round trips: the session read (its claim with it, for the 409
before anything starts), :meth:`ConversationStore.open_turn` (claim, history, the
user's message and the reply's row) and :meth:`ConversationStore.end_turn` (the reply,
the release, the metrics); calls made at the same time share them (see ``batches``).
Their statements are built once, so SQLAlchemy compiles each a single time.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personae.conversations.batches import Batches
from personae.conversations.records import (
    MessageRecord,
    MessageRevision,
    OpenedTurn,
    Recovered,
    SessionRecord,
    TurnEnd,
    TurnHolder,
    TurnOpening,
    metric_rows,
)
from personae.db.tables import messages, persona_metrics, sessions, utcnow

__all__ = ["ConversationStore", "MessageRecord", "OpenedTurn", "Recovered", "SessionRecord",
           "TurnEnd", "TurnHolder", "TurnOpening"]


class ConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Concurrent calls share a query, a transaction (see ``batches``).
        self.session_reads: Batches[tuple[str, str], SessionRecord | None] = Batches(
            self._read_sessions, "session-reads", retry_alone=_one_rows_fault)
        self.turn_opens: Batches[TurnOpening, OpenedTurn | None] = Batches(
            self._open_turns, "turn-opens", abandoned=self._let_go,
            retry_alone=_one_rows_fault)
        self.turn_ends: Batches[TurnEnd, None] = Batches(
            self._end_turns, "turn-ends", retry_alone=_one_rows_fault)
        self.reply_flushes: Batches[tuple[int, str], None] = Batches(
            self._flush_replies, "reply-flushes", retry_alone=_one_rows_fault)

    async def create_session(self, user_id: str, persona_id: str, version: int,
                             meta: dict[str, Any] | None = None) -> SessionRecord:
        now = utcnow()
        values = {"id": uuid.uuid4().hex, "user_id": user_id, "persona_id": persona_id,
                  "persona_version": version, "status": "open", "created_at": now,
                  "last_active_at": now, "turns": 0, "response_ms_total": 0.0,
                  "meta": meta or {}}
        async with self.engine.begin() as conn:
            await conn.execute(sessions.insert().values(**values))
        return SessionRecord.from_row(values)

    async def get_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        """The user's session, with whether a live turn holds it (``answering``); reads
        made at the same time share one query."""
        return await self.session_reads((user_id, session_id))

    async def _read_sessions(self, wanted: list[tuple[str, str]]) -> list[SessionRecord | None]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_GET_SESSIONS, {"ids": sorted({s for _, s in wanted})})
                    ).mappings().all()
        found = {row["id"]: row for row in rows}
        return [SessionRecord.from_row(found[session_id]) if session_id in found
                and found[session_id]["user_id"] == user_id else None
                for user_id, session_id in wanted]

    async def list_sessions(self, user_id: str, limit: int, offset: int
                            ) -> tuple[list[SessionRecord], int]:
        where = sessions.c.user_id == user_id
        query = (sa.select(sessions).where(where).order_by(sessions.c.last_active_at.desc())
                 .limit(limit).offset(offset))
        async with self.engine.connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(sessions)
                                        .where(where))).scalar_one()
            rows = (await conn.execute(query)).mappings().all()
        return [SessionRecord.from_row(r) for r in rows], total

    async def count_open_sessions(self) -> int:
        """Sessions open now, every user's (for the metrics gauge)."""
        query = sa.select(sa.func.count()).select_from(sessions).where(
            sessions.c.status == "open")
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

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
        async with self.engine.begin() as conn:
            return (await _claim_all(conn, [(session_id, holder, lease)]))[0]

    async def open_turn(self, opening: TurnOpening) -> OpenedTurn | None:
        """Claim the session (as :meth:`claim_turn`), read its last messages and save the
        user's message with the reply's row, in one transaction, which turns opened at
        the same time share; None (nothing written) while another live turn holds it."""
        return await self.turn_opens(opening)

    async def _open_turns(self, openings: list[TurnOpening]) -> list[OpenedTurn | None]:
        async with self.engine.begin() as conn:
            turn_ids = await _claim_all(conn, [(o.session_id, o.holder, o.lease)
                                               for o in openings])
            claimed = [o for o, turn_id in zip(openings, turn_ids, strict=True) if turn_id]
            if claimed:
                histories = await _histories(conn, claimed)
                exchanges = await _insert_exchanges(conn, claimed)
        return [OpenedTurn(turn_id, *exchanges[o.session_id],
                           histories.get(o.session_id, [])[-o.history_limit:])
                if turn_id else None for o, turn_id in zip(openings, turn_ids, strict=True)]

    async def _let_go(self, opened: OpenedTurn | None) -> None:
        """A turn opened for a caller that is gone: its reply fails, its claim is freed."""
        if opened is not None:
            await self.end_turns([TurnEnd(opened.reply.session_id, opened.turn_id,
                                          replace(opened.reply, status="failed"), None, {})])

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
        async with self.engine.begin() as conn:
            await conn.execute(_RELEASE, _released(session_id, turn_id, response_ms))

    async def end_turn(self, end: TurnEnd) -> None:
        """Save a finished turn (see :meth:`end_turns`) with those ending at that time."""
        await self.turn_ends(end)

    async def _end_turns(self, ends: list[TurnEnd]) -> list[None]:
        await self.end_turns(ends)
        return [None] * len(ends)

    async def end_turns(self, ends: Sequence[TurnEnd]) -> None:
        """Each turn's reply in its final state, its session released, and the personas'
        metrics, all in one transaction (a group commit: one for many turns under load).
        The shared metric rows come last and in one order, so their locks are held least
        and two transactions never wait on each other."""
        ends = sorted(ends, key=lambda end: end.session_id)  # one lock order (see _by_session)
        async with self.engine.begin() as conn:
            await conn.execute(_FINISH_REPLY, [
                {"message": end.reply.id, "content": end.reply.content,
                 "status": end.reply.status, "meta": end.reply.meta} for end in ends])
            await conn.execute(_RELEASE, [_released(end.session_id, end.turn_id,
                                                    end.response_ms) for end in ends])
            if rows := metric_rows((end.reply.persona_id, end.reply.persona_version,
                                     end.metrics) for end in ends):
                await conn.execute(self._metrics_upsert, rows)

    async def add_metrics(self, persona_id: str, version: int,
                          metrics: dict[str, float]) -> None:
        """Observations made after a turn ended (a spoken reply's audio timings)."""
        if rows := metric_rows([(persona_id, version, metrics)]):
            async with self.engine.begin() as conn:
                await conn.execute(self._metrics_upsert, rows)

    async def annotate_message(self, session_id: str, message_id: int, meta: dict[str, Any],
                               revision: MessageRevision | None = None
                               ) -> MessageRecord | None:
        """Merge ``meta`` into a message's metadata (keys given replace those there) and
        apply ``revision`` (a changed text keeps the old one as ``meta.written``); None
        when the session holds no such message. The row is locked while it is merged."""
        where = sa.and_(messages.c.id == message_id, messages.c.session_id == session_id)
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(messages).where(where).with_for_update())
                   ).mappings().first()
            if row is None:
                return None
            values: dict[str, Any] = {"meta": {**(row["meta"] or {}), **meta}}
            if revision is not None:
                values.update(revision.values(row["content"], values["meta"]))
            await conn.execute(messages.update().where(where).values(**values))
        return MessageRecord.from_row({**row, **values})

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
        return MessageRecord.from_row({"id": key[0], **values})

    async def flush_reply(self, message_id: int, content: str) -> None:
        """Write a streaming reply's text so far (a finished reply is left alone), in one
        transaction with the replies flushed at the same time."""
        await self.reply_flushes((message_id, content))

    async def _flush_replies(self, flushes: list[tuple[int, str]]) -> list[None]:
        async with self.engine.begin() as conn:
            await conn.execute(_FLUSH_REPLY, [{"message": message, "content": content}
                                              for message, content in flushes])
        return [None] * len(flushes)

    async def messages(self, session_id: str, limit: int | None = None) -> list[MessageRecord]:
        """Messages oldest first (the last ``limit`` when given)."""
        query = sa.select(messages).where(messages.c.session_id == session_id)
        if limit is not None:
            query = query.order_by(messages.c.id.desc()).limit(limit)
        else:
            query = query.order_by(messages.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        found = [MessageRecord.from_row(r) for r in rows]
        return found[::-1] if limit is not None else found

    async def expire_idle(self, idle: timedelta) -> int:
        now = utcnow()
        unclaimed = sa.or_(sessions.c.turn_id.is_(None), sessions.c.turn_expires_at < now)
        async with self.engine.begin() as conn:
            result = await conn.execute(sessions.update().where(
                sessions.c.status == "open", sessions.c.last_active_at < now - idle,
                unclaimed).values(status="expired"))
        return result.rowcount or 0

    @functools.cached_property
    def _metrics_upsert(self) -> sa.TextClause:
        """The metrics upsert as text: SQLAlchemy's own upsert constructs are compiled
        again at every execution, a text statement once."""
        smaller, larger = (("least", "greatest") if self.engine.dialect.name == "postgresql"
                           else ("min", "max"))
        return sa.text(_UPSERT_METRICS.format(smaller=smaller, larger=larger)).bindparams(
            _param("bucket_start", persona_metrics.c.bucket_start))

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


# -- the turn's statements, built once ---------------------------------------------------

_UPSERT_METRICS = """INSERT INTO persona_metrics
(persona_id, version, metric, bucket_start, count, total, minimum, maximum)
VALUES (:persona_id, :version, :metric, :bucket_start, :count, :total, :minimum, :maximum)
ON CONFLICT (persona_id, version, metric, bucket_start) DO UPDATE SET
count = persona_metrics.count + excluded.count, total = persona_metrics.total + excluded.total,
minimum = {smaller}(persona_metrics.minimum, excluded.minimum),
maximum = {larger}(persona_metrics.maximum, excluded.maximum)"""


def _param(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=column.type)


_GET_SESSIONS = sa.select(sessions).where(sessions.c.id.in_(sa.bindparam("ids", expanding=True)))
_CLAIM = sessions.update().values(**{name: _param(param, sessions.c[name]) for name, param in (
    ("turn_id", "turn"), ("turn_started_at", "now"), ("turn_expires_at", "expires"),
    ("turn_holder", "holder"), ("turn_node", "node"), ("last_active_at", "now"))})
_CLAIM_EXPIRED = _CLAIM.where(sessions.c.id == sa.bindparam("session"), sessions.c.turn_expires_at
                              < _param("now", sessions.c.turn_expires_at))
_INTERRUPT_LEFT = _interrupt_streaming(messages.c.session_id == sa.bindparam("session"))
_CLAIM_ALL_FREE = _CLAIM.where(sessions.c.id.in_(sa.bindparam("ids", expanding=True)),
                               sessions.c.turn_id.is_(None)).returning(sessions.c.id)
_RANKED = sa.select(messages, sa.func.row_number().over(  # newest first, per session
    partition_by=messages.c.session_id, order_by=messages.c.id.desc()).label("place")).where(
    messages.c.session_id.in_(sa.bindparam("ids", expanding=True))).subquery()
_RECENT = (sa.select(*[_RANKED.c[column.name] for column in messages.c])
           .where(_RANKED.c.place <= sa.bindparam("limit")).order_by(_RANKED.c.id))
_INSERT_MESSAGES = messages.insert().returning(  # many rows, one statement
    messages.c.id, messages.c.session_id, messages.c.role)
_FLUSH_REPLY = messages.update().where(
    messages.c.id == sa.bindparam("message"), messages.c.status == "streaming").values(
    content=_param("content", messages.c.content))
_FINISH_REPLY = messages.update().where(messages.c.id == sa.bindparam("message")).values(
    **{name: _param(name, messages.c[name]) for name in ("content", "status", "meta")})
_RELEASE = sessions.update().where(  # if this turn still holds it; a reply counts a turn
    sessions.c.id == sa.bindparam("session"), sessions.c.turn_id == sa.bindparam("turn")).values(
    **_RELEASED, last_active_at=_param("now", sessions.c.last_active_at),
    turns=sessions.c.turns + _param("counted", sessions.c.turns),
    response_ms_total=sessions.c.response_ms_total + _param("ms", sessions.c.response_ms_total))


async def _take_over(conn: AsyncConnection, session_id: str, turn_id: str,
                     holder: TurnHolder, lease: timedelta) -> bool:
    """Claim an expired session; the replies its holder left streaming are interrupted."""
    values = _claim_values(holder, lease) | {"session": session_id, "turn": turn_id}
    if (await conn.execute(_CLAIM_EXPIRED, values)).rowcount != 1:
        return False
    await conn.execute(_INTERRUPT_LEFT, {"session": session_id})
    return True


async def _claim_all(conn: AsyncConnection, wanted: list[tuple[str, TurnHolder, timedelta]]
                     ) -> list[str | None]:
    """Each claim's turn id, or None: one compare-and-set claims every free session (the
    first claim of a session gets it), then expired claims are taken over one by one."""
    turn_id, free = uuid.uuid4().hex, set[str]()
    for claimant in {(holder, lease) for _, holder, lease in wanted}:
        holder, lease = claimant
        ids = sorted({session for session, *rest in wanted if tuple(rest) == claimant})
        values = _claim_values(holder, lease) | {"ids": ids, "turn": turn_id}
        free.update((await conn.execute(_CLAIM_ALL_FREE, values)).scalars())
    claimed: list[str | None] = [None] * len(wanted)
    for index, (session_id, holder, lease) in _by_session(enumerate(wanted)):
        if session_id in free:
            free.discard(session_id)
            claimed[index] = turn_id
        else:
            late = uuid.uuid4().hex
            if await _take_over(conn, session_id, late, holder, lease):
                claimed[index] = late
    return claimed


def _by_session(items: Iterable[tuple[int, tuple[str, TurnHolder, timedelta]]]
                ) -> list[tuple[int, tuple[str, TurnHolder, timedelta]]]:
    """In session order (a stable sort: the first claim of a session stays first), so
    every transaction locks sessions in one order and none waits on another in a ring."""
    return sorted(items, key=lambda item: item[1][0])


def _claim_values(holder: TurnHolder, lease: timedelta) -> dict[str, Any]:
    now = utcnow()
    return {"now": now, "expires": now + lease, "holder": holder.instance, "node": holder.node}


async def _histories(conn: AsyncConnection, openings: list[TurnOpening]
                     ) -> dict[str, list[MessageRecord]]:
    """Each session's last messages, oldest first (as many as the largest limit asked)."""
    found: dict[str, list[MessageRecord]] = {}
    rows = await conn.execute(_RECENT, {"ids": sorted({o.session_id for o in openings}),
                                        "limit": max(o.history_limit for o in openings)})
    for row in rows.mappings():
        found.setdefault(row["session_id"], []).append(MessageRecord.from_row(row))
    return found


async def _insert_exchanges(conn: AsyncConnection, openings: list[TurnOpening]
                            ) -> dict[str, tuple[MessageRecord, MessageRecord]]:
    """Each turn's user message and its reply's empty ``streaming`` row, in one statement."""
    now, pairs = utcnow(), list[tuple[dict[str, Any], dict[str, Any]]]()
    for o in openings:
        common = {"session_id": o.session_id, "persona_id": o.persona_id,
                  "persona_version": o.version, "created_at": now, "meta": {}}
        pairs.append(({**common, "role": "user", "content": o.text, "status": "complete",
                       "meta": o.user_meta},
                      {**common, "role": "assistant", "content": "", "status": "streaming"}))
    result = await conn.execute(_INSERT_MESSAGES, [row for pair in pairs for row in pair])
    ids = {(session_id, role): key for key, session_id, role in result}
    return {user["session_id"]: (
        MessageRecord.from_row({"id": ids[user["session_id"], "user"], **user}),
        MessageRecord.from_row({"id": ids[user["session_id"], "assistant"], **reply}))
        for user, reply in pairs}


def _one_rows_fault(error: Exception) -> bool:
    """A failure one call of a batch can cause alone (a constraint, a value's range)."""
    return isinstance(error, sa.exc.IntegrityError | sa.exc.DataError)


def _released(session_id: str, turn_id: str, response_ms: float | None) -> dict[str, Any]:
    return {"session": session_id, "turn": turn_id, "now": utcnow(),
            "counted": int(response_ms is not None), "ms": response_ms or 0.0}
