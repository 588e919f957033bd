"""Import Character Cards (V1, V2 and V3; as JSON, PNG or CHARX) as personas.

Character Cards are how chat apps exchange characters. Import maps a card onto a
persona and keeps the whole card under ``extensions["chara_card"]``, so that export
(:mod:`personae.personas.card_export`, which imports this module, never the other way)
can give back the card it was given, lorebook and other apps' extensions included.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from personae.errors import FieldIssue, InvalidInput, ValidationFailed
from personae.limits import load_json
from personae.personas import card_assets, card_files, lorebook
from personae.personas.assets import Blobs
from personae.personas.card_examples import parse_examples, read_examples
from personae.personas.schema import PersonaDefinition, id_from_name
from personae.personas.validation import parse_persona

V2_SPEC = "chara_card_v2"
V3_SPEC = "chara_card_v3"
STORE_KEY = "chara_card"  # persona extension holding the imported card
OUR_EXTENSION = "personae"  # card extension holding persona-only fields
NOT_A_CARD = "not a Character Card: expected JSON, PNG or CHARX"

V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
V2_FIELDS = (*V1_FIELDS, "creator_notes", "system_prompt", "post_history_instructions",
             "alternate_greetings", "tags", "creator", "character_version", "extensions")
V3_ONLY = ("assets", "nickname", "creator_notes_multilingual", "source",
           "group_only_greetings", "creation_date", "modification_date")
_REQUIRED = {1: V1_FIELDS, 2: V2_FIELDS, 3: (*V2_FIELDS, "group_only_greetings")}
_TEXT_FIELDS = ("description", "personality", "scenario", "first_mes", "mes_example",
                "system_prompt", "post_history_instructions")
_CARD_TRAITS = ("personality", "scenario")
PERSONA_ONLY = ("display_name", "avatar", "role", "speciality", "language", "language_policy",
                "gender", "voice", "prompt_template", "expertise_keywords", "knowledge",
                "model", "status")
_OUR_FIELDS = frozenset({*PERSONA_ONLY, "traits", "example_dialogues", "extensions"})


@dataclass
class CardImport:
    """A persona read from a card, with what was lenient about the card, and the bytes
    of the files (avatar, assets) its ``assets`` name."""

    definition: PersonaDefinition
    warnings: list[str]
    source_format: str  # "v1-json", "v2-json", "v3-json", "png", "charx"
    blobs: Blobs = field(default_factory=dict)


def import_card(
    content: bytes, *, filename: str | None = None, persona_id: str | None = None
) -> CardImport:
    """Read a card from JSON, PNG or CHARX bytes (detected by magic number), with its
    files: a PNG's image is the avatar, a CHARX's assets come along (see
    :mod:`personae.personas.card_assets`).

    Raises :class:`InvalidInput` for bytes that hold no card and
    :class:`ValidationFailed` when the card's fields break the persona schema.
    """
    warnings: list[str] = []
    if content.startswith(card_files.PNG_MAGIC):
        card, read_files, kind = *_card_from_png(content, warnings), "png"
    elif content.startswith(card_files.ZIP_MAGIC):
        card, read_files, kind = *_card_from_charx(content, warnings), "charx"
    else:
        card = _parse_json(content, NOT_A_CARD)
        kind = ""

        def read_files() -> card_assets.CardFiles:
            return card_assets.from_json(card, warnings)

    definition, version = persona_from_card(
        card, warnings, persona_id=persona_id, source=filename
    )
    files = read_files()
    definition = definition.model_copy(update={"assets": files.assets})
    return CardImport(definition, warnings, kind or f"v{version}-json", files.blobs)


def _parse_json(raw: bytes, error: str) -> Any:
    """Card JSON, nested at most MAX_DEPTH levels (:class:`NestedTooDeep` otherwise)."""
    try:
        return load_json(raw.decode("utf-8-sig"), "the Character Card")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(error) from None


FileReader = Callable[[], card_assets.CardFiles]


def _card_from_png(content: bytes, warnings: list[str]) -> tuple[Any, FileReader]:
    """The card of a PNG, and how to read its files once the card is known good."""
    texts = card_files.read_png_text(content)
    name, raw = card_files.card_chunks(texts)
    card = _parse_json(raw, f"PNG chunk '{name}' does not decode to valid JSON")
    return card, lambda: card_assets.from_png(content, texts, card, warnings)


def _card_from_charx(content: bytes, warnings: list[str]) -> tuple[Any, FileReader]:
    contents = card_files.read_charx(content)
    card = _parse_json(contents.card_json, "CHARX card.json is not valid JSON")
    return card, lambda: card_assets.from_charx(content, contents.names, card, warnings)


def persona_from_card(
    card: Any, warnings: list[str], *, persona_id: str | None, source: str | None,
    render: bool = True,
) -> tuple[PersonaDefinition, int]:
    """Map a card object onto a persona; the card itself is stored unchanged.
    ``render=False``: the persona is only compared, so its template is not rendered."""
    if not isinstance(card, dict):
        kind = "an array" if isinstance(card, list) else \
            "a string" if isinstance(card, str) else "a scalar"
        raise InvalidInput(f"a Character Card must be a JSON object, got {kind}")
    version, data = _unwrap(card, warnings)
    issues: list[FieldIssue] = []
    fields = _normalise(data, "data." if version > 1 else "", version, warnings, issues)
    if issues:
        raise ValidationFailed(issues, source)
    stored = copy.deepcopy(card)
    ours = _take_our_extension(stored, version, warnings)
    raw = _persona_raw(fields, ours, persona_id, stored)
    return parse_persona(raw, source=source, render=render), version


def _unwrap(card: dict[str, Any], warnings: list[str]) -> tuple[int, dict[str, Any]]:
    """Spec version and the dict holding the fields (the card itself for V1)."""
    spec = card.get("spec")
    if spec is None:
        return 1, card
    version = {V2_SPEC: 2, V3_SPEC: 3}.get(spec) if isinstance(spec, str) else None
    if version is None:
        raise InvalidInput(
            f"unknown Character Card spec {spec!r}; expected '{V2_SPEC}' or '{V3_SPEC}'"
        )
    data = card.get("data")
    if not isinstance(data, dict):
        raise InvalidInput(f"{spec} card has no 'data' object")
    if "spec_version" not in card:
        warnings.append(f"card has no spec_version; read as {spec}")
    return version, data


def _normalise(
    data: dict[str, Any], prefix: str, version: int, warnings: list[str],
    issues: list[FieldIssue],
) -> dict[str, Any]:
    """The mapped fields as clean values; lenient about nulls and strings-for-lists."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("card has no name")
    missing = [key for key in _REQUIRED[version] if key not in data]
    if missing:
        where = "card data" if prefix else "card"
        warnings.append(f"{where} lacks {', '.join(missing)}; treated as empty")
    fields: dict[str, Any] = {"name": name}
    for key in _TEXT_FIELDS:
        fields[key] = _text(data, key, prefix, warnings, issues)
    for key in ("alternate_greetings", "tags"):
        fields[key] = _string_list(data, key, prefix, warnings, issues)
    fields["examples"], unread = read_examples(fields["mes_example"], name)
    warnings.extend(unread)
    fields["lore"] = _lore(data, prefix, warnings)
    if "extensions" in data and not isinstance(data["extensions"], dict):
        warnings.append(f"{prefix}extensions is not an object; ignored")
    warnings.extend(_kept_unused(data, prefix))
    return fields


