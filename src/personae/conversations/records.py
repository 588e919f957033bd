"""What the conversation store hands out: sessions, messages, turn claims and the
turns it opens and ends (plain records; ``store`` is the only module with SQL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def _utc(moment: datetime) -> datetime:
    """A stored timestamp in UTC (SQLite hands back naive datetimes)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    answering: bool = False  # a live turn held the session when it was read

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> SessionRecord:
        expires = row.get("turn_expires_at")
        return cls(
            id=row["id"], user_id=row["user_id"], persona_id=row["persona_id"],
            persona_version=row["persona_version"], status=row["status"],
            created_at=_utc(row["created_at"]), last_active_at=_utc(row["last_active_at"]),
            turns=row["turns"], response_ms_total=row["response_ms_total"],
            meta=row["meta"] or {}, answering=(row.get("turn_id") is not None
                                               and expires is not None
                                               and _utc(expires) >= datetime.now(UTC)))

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

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> MessageRecord:
        return cls(
            id=row["id"], session_id=row["session_id"], role=row["role"],
            content=row["content"], persona_id=row["persona_id"],
            persona_version=row["persona_version"], status=row["status"],
            created_at=_utc(row["created_at"]), meta=row["meta"] or {})

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


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """A finished turn's last write: its reply as it ends, the claim to release, and
    what it adds to its persona's metrics (``response_ms`` None: not counted as a turn)."""

    session_id: str
    turn_id: str
    reply: MessageRecord
    response_ms: float | None
    metrics: dict[str, float]


@dataclass(frozen=True, slots=True)
class TurnOpening:
    """A turn asked for: the claim's holder and lease, the user's message, and how much
    history the model may see."""

    session_id: str
    holder: TurnHolder
    lease: timedelta
    text: str
    persona_id: str
    version: int
    history_limit: int
    user_meta: dict[str, Any] = field(default_factory=dict)  # e.g. a spoken message's audio


@dataclass(frozen=True, slots=True)
class OpenedTurn:
    """A claimed turn: the user's message and the reply's row (``streaming``), both
    committed with the claim, and the history before the message, oldest first. A claim
    is its session and its ``turn_id``: claims made together share one id."""

    turn_id: str
    user: MessageRecord
    reply: MessageRecord
    history: list[MessageRecord]


def metric_rows(observed: Iterable[tuple[str, int, dict[str, float]]]
                 ) -> list[dict[str, Any]]:
    """Observations (persona, version, metrics) summed per persona version and metric,
    in this hour's bucket, in key order."""
    bucket = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    cells: dict[tuple[str, int, str], dict[str, Any]] = {}
    for persona_id, version, metrics in observed:
        for metric, value in metrics.items():
            key = (persona_id, version, metric)
            cell = cells.get(key)
            if cell is None:
                cells[key] = {"persona_id": key[0], "version": key[1], "metric": metric,
                              "bucket_start": bucket, "count": 1, "total": value,
                              "minimum": value, "maximum": value}
            else:
                cell.update(count=cell["count"] + 1, total=cell["total"] + value,
                            minimum=min(cell["minimum"], value),
                            maximum=max(cell["maximum"], value))
    return [cells[key] for key in sorted(cells)]


@dataclass(frozen=True, slots=True)
class MessageRevision:
    """A saved message's text or status changed after the fact: a spoken reply cut
    short keeps what the user heard as its text (what the model wrote goes to
    ``meta.written``)."""

    content: str | None = None
    status: str | None = None

    def values(self, old_content: str, meta: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.content is not None and self.content != old_content:
            out["content"] = self.content
            out["meta"] = {**meta, "written": meta.get("written", old_content)}
        if self.status is not None:
            out["status"] = self.status
        return out
