"""The audit log as ``GET /v1/audit`` returns it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from personae.api.schemas.common import ListPage, Public, Timestamp


class AuditEntryPublic(Public):
    id: int
    at: Timestamp
    actor_id: str | None = Field(description="who acted (null: the system)")
    actor_name: str | None = Field(description="their name at the time")
    action: str = Field(description="persona.create, user.role, key.revoke, ...")
    target_type: str = Field(description="persona, user or key")
    target_id: str | None
    summary: dict[str, Any] = Field(description="what changed (names and versions, "
                                                "never contents or secrets)")
    client: str | None = Field(description="the caller's address, or 'cli'")
    request_id: str | None


class AuditEntriesPublic(ListPage[AuditEntryPublic]):
    """Newest first; ``count`` is how many entries match in all."""

    next_cursor: int | None = Field(description="pass as ?cursor= for the next (older) "
                                                "page; null on the last page")