def _lore(data: dict[str, Any], prefix: str, warnings: list[str]) -> lorebook.Lore:
    """The card's ``character_book`` as lore entries and settings."""
    book = data.get("character_book")
    if book is None:
        if "character_book" in data:
            warnings.append(f"{prefix}character_book is null; treated as absent")
        return lorebook.Lore()
    if not isinstance(book, dict):
        warnings.append(f"{prefix}character_book is not an object; ignored")
        return lorebook.Lore()
    lore = lorebook.from_character_book(book, f"{prefix}character_book")
    warnings.extend(lore.warnings)
    return lore


def _kept_unused(data: dict[str, Any], prefix: str) -> list[str]:
    """Card features kept in the stored card (and exported) that no conversation uses."""
    extensions = data.get("extensions") if isinstance(data.get("extensions"), dict) else {}
    assert isinstance(extensions, dict)
    depth = extensions.get("depth_prompt")
    scripts = extensions.get("regex_scripts")
    group = data.get("group_only_greetings")
    found = [
        (isinstance(depth, dict) and bool(str(depth.get("prompt") or "").strip()),
         "extensions.depth_prompt (the character's note at a chat depth)"),
        (isinstance(scripts, list) and bool(scripts),
         f"extensions.regex_scripts ({len(scripts) if isinstance(scripts, list) else 0} "
         "script(s))"),
        (isinstance(group, list) and bool(group),
         f"group_only_greetings ({len(group) if isinstance(group, list) else 0} greeting(s))"),
        (isinstance(data.get("nickname"), str) and bool(data["nickname"].strip()),
         "nickname ({{char}} is the card's name)"),
    ]
    return [f"{prefix}{what}: kept in the card, not used in conversations"
            for present, what in found if present]


