"""Import and export of single personas in every format we speak.

Import detects the format from the bytes: a PNG or CHARX is a Character Card; JSON
with a card ``spec`` (or V1 ``first_mes``) is a card; other JSON or YAML is a persona
file (one persona or a list). Export gives persona JSON/YAML, a V3 card as JSON (its
files as ``data:`` URIs), as PNG (on the avatar image) or as CHARX (a zip with every file).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from personae.errors import InvalidInput
from personae.personas import assets, card_export, cards
from personae.personas.files import dump_definition, parse_document, personas_in
from personae.personas.lorebook import lorebook_kind
from personae.personas.schema import PersonaDefinition
from personae.personas.validation import parse_persona

EXPORT_FORMATS = ("json", "yaml", "card", "card-png", "charx")
CHARX_MEDIA_TYPE = "application/zip"  # CHARX has no registered type; it is a zip archive
MAX_IMPORT_BYTES = 20 * 1024 * 1024
NOT_RECOGNISED = "not a persona file or Character Card: expected JSON, YAML, PNG or CHARX"


@dataclass
class Imported:
    definitions: list[PersonaDefinition]
    warnings: list[str] = field(default_factory=list)
    source_format: str = "persona"
    blobs: assets.Blobs = field(default_factory=dict)  # the files they name, by sha256


def _looks_like_card(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    spec = document.get("spec")
    return (isinstance(spec, str) and spec.startswith("chara_card")) or "first_mes" in document


def import_bytes(content: bytes, filename: str | None = None,
                 persona_id: str | None = None, folder: Path | None = None) -> Imported:
    """Parse an uploaded file into definitions, or raise a clear InvalidInput.

    ``folder``: the file was read from disk there, so a persona file's ``avatar`` may be
    a path relative to it (see :func:`assets.inline_avatar`)."""
    if not content:
        raise InvalidInput("the uploaded file is empty")
    if len(content) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"the uploaded file is larger than {MAX_IMPORT_BYTES} bytes")
    if content.startswith((b"\x89PNG", b"PK\x03\x04")):
        return _from_card(content, filename, persona_id)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(NOT_RECOGNISED) from None
    is_json = text.lstrip().startswith(("{", "["))
    try:
        document = parse_document(text, filename or "upload", as_json=is_json)
    except InvalidInput as exc:
        if is_json:
            raise
        raise InvalidInput(f"{NOT_RECOGNISED} ({exc.message})") from None
    if not isinstance(document, dict | list):
        raise InvalidInput(NOT_RECOGNISED)
    if _looks_like_card(document):
        return _from_card(content, filename, persona_id)
    _refuse_lorebook(document)
    items = personas_in(document)
    if persona_id and len(items) != 1:
        raise InvalidInput("an id can only be given when the file holds one persona")
    if persona_id and isinstance(items[0], dict):
        items = [{**items[0], "id": persona_id}]
    imported = Imported([])
    for raw in items:
        raw, blobs = assets.inline_avatar(raw, folder=folder)
        imported.definitions.append(parse_persona(raw, source=filename))
        imported.blobs |= blobs
    return imported


def definition_from_text(text: str, source: str = "definition_yaml") -> dict[str, object]:
    """One persona's definition from a persona file's text (YAML or JSON): what an
    editor of the file sends back, to be validated like any other definition."""
    is_json = text.lstrip().startswith("{")
    document = parse_document(text, source, as_json=is_json)
    if not isinstance(document, dict):
        raise InvalidInput(f"{source}: must hold one persona (a mapping of its fields)")
    return document


def _from_card(content: bytes, filename: str | None, persona_id: str | None) -> Imported:
    result = cards.import_card(content, filename=filename, persona_id=persona_id)
    return Imported([result.definition], result.warnings, result.source_format, result.blobs)


def _refuse_lorebook(document: object) -> None:
    """A lorebook is knowledge for a persona, not a persona: say so, and how to attach it."""
    kind = lorebook_kind(document)
    if kind is None:
        return
    what = "SillyTavern World Info" if kind == "world-info" else "a Character Card lorebook"
    raise InvalidInput(
        f"this file is a lorebook ({what}), not a persona: attach it to a persona as "
        "knowledge with `personae personas import-lorebook FILE --to ID` or "
        "POST /v1/personas/{id}/lorebook", {"kind": kind})


def download_stem(persona_id: str) -> str:
    """A file name for one persona's download: ``alice/tutor`` -> ``alice--tutor``."""
    return persona_id.replace("/", "--")


def needs_files(fmt: str) -> bool:
    """Whether ``fmt`` carries the persona's files (the card formats do)."""
    return fmt in ("card", "card-png", "charx")


def export_definition(definition: PersonaDefinition, fmt: str,
                      blobs: Mapping[str, bytes] | None = None) -> tuple[bytes, str, str]:
    """Return (content, media type, file name) for ``fmt`` in EXPORT_FORMATS; ``blobs``
    are the bytes of the persona's files (by sha256), written into the card formats."""
    stem = download_stem(definition.id)
    if fmt == "json":
        return (dump_definition(definition, "json").encode(), "application/json",
                f"{stem}.json")
    if fmt == "yaml":
        return (dump_definition(definition, "yaml").encode(), "application/yaml",
                f"{stem}.yaml")
    if fmt == "card":
        body = json.dumps(card_export.card_from_persona(definition, blobs), ensure_ascii=False,
                          indent=2)
        return body.encode(), "application/json", f"{stem}.card.json"
    if fmt == "card-png":
        return card_export.export_card_png(definition, blobs=blobs), "image/png", f"{stem}.png"
    if fmt == "charx":
        return card_export.export_charx(definition, blobs or {}), CHARX_MEDIA_TYPE, f"{stem}.charx"
    raise InvalidInput(f"unknown export format '{fmt}': use one of {', '.join(EXPORT_FORMATS)}")
