"""The audit log: who changed what that matters to trust, when, and from where.

Services call :meth:`AuditLog.record` after an action succeeded. The record takes the
client and request id from :mod:`personae.ops.context`; writing it must never undo or
fail the action, so a failure is logged at error level and swallowed.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from personae.auth.principal import Principal
from personae.db.tables import utcnow
from personae.errors import InvalidInput, PermissionDenied
from personae.ops.audit_store import AuditEntry, AuditQuery, AuditStore
from personae.ops.context import request_context

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "AuditPage", "AuditQuery", "AuditStore",
           "parse_moment"]

log = logging.getLogger(__name__)

ACTIONS = (
    "persona.create", "persona.update", "persona.visibility", "persona.rollback",
    "persona.archive", "persona.restore", "persona.delete", "persona.sync",
    "user.create", "user.role", "user.disable", "user.enable",
    "key.create", "key.revoke", "key.limits",
)
TARGET_TYPES = ("persona", "user", "key")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_FILTER_CHARS = 200
_RELATIVE = re.compile(r"(\d{1,5})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

AuditPage = tuple[list[AuditEntry], int]


def parse_moment(text: str, name: str, now: datetime | None = None) -> datetime:
    """``2026-12-01``, an ISO date-time (UTC unless it says otherwise), or a span back
    from now (``90s``, ``15m``, ``1h``, ``7d``, ``2w``); always returned in UTC."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        seconds = int(relative[1]) * _UNIT_SECONDS[relative[2]]
        return (now or utcnow()) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: expected a date (2026-12-01), a date-time "
                           f"(2026-12-01T08:00:00Z) or a span such as 1h or 7d, not "
                           f"{value[:40]!r}", {"param": name}) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def check_query(query: AuditQuery) -> AuditQuery:
    """Refuse filters that cannot match anything sensible, with the bound they break."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: between 1 and {MAX_LIMIT}, not {query.limit}",
                           {"param": "limit"})
    if query.cursor is not None and not 0 <= query.cursor < 2**31:
        raise InvalidInput("cursor: the id of an entry from the previous page",
                           {"param": "cursor"})
    for name in ("actor", "action", "target_type", "target_id"):
        value = getattr(query, name)
        if value is not None and not 0 < len(value) <= MAX_FILTER_CHARS:
            raise InvalidInput(f"{name}: 1 to {MAX_FILTER_CHARS} characters",
                               {"param": name})
    if query.action is not None and not _known_action(query.action):
        raise InvalidInput(f"action: one of {', '.join(ACTIONS)}, or a prefix such as "
                           f"'persona.'", {"param": "action"})
    if query.target_type is not None and query.target_type not in TARGET_TYPES:
        raise InvalidInput(f"target_type: one of {', '.join(TARGET_TYPES)}",
                           {"param": "target_type"})
    if query.since and query.until and query.since >= query.until:
        raise InvalidInput("since must be before until", {"param": "since"})
    return query


def _known_action(action: str) -> bool:
    if action.endswith("."):
        return any(known.startswith(action) for known in ACTIONS)
    return action in ACTIONS


class AuditLog:
    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def record(self, actor: Principal | None, action: str, target_type: str,
                     target_id: str | None, summary: dict[str, Any] | None = None) -> None:
        """Append one entry; never raises (the action it describes has happened)."""
        context = request_context()
        try:
            await self.store.append({
                "at": utcnow(), "actor_id": actor.user_id if actor else None,
                "actor_name": actor.name if actor else None, "action": action,
                "target_type": target_type, "target_id": target_id,
                "summary": summary or {}, "client": context.client,
                "request_id": context.request_id})
        except Exception:
            log.exception("audit entry %s on %s %s could not be written", action,
                          target_type, target_id)

    async def list(self, query: AuditQuery, *, viewer: Principal | None = None) -> AuditPage:
        """One page of entries, newest first, and the number that match in all; for
        admins (``viewer`` None: the host's operator)."""
        self.check_reader(viewer)
        return await self.store.list(check_query(query))

    @staticmethod
    def check_reader(viewer: Principal | None) -> None:
        if viewer is not None and not viewer.is_admin:
            raise PermissionDenied("only admins can read the audit log")