def _text(data: dict[str, Any], key: str, prefix: str, warnings: list[str],
          issues: list[FieldIssue]) -> str:
    value = data.get(key, "")
    if value is None:
        warnings.append(f"{prefix}{key} is null; treated as empty")
        return ""
    if not isinstance(value, str):
        issues.append(FieldIssue(prefix + key, "must be a string"))
        return ""
    return value


def _string_list(data: dict[str, Any], key: str, prefix: str, warnings: list[str],
                 issues: list[FieldIssue]) -> list[str]:
    path, value = prefix + key, data.get(key, [])
    if value is None:
        warnings.append(f"{path} is null; treated as empty")
        return []
    if isinstance(value, str):
        if key == "tags":
            warnings.append(f"{path} is a string, not a list; split at commas")
            return [tag.strip() for tag in value.split(",") if tag.strip()]
        warnings.append(f"{path} is a string, not a list; read as one item")
        value = [value]
    if not isinstance(value, list):
        issues.append(FieldIssue(path, "must be a list of strings"))
        return []
    issues.extend(FieldIssue(f"{path}[{i}]", "must be a string")
                  for i, item in enumerate(value) if not isinstance(item, str))
    return [item for item in value if isinstance(item, str) and item.strip()]


def _take_our_extension(stored: dict[str, Any], version: int,
                        warnings: list[str]) -> dict[str, Any]:
    """Remove ``extensions.personae`` from the stored card and return its fields."""
    data = stored.get("data") if version > 1 else stored
    extensions = data.get("extensions") if isinstance(data, dict) else None
    if not isinstance(extensions, dict) or OUR_EXTENSION not in extensions:
        return {}
    ours = extensions.pop(OUR_EXTENSION)
    if not isinstance(ours, dict):
        warnings.append(f"extensions.{OUR_EXTENSION} is not an object; ignored")
        return {}
    unknown = sorted(set(ours) - _OUR_FIELDS)
    if unknown:
        warnings.append(f"extensions.{OUR_EXTENSION}: ignored unknown {', '.join(unknown)}")
    return {key: value for key, value in ours.items() if key in _OUR_FIELDS}


def _persona_raw(fields: dict[str, Any], ours: dict[str, Any], persona_id: str | None,
                 stored: dict[str, Any]) -> dict[str, Any]:
    """Loose persona input for :func:`parse_persona` (which reports field paths)."""
    traits = {key: fields[key] for key in _CARD_TRAITS if fields[key]}
    greetings = [fields["first_mes"], *fields["alternate_greetings"]]
    raw: dict[str, Any] = {
        # No id given: parse_persona makes one from the name, which fits any namespace.
        "id": persona_id or ("" if id_from_name(fields["name"]) else "character"),
        "name": fields["name"],
        "description": fields["description"],
        "system_prompt": fields["system_prompt"],
        "post_history_instructions": fields["post_history_instructions"],
        "greetings": [greeting for greeting in greetings if greeting.strip()],
        "tags": fields["tags"],
        "example_dialogues": fields["examples"],
    }
    lore: lorebook.Lore = fields["lore"]
    if lore.settings:
        raw["lorebook"] = lore.settings
    raw.update({key: value for key, value in ours.items()
                if key not in ("traits", "extensions", "knowledge")})
    plain = ours.get("knowledge", [])  # a card's lorebook holds lore; plain items travel here
    raw["knowledge"] = [*(plain if isinstance(plain, list) else [plain]), *lore.items]
    extra_traits = ours.get("traits", {})
    raw["traits"] = {**traits, **extra_traits} if isinstance(extra_traits, dict) else extra_traits
    extra = ours.get("extensions", {})
    extra = {k: v for k, v in extra.items() if k != STORE_KEY} if isinstance(extra, dict) else {}
    raw["extensions"] = {**extra, STORE_KEY: stored}
    return raw


__all__ = ["CardImport", "import_card", "parse_examples", "persona_from_card"]
