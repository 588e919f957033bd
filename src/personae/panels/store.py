"""The only module that reads and writes panels, evaluations, segments and scores.

Reads of panels and evaluations take an owner: another user's rows do not exist
here. Workers pass ``owner=None``: they act on job ids the service created. Every
cell row is written when its evaluation is created and then only updated in place,
so however often a job runs, a cell holds exactly one result.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personae.db.tables import aware, evaluations, panels, utcnow
from personae.db.tables import evaluation_scores as scores
from personae.db.tables import evaluation_segments as segments
from personae.errors import Conflict
from personae.panels.content import Segment
from personae.panels.records import (
    CellRow,
    EvaluationRecord,
    EvaluationSpec,
    PanelRecord,
    PanelSpec,
    Progress,
    SegmentRow,
)

INSERT_CHUNK = 500


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _panel(row: sa.RowMapping) -> PanelRecord:
    return PanelRecord(row["id"], row["owner_id"], PanelSpec.model_validate(row["definition"]),
                       aware(row["created_at"]), aware(row["updated_at"]))


def _evaluation(row: sa.RowMapping) -> EvaluationRecord:
    finished = row["finished_at"]
    return EvaluationRecord(row["id"], row["owner_id"], row["panel_id"], row["title"],
                            row["status"], row["content_format"],
                            EvaluationSpec.model_validate(row["spec"]),
                            aware(row["created_at"]), aware(finished) if finished else None)


def _segment(row: sa.RowMapping) -> SegmentRow:
    return SegmentRow(row["index"], row["text"], row["start_ms"], row["end_ms"],
                      row["status"], row["topic"], row["tone"], row["error"], row["attempts"])


def _cell(row: sa.RowMapping) -> CellRow:
    return CellRow(row["segment_index"], row["persona_id"], row["persona_version"],
                   row["status"], row["score"], row["opinion"], row["fields"] or {},
                   row["adherence"], row["error"], row["attempts"])


# The per-job statements, built once with bind parameters: SQLAlchemy then reuses
# their compiled form instead of rebuilding and recompiling them for every cell.
_EVALUATION: sa.BindParameter[str] = sa.bindparam("b_evaluation")
_CELL = sa.and_(scores.c.evaluation_id == _EVALUATION,
                scores.c.segment_index == sa.bindparam("b_index"),
                scores.c.persona_id == sa.bindparam("b_persona"))
_CLAIM_CELL = (
    sa.update(scores)
    .where(_CELL, scores.c.status.in_(("pending", "running")),
           sa.exists().where(evaluations.c.id == _EVALUATION,
                             evaluations.c.status == "running"))
    .values(status="running", updated_at=sa.bindparam("b_now")))
_SEGMENT = sa.select(segments).where(segments.c.evaluation_id == _EVALUATION,
                                     segments.c.index == sa.bindparam("b_index"))
_SAVE_CELL = (
    sa.update(scores).where(_CELL)
    .values({name: sa.bindparam(f"new_{name}") for name in (
        "status", "score", "opinion", "fields", "adherence", "error", "attempts",
        "updated_at")}))
# Cells of one evaluation finish in turn: without this, two last cells committing at
# once on PostgreSQL would each see the other still running, and neither would mark
# the evaluation completed. (SQLite ignores it; its writers are serialized anyway.)
_LOCK_EVALUATION = (sa.select(evaluations.c.id).where(evaluations.c.id == _EVALUATION)
                    .with_for_update())
_FINISH = (
    sa.update(evaluations)
    .where(evaluations.c.id == _EVALUATION, evaluations.c.status == "running",
           ~sa.exists().where(scores.c.evaluation_id == _EVALUATION,
                              scores.c.status.in_(("pending", "running"))),
           ~sa.exists().where(segments.c.evaluation_id == _EVALUATION,
                              segments.c.status == "pending"))
    .values(status="completed", finished_at=sa.bindparam("b_now")))


class PanelStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and makes the others sleep and retry; many
        # jobs finishing together wait far less queueing here than in its busy loop.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    # -- panels ------------------------------------------------------------------------

    async def create_panel(self, owner_id: str, spec: PanelSpec) -> PanelRecord:
        now = utcnow()
        panel_id = new_id()
        values = {"id": panel_id, "owner_id": owner_id, "name": spec.name,
                  "definition": spec.model_dump(mode="json"), "created_at": now,
                  "updated_at": now}
        try:
            async with self._begin() as conn:
                await conn.execute(sa.insert(panels).values(values))
        except IntegrityError:
            raise Conflict(f"you already have a panel named '{spec.name}'",
                           {"name": spec.name}) from None
        return PanelRecord(panel_id, owner_id, spec, now, now)

    async def panel(self, owner_id: str, id_or_name: str) -> PanelRecord | None:
        query = sa.select(panels).where(
            panels.c.owner_id == owner_id,
            sa.or_(panels.c.id == id_or_name, panels.c.name == id_or_name))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        by_id = [row for row in rows if row["id"] == id_or_name]
        chosen = by_id or rows
        return _panel(chosen[0]) if chosen else None

    async def panels(self, owner_id: str) -> list[PanelRecord]:
        query = sa.select(panels).where(panels.c.owner_id == owner_id).order_by(panels.c.name)
        async with self.engine.connect() as conn:
            return [_panel(row) for row in (await conn.execute(query)).mappings()]

    async def update_panel(self, owner_id: str, panel_id: str,
                           spec: PanelSpec) -> PanelRecord | None:
        query = (sa.update(panels)
                 .where(panels.c.owner_id == owner_id, panels.c.id == panel_id)
                 .values(name=spec.name, definition=spec.model_dump(mode="json"),
                         updated_at=utcnow()))
        try:
            async with self._begin() as conn:
                updated = (await conn.execute(query)).rowcount
        except IntegrityError:
            raise Conflict(f"you already have a panel named '{spec.name}'",
                           {"name": spec.name}) from None
        return await self.panel(owner_id, panel_id) if updated else None

    async def delete_panel(self, owner_id: str, panel_id: str) -> bool:
        query = sa.delete(panels).where(panels.c.owner_id == owner_id, panels.c.id == panel_id)
        async with self._begin() as conn:
            return bool((await conn.execute(query)).rowcount)

    # -- evaluations ---------------------------------------------------------------------

    async def create_evaluation(self, owner_id: str, panel_id: str | None, title: str,
                                content_format: str, spec: EvaluationSpec,
                                parts: Sequence[Segment]) -> EvaluationRecord:
        """The evaluation, its segments and every persona x segment cell, atomically."""
        now = utcnow()
        record = EvaluationRecord(new_id(), owner_id, panel_id, title, "running",
                                  content_format, spec, now, None)
        segment_status = "pending" if spec.classify else "skipped"
        segment_rows = [{"evaluation_id": record.id, "index": part.index, "text": part.text,
                         "start_ms": part.start_ms, "end_ms": part.end_ms,
                         "status": segment_status, "attempts": 0} for part in parts]
        cell_rows = [{"evaluation_id": record.id, "segment_index": part.index,
                      "persona_id": persona.id, "persona_version": persona.version,
                      "status": "pending", "attempts": 0, "updated_at": now}
                     for part in parts for persona in spec.personas]
        async with self._begin() as conn:
            await conn.execute(sa.insert(evaluations).values(
                id=record.id, owner_id=owner_id, panel_id=panel_id, title=title,
                status=record.status, content_format=content_format,
                spec=spec.model_dump(mode="json"),
                created_at=now))
            for table, rows in ((segments, segment_rows), (scores, cell_rows)):
                for start in range(0, len(rows), INSERT_CHUNK):
                    await conn.execute(sa.insert(table), rows[start:start + INSERT_CHUNK])
        return record

    async def evaluation(self, evaluation_id: str,
                         owner_id: str | None = None) -> EvaluationRecord | None:
        query = sa.select(evaluations).where(evaluations.c.id == evaluation_id)
        if owner_id is not None:
            query = query.where(evaluations.c.owner_id == owner_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _evaluation(row) if row else None

    async def evaluations(self, owner_id: str, *, limit: int, offset: int,
                          status: str | None = None) -> tuple[list[EvaluationRecord], int]:
        where = [evaluations.c.owner_id == owner_id]
        if status is not None:
            where.append(evaluations.c.status == status)
        query = (sa.select(evaluations).where(*where)
                 .order_by(evaluations.c.created_at.desc(), evaluations.c.id)
                 .limit(limit).offset(offset))
        count = sa.select(sa.func.count()).select_from(evaluations).where(*where)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            total = (await conn.execute(count)).scalar_one()
        return [_evaluation(row) for row in rows], int(total)

    async def running_evaluations(self) -> list[EvaluationRecord]:
        query = sa.select(evaluations).where(evaluations.c.status == "running")
        async with self.engine.connect() as conn:
            return [_evaluation(row) for row in (await conn.execute(query)).mappings()]

    async def count_cells(self) -> dict[str, int]:
        """Cells of running evaluations still to score, by status (pending, running):
        the panel jobs waiting and under way, for the metrics gauges."""
        query = (sa.select(scores.c.status, sa.func.count())
                 .join(evaluations, evaluations.c.id == scores.c.evaluation_id)
                 .where(evaluations.c.status == "running",
                        scores.c.status.in_(("pending", "running")))
                 .group_by(scores.c.status))
        async with self.engine.connect() as conn:
            return {status: int(n) for status, n in (await conn.execute(query)).all()}

    async def delete_evaluation(self, owner_id: str, evaluation_id: str) -> bool:
        query = sa.delete(evaluations).where(evaluations.c.owner_id == owner_id,
                                             evaluations.c.id == evaluation_id)
        async with self._begin() as conn:
            return bool((await conn.execute(query)).rowcount)

    async def set_status(self, evaluation_id: str, status: str) -> None:
        finished = utcnow() if status != "running" else None
        async with self._begin() as conn:
            await conn.execute(sa.update(evaluations).where(evaluations.c.id == evaluation_id)
                               .values(status=status, finished_at=finished))

    async def finish_if_done(self, evaluation_id: str) -> bool:
        """Mark a running evaluation completed once no segment or cell is left to do."""
        async with self._begin() as conn:
            params = {"b_evaluation": evaluation_id, "b_now": utcnow()}
            return bool((await conn.execute(_FINISH, params)).rowcount)

    # -- segments ------------------------------------------------------------------------

    async def segments(self, evaluation_id: str) -> list[SegmentRow]:
        query = (sa.select(segments).where(segments.c.evaluation_id == evaluation_id)
                 .order_by(segments.c.index))
        async with self.engine.connect() as conn:
            return [_segment(row) for row in (await conn.execute(query)).mappings()]

    async def segment(self, evaluation_id: str, index: int) -> SegmentRow | None:
        query = sa.select(segments).where(segments.c.evaluation_id == evaluation_id,
                                          segments.c.index == index)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _segment(row) if row else None

    async def classified(self, evaluation_id: str, index: int, *, topic: str | None = None,
                         tone: str | None = None, error: str | None = None,
                         attempts: int = 1) -> None:
        """Record a classification, or its failure (``error``): never a guessed label."""
        values = ({"status": "failed", "error": error, "topic": None, "tone": None}
                  if error is not None else
                  {"status": "done", "error": None, "topic": topic, "tone": tone})
        async with self._begin() as conn:
            await conn.execute(sa.update(segments)
                               .where(segments.c.evaluation_id == evaluation_id,
                                      segments.c.index == index)
                               .values(attempts=attempts, **values))

    # -- cells ---------------------------------------------------------------------------

    async def cells(self, evaluation_id: str, index: int | None = None) -> list[CellRow]:
        query = sa.select(scores).where(scores.c.evaluation_id == evaluation_id)
        if index is not None:
            query = query.where(scores.c.segment_index == index)
        query = query.order_by(scores.c.segment_index, scores.c.persona_id)
        async with self.engine.connect() as conn:
            return [_cell(row) for row in (await conn.execute(query)).mappings()]

    async def start_cell(self, evaluation_id: str, index: int,
                         persona_id: str) -> SegmentRow | None:
        """Mark a cell running and return its segment; ``None`` when there is nothing to
        do (the cell is finished, or its evaluation is no longer running)."""
        key = {"b_evaluation": evaluation_id, "b_index": index, "b_persona": persona_id}
        async with self._begin() as conn:
            if not (await conn.execute(_CLAIM_CELL, {**key, "b_now": utcnow()})).rowcount:
                return None
            row = (await conn.execute(_SEGMENT, key)).mappings().first()
        return _segment(row) if row else None

    async def save_cell(self, evaluation_id: str, index: int, persona_id: str, *,
                        status: str, attempts: int, score: int | None = None,
                        opinion: str | None = None, fields: dict[str, Any] | None = None,
                        adherence: dict[str, Any] | None = None,
                        error: str | None = None) -> None:
        """Overwrite the cell's one result (done or failed) in place; complete the
        evaluation in the same transaction if this was its last open cell."""
        now = utcnow()
        values = {"status": status, "score": score, "opinion": opinion, "fields": fields,
                  "adherence": adherence, "error": error, "attempts": attempts,
                  "updated_at": now}
        params = {"b_evaluation": evaluation_id, "b_index": index, "b_persona": persona_id,
                  **{f"new_{name}": value for name, value in values.items()}}
        async with self._begin() as conn:
            await conn.execute(_LOCK_EVALUATION, {"b_evaluation": evaluation_id})
            await conn.execute(_SAVE_CELL, params)
            await conn.execute(_FINISH, {"b_evaluation": evaluation_id, "b_now": now})

    async def cancel(self, evaluation_id: str) -> None:
        """Stop an evaluation: cells not started yet are cancelled; finished ones stay."""
        async with self._begin() as conn:
            await conn.execute(sa.update(scores)
                               .where(scores.c.evaluation_id == evaluation_id,
                                      scores.c.status == "pending")
                               .values(status="cancelled", updated_at=utcnow()))
            await conn.execute(sa.update(evaluations)
                               .where(evaluations.c.id == evaluation_id,
                                      evaluations.c.status == "running")
                               .values(status="cancelled", finished_at=utcnow()))

    async def reopen(self, evaluation_id: str, statuses: Sequence[str]) -> list[CellRow]:
        """Put cells in ``statuses`` back to pending and the evaluation back to running."""
        where = sa.and_(scores.c.evaluation_id == evaluation_id, scores.c.status.in_(statuses))
        async with self._begin() as conn:
            rows = (await conn.execute(sa.select(scores).where(where))).mappings().all()
            if rows:
                await conn.execute(sa.update(scores).where(where).values(
                    status="pending", error=None, updated_at=utcnow()))
                await conn.execute(sa.update(evaluations)
                                   .where(evaluations.c.id == evaluation_id)
                                   .values(status="running", finished_at=None))
        return [_cell(row) for row in rows]

    async def progress(self, evaluation_id: str) -> Progress | None:
        status_query = sa.select(evaluations.c.status).where(evaluations.c.id == evaluation_id)
        cell_query = (sa.select(scores.c.status, sa.func.count())
                      .where(scores.c.evaluation_id == evaluation_id)
                      .group_by(scores.c.status))
        segment_query = (sa.select(segments.c.status, sa.func.count())
                         .where(segments.c.evaluation_id == evaluation_id)
                         .group_by(segments.c.status))
        async with self.engine.connect() as conn:
            status = (await conn.execute(status_query)).scalar_one_or_none()
            if status is None:
                return None
            cells = {row[0]: int(row[1]) for row in await conn.execute(cell_query)}
            parts = {row[0]: int(row[1]) for row in await conn.execute(segment_query)}
        return Progress(status, cells, parts)
