"""The only module that reads and writes message ratings (``message_ratings``).

One rating per message: rating again replaces it. A rating keeps the persona and
version of the reply it rates, so counting ratings per version needs no join.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.conversations.metrics_store import as_date, utc_day
from personae.conversations.records import MessageRecord
from personae.db.tables import aware, message_ratings, messages, utcnow

Thumb = Literal["up", "down"]
_STORED: dict[str, int] = {"up": 1, "down": -1}


@dataclass(frozen=True, slots=True)
class RatingRecord:
    message_id: int
    session_id: str
    persona_id: str
    persona_version: int
    rating: Thumb
    note: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> RatingRecord:
        return cls(row["message_id"], row["session_id"], row["persona_id"],
                   row["persona_version"], "up" if row["rating"] > 0 else "down", row["note"],
                   aware(row["created_at"]), aware(row["updated_at"]))

    def public(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "session_id": self.session_id,
                "persona_id": self.persona_id, "persona_version": self.persona_version,
                "rating": self.rating, "note": self.note,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True, slots=True)
class RatingCount:
    """Ratings of one persona version's replies given on one UTC day."""

    version: int
    day: date
    up: int
    down: int


class RatingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def message(self, session_id: str, message_id: int) -> MessageRecord | None:
        """The message if that session holds it (the caller checked the session's owner)."""
        query = sa.select(messages).where(messages.c.id == message_id,
                                          messages.c.session_id == session_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return MessageRecord.from_row(row) if row is not None else None

    async def put(self, user_id: str, reply: MessageRecord, rating: Thumb,
                  note: str | None) -> RatingRecord:
        """Rate a reply, replacing any rating it had (its first rating time stays)."""
        now = utcnow()
        values = {"message_id": reply.id, "session_id": reply.session_id, "user_id": user_id,
                  "persona_id": reply.persona_id, "persona_version": reply.persona_version,
                  "rating": _STORED[rating], "note": note, "created_at": now, "updated_at": now}
        insert = (postgresql.insert(message_ratings) if self.engine.dialect.name == "postgresql"
                  else sqlite.insert(message_ratings)).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=[message_ratings.c.message_id],
            set_={"rating": insert.excluded.rating, "note": insert.excluded.note,
                  "updated_at": insert.excluded.updated_at})
        async with self.engine.begin() as conn:
            await conn.execute(upsert)
            row = (await conn.execute(sa.select(message_ratings).where(
                message_ratings.c.message_id == reply.id))).mappings().one()
        return RatingRecord.from_row(row)

    async def of_session(self, session_id: str) -> list[RatingRecord]:
        """Every rating given in one session, oldest message first."""
        query = (sa.select(message_ratings).where(message_ratings.c.session_id == session_id)
                 .order_by(message_ratings.c.message_id))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [RatingRecord.from_row(row) for row in rows]

    async def delete(self, session_id: str, message_id: int) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(message_ratings.delete().where(
                message_ratings.c.message_id == message_id,
                message_ratings.c.session_id == session_id))
        return result.rowcount == 1

    async def daily_counts(self, persona_id: str, since: datetime,
                           version: int | None = None) -> list[RatingCount]:
        """Thumbs up and down per version and UTC day of the (latest) rating."""
        table = message_ratings
        day = utc_day(table.c.updated_at, self.engine.dialect.name).label("day")
        where = [table.c.persona_id == persona_id, table.c.updated_at >= since]
        if version is not None:
            where.append(table.c.persona_version == version)
        up = sa.func.sum(sa.case((table.c.rating > 0, 1), else_=0))
        down = sa.func.sum(sa.case((table.c.rating < 0, 1), else_=0))
        query = (sa.select(table.c.persona_version, day, up, down).where(*where)
                 .group_by(table.c.persona_version, day)
                 .order_by(table.c.persona_version, day))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [RatingCount(v, as_date(on), int(ups or 0), int(downs or 0))
                for v, on, ups, downs in rows]
