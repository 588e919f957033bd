"""``/v1/audit``: who changed what, when and from where (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field

from personae.api.deps import CurrentPrincipal
from personae.api.schemas import error_responses
from personae.api.schemas.audit import AuditEntriesPublic, AuditEntryPublic
from personae.api.schemas.common import MAX_DB_INT
from personae.ops.audit import DEFAULT_LIMIT, MAX_LIMIT, AuditLog, AuditQuery, parse_moment

router = APIRouter(prefix="/audit", tags=["audit"])
# Documented here, checked by the audit log itself (a 400 naming the bound).
LIMIT_BOUNDS = {"minimum": 1, "maximum": MAX_LIMIT}
CURSOR_BOUNDS = {"minimum": 0, "maximum": MAX_DB_INT}
Cursor = Annotated[int, Field(json_schema_extra=CURSOR_BOUNDS)]


@router.get("", responses=error_responses(400, 401, 403, 422))
async def list_audit(
    request: Request, principal: CurrentPrincipal, actor: str | None = None,
    action: str | None = None, target_type: str | None = None,
    target_id: str | None = None, since: str | None = None, until: str | None = None,
    limit: Annotated[int, Query(json_schema_extra=LIMIT_BOUNDS)] = DEFAULT_LIMIT,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> AuditEntriesPublic:
    """Newest first. ``actor``: a name or id; ``action``: exact (``user.role``) or a
    prefix (``persona.``); ``since``/``until``: a date, a date-time or a span back from
    now (``1h``, ``7d``); ``limit`` up to 500; ``cursor``: the previous page's
    ``next_cursor``."""
    audit: AuditLog = request.app.state.runtime.audit
    audit.check_reader(principal)
    query = AuditQuery(
        actor=actor, action=action, target_type=target_type, target_id=target_id,
        since=parse_moment(since, "since") if since is not None else None,
        until=parse_moment(until, "until") if until is not None else None,
        limit=limit, cursor=cursor)
    entries, count = await audit.list(query, viewer=principal)
    more = len(entries) == query.limit
    return AuditEntriesPublic(data=[AuditEntryPublic(**e.to_dict()) for e in entries],
                              count=count, next_cursor=entries[-1].id if more else None)
