"""What the audit log says about a persona write: the action and a short summary.

A summary names what changed (top-level field names, versions, visibility, counts),
never a field's contents: prompts and knowledge are the owner's business.
"""

from __future__ import annotations

from typing import Any, Protocol

from personae.auth.principal import Principal
from personae.personas.files import SyncReport
from personae.personas.records import PersonaRecord
from personae.personas.schema import Status

TARGET = "persona"


class AuditRecorder(Protocol):
    async def record(self, actor: Principal | None, action: str, target_type: str,
                     target_id: str | None, summary: dict[str, Any] | None = None) -> None: ...


def changed_fields(before: PersonaRecord, after: PersonaRecord) -> list[str]:
    """Top-level definition fields whose values differ."""
    old, new = before.definition.to_data(), after.definition.to_data()
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def write_notes(before: PersonaRecord, after: PersonaRecord,
                update_action: str = "persona.update") -> list[tuple[str, dict[str, Any]]]:
    """The entries one new version makes: an update with its changed fields (or the
    status action it amounts to) and, apart, a visibility change."""
    if after.version == before.version:
        return []  # nothing was written
    versions = {"from_version": before.version, "to_version": after.version}
    notes: list[tuple[str, dict[str, Any]]] = []
    fields = changed_fields(before, after)
    if update_action == "persona.update" and fields == ["status"]:
        update_action = _status_action(before.status, after.status)
    if fields or update_action != "persona.update":
        notes.append((update_action, {"changed_fields": fields, **versions}))
    if before.visibility is not after.visibility:
        notes.append(("persona.visibility", {"from": before.visibility.value,
                                             "to": after.visibility.value, **versions}))
    return notes


def _status_action(before: Status, after: Status) -> str:
    if after is Status.archived:
        return "persona.archive"
    if before is Status.archived:
        return "persona.restore"
    return "persona.update"


def create_note(record: PersonaRecord) -> dict[str, Any]:
    return {"version": record.version, "visibility": record.visibility.value,
            "global": record.owner_id is None}


def sync_note(report: SyncReport, owner_id: str | None) -> dict[str, Any]:
    return {"owner_id": owner_id, "created": len(report.created),
            "updated": len(report.updated), "unchanged": len(report.unchanged),
            "invalid": len(report.invalid)}


async def record_all(audit: AuditRecorder | None, actor: Principal, persona_id: str | None,
                     notes: list[tuple[str, dict[str, Any]]]) -> None:
    if audit is not None:
        for action, summary in notes:
            await audit.record(actor, action, TARGET, persona_id, summary)
