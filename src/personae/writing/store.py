"""The only module that reads and writes writing samples.

A persona's samples are one set: every write replaces the whole set in one
transaction, so a reader sees the old set or the new one, never a mix. Rows go with
their persona (``ON DELETE CASCADE``); nothing here decides who may read them (the
service does).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.db.tables import aware, utcnow, writing_samples
from personae.writing.records import SampleText, StoredSample


class WritingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def replace(self, persona_id: str, owner_id: str | None,
                      samples: Sequence[SampleText], words: Sequence[int]) -> None:
        """Make ``samples`` (with their word counts) the persona's whole set."""
        now = utcnow()
        rows = [{"persona_id": persona_id, "owner_id": owner_id, "position": position,
                 "title": sample.title, "text": sample.text, "words": count,
                 "sha256": sample.sha256, "created_at": now}
                for position, (sample, count) in enumerate(zip(samples, words, strict=True))]
        async with self.engine.begin() as conn:
            await conn.execute(sa.delete(writing_samples)
                               .where(writing_samples.c.persona_id == persona_id))
            if rows:
                await conn.execute(sa.insert(writing_samples), rows)

    async def samples(self, persona_id: str) -> builtins.list[StoredSample]:
        """The persona's samples in their order (none: an empty list)."""
        query = (sa.select(writing_samples)
                 .where(writing_samples.c.persona_id == persona_id)
                 .order_by(writing_samples.c.position))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [StoredSample(row.persona_id, row.position, row.title, row.text, row.words,
                             row.sha256, aware(row.created_at)) for row in rows]

    async def count(self, persona_id: str) -> int:
        query = sa.select(sa.func.count()).select_from(writing_samples).where(
            writing_samples.c.persona_id == persona_id)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
