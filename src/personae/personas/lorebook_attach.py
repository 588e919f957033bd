"""Attach a lorebook file to a persona: its entries become the persona's lore (a new version).

The API (``POST /v1/personas/{id}/lorebook``) and the CLI (``personae personas
import-lorebook FILE --to ID``) both call :func:`attach_lorebook`: the same access
rules and version check as any persona write. ``append`` keeps the persona's lore and
adds the file's entries; ``replace`` drops the persona's lore entries first (plain
knowledge items are kept either way). The file's settings (scan depth, token budget,
recursion) replace the persona's where the file gives them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from personae.auth.principal import Principal
from personae.errors import InvalidInput
from personae.limits import load_json
from personae.personas.lorebook import MAX_ENTRIES, Lore, lorebook_kind, read_lorebook
from personae.personas.records import PersonaRecord
from personae.personas.schema import PersonaDefinition
from personae.personas.service import PersonaService

Mode = Literal["append", "replace"]
MODES: tuple[Mode, ...] = ("append", "replace")
MAX_LOREBOOK_BYTES = 20 * 1024 * 1024


@dataclass
class Attached:
    record: PersonaRecord
    entries_added: int
    warnings: list[str]
    source_format: str  # "world-info" or "character-book"


def lore_from_bytes(content: bytes, filename: str | None = None) -> Lore:
    """A lorebook file's entries; a clear InvalidInput for anything else (a persona
    file or a card says what it is)."""
    if not content:
        raise InvalidInput("the uploaded file is empty")
    if len(content) > MAX_LOREBOOK_BYTES:
        raise InvalidInput(f"the uploaded file is larger than {MAX_LOREBOOK_BYTES} bytes")
    try:
        document = load_json(content.decode("utf-8-sig"), "the lorebook")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("not a lorebook: expected SillyTavern World Info JSON or a "
                           "Character Card character_book (JSON)") from None
    if lorebook_kind(document) is None and isinstance(document, dict):
        spec = document.get("spec")
        if (isinstance(spec, str) and spec.startswith("chara_card")) or "first_mes" in document:
            raise InvalidInput("this is a Character Card, not a lorebook: import it with "
                               "`personae personas import` or POST /v1/personas/import "
                               "(its character_book comes with it)")
        if "name" in document or "id" in document:
            raise InvalidInput("this is a persona file, not a lorebook: create it with "
                               "`personae personas import` or POST /v1/personas/import")
    return read_lorebook(document, filename)


def with_lore(definition: PersonaDefinition, lore: Lore, mode: Mode) -> dict[str, Any]:
    """The definition (loose, for validation) with ``lore`` attached."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    kept = [item for item in definition.knowledge if mode == "append" or not item.is_lore]
    if sum(item.is_lore for item in kept) + len(lore.items) > MAX_ENTRIES:
        raise InvalidInput(f"the persona would have more than {MAX_ENTRIES} lore entries; "
                           "use mode=replace, or a smaller lorebook")
    data = definition.to_data()
    data["knowledge"] = [*(item.model_dump(mode="json", exclude_defaults=True)
                           for item in kept), *lore.items]
    settings = definition.lorebook.model_dump(mode="json", exclude_defaults=True)
    data["lorebook"] = {**settings, **lore.settings}
    return data


async def attach_lorebook(personas: PersonaService, principal: Principal, persona_id: str,
                          content: bytes, *, filename: str | None = None,
                          mode: Mode = "append", base_version: int | None = None
                          ) -> Attached:
    """Add a lorebook file's entries to a persona the caller may change, as a new
    version based on ``base_version`` (the current one when ``None``)."""
    record = (await personas.get(principal, persona_id)).record  # unreadable: 404
    lore = await asyncio.to_thread(lore_from_bytes, content, filename)
    data = with_lore(record.definition, lore, mode)
    note = f"lorebook {filename or 'upload'} attached ({mode}, {len(lore.items)} entries)"
    updated = await personas.replace(
        principal, persona_id, data, note=note,
        base_version=record.version if base_version is None else base_version)
    return Attached(updated, len(lore.items), lore.warnings, lore.kind)
