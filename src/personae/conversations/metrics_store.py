"""The only module that reads persona metrics summed by day.

Turns write ``persona_metrics`` per hour (see ``conversations.records.metric_rows``);
a reader asks for days, so the rows are summed per version, metric and UTC day in the
query: a year of figures is a few thousand rows, not every hour's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.db.tables import persona_metrics


@dataclass(frozen=True, slots=True)
class MetricCell:
    """One metric of one persona version over one UTC day (or a longer span, merged)."""

    version: int
    day: date
    metric: str
    count: int
    total: float
    minimum: float | None
    maximum: float | None


def utc_day(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The UTC calendar day of a stored timestamp (SQLite keeps UTC text already)."""
    if dialect == "postgresql":
        return sa.func.date(sa.func.timezone("UTC", column))
    return sa.func.date(column)


def as_date(value: Any) -> date:
    """A day as the driver returns it: a date (PostgreSQL) or ISO text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class MetricsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def daily(self, persona_id: str, since: datetime,
                    version: int | None = None) -> list[MetricCell]:
        """Every metric of the persona (one version, or all) per version and UTC day,
        from ``since`` on, in version, day and metric order."""
        table = persona_metrics
        day = utc_day(table.c.bucket_start, self.engine.dialect.name).label("day")
        where = [table.c.persona_id == persona_id, table.c.bucket_start >= since]
        if version is not None:
            where.append(table.c.version == version)
        query = (sa.select(table.c.version, day, table.c.metric,
                           sa.func.sum(table.c.count), sa.func.sum(table.c.total),
                           sa.func.min(table.c.minimum), sa.func.max(table.c.maximum))
                 .where(*where).group_by(table.c.version, day, table.c.metric)
                 .order_by(table.c.version, day, table.c.metric))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [MetricCell(version, as_date(on), metric, int(count or 0), float(total or 0.0),
                           minimum, maximum)
                for version, on, metric, count, total, minimum, maximum in rows]
