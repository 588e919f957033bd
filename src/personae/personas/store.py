"""The only module that reads and writes persona rows.

Every write is one transaction that appends an immutable version, moves the persona's
``current_version`` forward by compare-and-set (so a stale write fails instead of
overwriting), stores the files the version names for the first time, and records a
change for other processes' caches. Files (``persona_assets``) are content-addressed
and never change; each belongs to one persona id, and a version may only name files
stored for its own persona or written with it, so no definition reaches another
persona's files by their hash.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personae.db.changes import record_changes
from personae.db.engine import is_sqlite
from personae.db.tables import (
    aware,
    change_log,
    persona_assets,
    persona_metrics,
    persona_tags,
    persona_versions,
    personas,
    utcnow,
)
from personae.errors import Conflict, FieldIssue, NotFound, ValidationFailed, VersionConflict
from personae.personas.records import (
    ListQuery,
    NewVersion,
    Page,
    PersonaRecord,
    PersonaSummary,
    Sort,
    SourceState,
    VersionRecord,
)
from personae.personas.schema import PersonaAsset, PersonaDefinition, Status, Visibility


def _search_text(definition: PersonaDefinition) -> str:
    parts = [definition.id, definition.name, definition.display_name or "",
             definition.description, definition.role or "", definition.speciality or "",
             " ".join(definition.tags)]
    return " ".join(p for p in parts if p).lower()


def _row_values(new: NewVersion, number: int, now: datetime) -> dict[str, Any]:
    definition = new.definition
    return {
        "status": definition.status.value,
        "current_version": number,
        "name": definition.name,
        "display_name": definition.display_name,
        "language": definition.language,
        "search_text": _search_text(definition),
        "definition_hash": new.digest,
        "source_hash": new.source_hash,
        "updated_at": now,
    }


def _version_values(persona_id: str, new: NewVersion, number: int,
                    now: datetime) -> dict[str, Any]:
    return {
        "persona_id": persona_id,
        "number": number,
        "definition": new.data,
        "definition_hash": new.digest,
        "author": new.author,
        "note": new.note,
        "created_at": now,
    }


def _ordered(select: sa.Select[Any], sort: Sort) -> sa.Select[Any]:
    """A listing in ``sort`` order, ties by name then id (so pages never overlap)."""
    ties = (personas.c.name, personas.c.id)
    if sort == "newest":
        return select.order_by(personas.c.created_at.desc(), *ties)
    if sort == "updated":
        return select.order_by(personas.c.updated_at.desc(), *ties)
    if sort == "most_used":
        turns = (sa.select(persona_metrics.c.persona_id,
                           sa.func.sum(persona_metrics.c.total).label("turns"))
                 .where(persona_metrics.c.metric == "turns")
                 .group_by(persona_metrics.c.persona_id).subquery())
        return (select.outerjoin(turns, turns.c.persona_id == personas.c.id)
                .order_by(sa.func.coalesce(turns.c.turns, 0).desc(), *ties))
    return select.order_by(*ties)


class PersonaStore:
    """Persona persistence over an async engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.notifies = not is_sqlite(engine.url)

    # -- reads -------------------------------------------------------------

    async def get(self, persona_id: str) -> PersonaRecord | None:
        query = (
            sa.select(personas, persona_versions.c.definition)
            .join(persona_versions, sa.and_(
                persona_versions.c.persona_id == personas.c.id,
                persona_versions.c.number == personas.c.current_version))
            .where(personas.c.id == persona_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return PersonaRecord(
            id=row["id"], owner_id=row["owner_id"], visibility=Visibility(row["visibility"]),
            status=Status(row["status"]), version=row["current_version"],
            definition=PersonaDefinition.model_validate(row["definition"]),
            definition_hash=row["definition_hash"], created_at=aware(row["created_at"]),
            updated_at=aware(row["updated_at"]),
        )

    async def list(self, query: ListQuery) -> Page:
        where = self._filters(query)
        count_q = sa.select(sa.func.count()).select_from(personas).where(*where)
        page_q = _ordered(sa.select(personas).where(*where), query.sort) \
            .limit(query.limit).offset(query.offset)
        async with self.engine.connect() as conn:
            total = (await conn.execute(count_q)).scalar_one()
            rows = (await conn.execute(page_q)).mappings().all()
            tags = await self._tags_for(conn, [r["id"] for r in rows])
        summaries = [
            PersonaSummary(
                id=r["id"], name=r["name"], display_name=r["display_name"],
                language=r["language"], status=Status(r["status"]),
                visibility=Visibility(r["visibility"]), owner_id=r["owner_id"],
                version=r["current_version"], tags=tags.get(r["id"], []),
                updated_at=aware(r["updated_at"]),
            )
            for r in rows
        ]
        return Page(data=summaries, count=total)

    @staticmethod
    def _filters(query: ListQuery) -> builtins.list[sa.ColumnElement[bool]]:
        where: builtins.list[sa.ColumnElement[bool]] = []
        if not query.admin:
            where.append(sa.or_(personas.c.owner_id.is_(None),
                                personas.c.visibility == Visibility.public.value,
                                personas.c.owner_id == query.viewer_id))
        if query.status is not None:
            where.append(personas.c.status == query.status.value)
        elif not query.include_archived:
            where.append(personas.c.status != Status.archived.value)
        if query.language:
            where.append(personas.c.language == query.language)
        if query.owner == "global":
            where.append(personas.c.owner_id.is_(None))
        elif query.owner:
            where.append(personas.c.owner_id == query.owner)
        if query.tag:
            tagged = sa.select(persona_tags.c.persona_id).where(persona_tags.c.tag == query.tag)
            where.append(personas.c.id.in_(tagged))
        if query.text:
            pattern = "%" + query.text.lower().replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_") + "%"
            where.append(personas.c.search_text.like(pattern, escape="\\"))
        return where

    @staticmethod
    async def _tags_for(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, builtins.list[str]]:
        if not ids:
            return {}
        rows = await conn.execute(
            sa.select(persona_tags.c.persona_id, persona_tags.c.tag)
            .where(persona_tags.c.persona_id.in_(ids)).order_by(persona_tags.c.tag))
        found: dict[str, builtins.list[str]] = {}
        for persona_id, tag in rows:
            found.setdefault(persona_id, []).append(tag)
        return found

    async def versions(self, persona_id: str) -> builtins.list[VersionRecord]:
        query = (sa.select(persona_versions).where(persona_versions.c.persona_id == persona_id)
                 .order_by(persona_versions.c.number))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [self._version(row) for row in rows]

    async def version(self, persona_id: str, number: int) -> VersionRecord | None:
        query = sa.select(persona_versions).where(
            persona_versions.c.persona_id == persona_id, persona_versions.c.number == number)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return self._version(row) if row else None

    @staticmethod
    def _version(row: Any) -> VersionRecord:
        return VersionRecord(
            persona_id=row["persona_id"], number=row["number"],
            definition=PersonaDefinition.model_validate(row["definition"]),
            definition_hash=row["definition_hash"], author=row["author"], note=row["note"],
            created_at=aware(row["created_at"]),
        )

    async def asset(self, persona_id: str, sha256: str) -> tuple[str, bytes] | None:
        """One stored file of the persona: (media type, bytes)."""
        query = sa.select(persona_assets.c.media_type, persona_assets.c.data).where(
            persona_assets.c.persona_id == persona_id, persona_assets.c.sha256 == sha256)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row[0], bytes(row[1])) if row else None

    async def asset_data(self, persona_id: str, digests: Iterable[str]) -> dict[str, bytes]:
        """The bytes of the persona's stored files among ``digests``."""
        wanted = sorted(set(digests))
        if not wanted:
            return {}
        query = sa.select(persona_assets.c.sha256, persona_assets.c.data).where(
            persona_assets.c.persona_id == persona_id, persona_assets.c.sha256.in_(wanted))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row[0]: bytes(row[1]) for row in rows}

    async def source_states(self) -> dict[str, SourceState]:
        query = sa.select(personas.c.id, personas.c.owner_id, personas.c.current_version,
                          personas.c.definition_hash, personas.c.source_hash)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {r[0]: SourceState(r[0], r[1], r[2], r[3], r[4]) for r in rows}

    async def _existing(self, ids: Sequence[str]) -> builtins.list[str]:
        query = sa.select(personas.c.id).where(personas.c.id.in_(ids))
        async with self.engine.connect() as conn:
            found = set((await conn.execute(query)).scalars())
        return [pid for pid in ids if pid in found]

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(personas))) \
                .scalar_one()

    # -- writes ------------------------------------------------------------

    async def create(self, items: Sequence[tuple[NewVersion, str | None, Visibility]]) -> None:
        """Create personas in one transaction; an existing id fails them all (409)."""
        ids = [new.definition.id for new, _, _ in items]
        try:
            async with self.engine.begin() as conn:
                await self._insert_new(conn, items)
                await self._record_changes(conn, ids)
        except IntegrityError as exc:
            taken = await self._existing(ids)
            if taken:
                names = ", ".join(f"'{pid}'" for pid in taken)
                raise Conflict(f"a persona with id {names} already exists",
                               {"persona_ids": taken}) from exc
            raise

    async def append_version(self, persona_id: str, new: NewVersion, base_version: int) -> int:
        """Write ``new`` as the next version if ``base_version`` is still current."""
        async with self.engine.begin() as conn:
            number = await self._append(conn, persona_id, new, base_version)
            await self._record_changes(conn, [persona_id])
        return number

    async def _append(self, conn: AsyncConnection, persona_id: str, new: NewVersion,
                      base_version: int) -> int:
        now = utcnow()
        number = base_version + 1
        values = _row_values(new, number, now)
        if new.visibility is not None:
            values["visibility"] = new.visibility.value
        result = await conn.execute(
            personas.update()
            .where(personas.c.id == persona_id, personas.c.current_version == base_version)
            .values(**values))
        if result.rowcount != 1:
            current = (await conn.execute(sa.select(personas.c.current_version)
                                          .where(personas.c.id == persona_id))).scalar()
            if current is None:
                raise NotFound(f"persona '{persona_id}' does not exist")
            raise VersionConflict(persona_id, base_version, current)
        await self._write_assets(conn, persona_id, new, now)
        await conn.execute(persona_versions.insert(),
                           [_version_values(persona_id, new, number, now)])
        await conn.execute(persona_tags.delete().where(persona_tags.c.persona_id == persona_id))
        await self._insert_tags(conn, [(persona_id, new.definition.tags)])
        return number

    async def _insert_new(self, conn: AsyncConnection,
                          items: Sequence[tuple[NewVersion, str | None, Visibility]]) -> None:
        now = utcnow()
        rows = [
            {"id": new.definition.id, "owner_id": owner, "visibility": visibility.value,
             "created_at": now, **_row_values(new, 1, now)}
            for new, owner, visibility in items
        ]
        await conn.execute(personas.insert(), rows)
        for new, _, _ in items:
            await self._write_assets(conn, new.definition.id, new, now)
        await conn.execute(persona_versions.insert(),
                           [_version_values(n.definition.id, n, 1, now) for n, _, _ in items])
        await self._insert_tags(conn, [(n.definition.id, n.definition.tags) for n, _, _ in items])

    @staticmethod
    async def _write_assets(conn: AsyncConnection, persona_id: str, new: NewVersion,
                            now: datetime) -> None:
        """Store the files ``new`` names for the first time; refuse one it names that
        is neither stored for this persona nor given with the version (422)."""
        assets = new.definition.assets
        if not assets:
            return
        named = {asset.sha256 for asset in assets}
        stored = set((await conn.execute(
            sa.select(persona_assets.c.sha256).where(
                persona_assets.c.persona_id == persona_id,
                persona_assets.c.sha256.in_(sorted(named))))).scalars())
        missing = [FieldIssue(f"assets[{index}].sha256", "names no file stored for this "
                              "persona; send the file with the definition")
                   for index, asset in enumerate(assets)
                   if asset.sha256 not in stored and asset.sha256 not in new.blobs]
        if missing:
            raise ValidationFailed(missing)
        first: dict[str, PersonaAsset] = {}
        for asset in assets:
            if asset.sha256 not in stored:
                first.setdefault(asset.sha256, asset)
        rows = [{"persona_id": persona_id, "sha256": digest, "media_type": asset.media_type,
                 "size": len(new.blobs[digest]), "data": new.blobs[digest], "created_at": now}
                for digest, asset in first.items()]
        if rows:
            await conn.execute(persona_assets.insert(), rows)

    @staticmethod
    async def _insert_tags(conn: AsyncConnection,
                           items: Iterable[tuple[str, builtins.list[str]]]) -> None:
        rows = [{"persona_id": pid, "tag": tag} for pid, tags in items for tag in tags]
        if rows:
            await conn.execute(persona_tags.insert(), rows)

    async def set_source_hashes(self, conn: AsyncConnection,
                                hashes: Sequence[tuple[str, str]]) -> None:
        if hashes:
            await conn.execute(
                personas.update().where(personas.c.id == sa.bindparam("pid"))
                .values(source_hash=sa.bindparam("hash")),
                [{"pid": pid, "hash": digest} for pid, digest in hashes])

    async def apply_batch(
        self,
        creates: Sequence[tuple[NewVersion, str | None, Visibility]],
        updates: Sequence[tuple[str, NewVersion, int]],
        source_hashes: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Create and update many personas in one transaction: all or nothing."""
        async with self.engine.begin() as conn:
            if creates:
                await self._insert_new(conn, creates)
            for persona_id, new, base in updates:
                await self._append(conn, persona_id, new, base)
            await self.set_source_hashes(conn, source_hashes)
            if creates or updates:
                changed = [n.definition.id for n, _, _ in creates] + [u[0] for u in updates]
                await self._record_changes(conn, changed if len(changed) <= 100 else [None])

    async def delete(self, persona_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(personas.delete().where(personas.c.id == persona_id))
            await self._record_changes(conn, [persona_id])
        return result.rowcount == 1

    async def _record_changes(self, conn: AsyncConnection, ids: Sequence[str | None]) -> None:
        await record_changes(conn, ids)

    # -- change feed -------------------------------------------------------

    async def changes_since(self, seq: int) -> tuple[builtins.list[str | None], int]:
        """Persona ids changed after ``seq`` (None means "everything") and the new mark."""
        query = (sa.select(change_log.c.seq, change_log.c.persona_id)
                 .where(change_log.c.seq > seq).order_by(change_log.c.seq))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return [], seq
        return [r[1] for r in rows], rows[-1][0]

    async def last_change(self) -> int:
        async with self.engine.connect() as conn:
            value = (await conn.execute(sa.select(sa.func.max(change_log.c.seq)))).scalar()
        return int(value or 0)
