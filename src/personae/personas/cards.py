"""Import and export Character Cards (V1, V2 and V3; as JSON, PNG or CHARX).

Character Cards are how chat apps exchange characters. Import maps a card onto a
persona and keeps the whole card under ``extensions["chara_card"]``; export starts
from that stored card and replaces only the fields whose persona value was edited,
so a card passing through unchanged comes back equal, lorebook and other apps'
extensions included. Persona fields a card has no place for travel in
``data.extensions["personae"]`` so a persona survives export and re-import.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slugify import slugify

from personae.errors import FieldIssue, InvalidInput, ValidationFailed
from personae.limits import load_json
from personae.personas import card_files
from personae.personas.schema import ExampleExchange, PersonaDefinition
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
                "system_prompt")
_CARD_TRAITS = ("personality", "scenario")
PERSONA_ONLY = ("display_name", "avatar", "role", "speciality", "language", "language_policy",
                "gender", "voice", "prompt_template", "expertise_keywords", "knowledge",
                "model", "status")
_OUR_FIELDS = frozenset({*PERSONA_ONLY, "traits", "example_dialogues", "extensions"})
_DEFAULT_ASSET = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}

# Persona value -> the card keys it is written to. A group whose persona value is
# unchanged since import is exported with the card's original values.
_GROUPS: dict[str, tuple[tuple[str, ...], Callable[[PersonaDefinition], Any]]] = {
    "name": (("name",), lambda d: d.name),
    "description": (("description",), lambda d: d.description),
    "system_prompt": (("system_prompt",), lambda d: d.system_prompt),
    "personality": (("personality",), lambda d: d.traits.get("personality")),
    "scenario": (("scenario",), lambda d: d.traits.get("scenario")),
    "greetings": (("first_mes", "alternate_greetings"), lambda d: d.greetings),
    "tags": (("tags",), lambda d: d.tags),
    "examples": (("mes_example",), lambda d: d.example_dialogues),
}

_START_LINE = re.compile(r"^\s*<start>\s*$", re.IGNORECASE)
_TURN_LINE = re.compile(r"^\s*\{\{(user|char)\}\}:[ \t]?(.*)$", re.IGNORECASE)


@dataclass
class CardImport:
    """A persona read from a card, with what was lenient about the card."""

    definition: PersonaDefinition
    warnings: list[str]
    source_format: str  # "v1-json", "v2-json", "v3-json", "png", "charx"


def import_card(
    content: bytes, *, filename: str | None = None, persona_id: str | None = None
) -> CardImport:
    """Read a card from JSON, PNG or CHARX bytes (detected by magic number).

    Raises :class:`InvalidInput` for bytes that hold no card and
    :class:`ValidationFailed` when the card's fields break the persona schema.
    """
    warnings: list[str] = []
    if content.startswith(card_files.PNG_MAGIC):
        card, kind = _card_from_png(content), "png"
    elif content.startswith(card_files.ZIP_MAGIC):
        card, kind = _card_from_charx(content, warnings), "charx"
    else:
        card, kind = _parse_json(content, NOT_A_CARD), ""
    definition, version = _persona_from_card(
        card, warnings, persona_id=persona_id, source=filename
    )
    return CardImport(definition, warnings, kind or f"v{version}-json")


def _parse_json(raw: bytes, error: str) -> Any:
    """Card JSON, nested at most MAX_DEPTH levels (:class:`NestedTooDeep` otherwise)."""
    try:
        return load_json(raw.decode("utf-8-sig"), "the Character Card")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(error) from None


def _card_from_png(content: bytes) -> Any:
    name, raw = card_files.card_chunk(content)
    return _parse_json(raw, f"PNG chunk '{name}' does not decode to valid JSON")


def _card_from_charx(content: bytes, warnings: list[str]) -> Any:
    contents = card_files.read_charx(content)
    if contents.asset_count:
        warnings.append(
            f"CHARX assets are not imported: {contents.asset_count} embedded file(s) "
            "were skipped; only card.json was read"
        )
    return _parse_json(contents.card_json, "CHARX card.json is not valid JSON")


def _persona_from_card(
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
    if "character_book" in data and data["character_book"] is None:
        warnings.append(f"{prefix}character_book is null; treated as absent")
    if "extensions" in data and not isinstance(data["extensions"], dict):
        warnings.append(f"{prefix}extensions is not an object; ignored")
    return fields


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
        "id": persona_id or slugify(fields["name"], max_length=64) or "character",
        "name": fields["name"],
        "description": fields["description"],
        "system_prompt": fields["system_prompt"],
        "greetings": [greeting for greeting in greetings if greeting.strip()],
        "tags": fields["tags"],
        "example_dialogues": parse_examples(fields["mes_example"]),
    }
    raw.update({key: value for key, value in ours.items() if key not in ("traits", "extensions")})
    extra_traits = ours.get("traits", {})
    raw["traits"] = {**traits, **extra_traits} if isinstance(extra_traits, dict) else extra_traits
    extra = ours.get("extensions", {})
    extra = {k: v for k, v in extra.items() if k != STORE_KEY} if isinstance(extra, dict) else {}
    raw["extensions"] = {**extra, STORE_KEY: stored}
    return raw


def parse_examples(text: str) -> list[dict[str, str]]:
    """``<START>`` blocks of ``{{user}}:``/``{{char}}:`` lines as user/reply pairs.

    Anything not following that convention gives ``[]``: the text then stays only in
    the stored card, which is exported verbatim while the examples are not edited.
    """
    blocks = _turn_blocks(text)
    if blocks is None:
        return []
    exchanges: list[dict[str, str]] = []
    for turns in blocks:
        if len(turns) % 2:
            return []
        for (asker, asked), (replier, reply) in zip(turns[::2], turns[1::2], strict=True):
            if (asker, replier) != ("user", "char") or not asked.strip() or not reply.strip():
                return []
            exchanges.append({"user": asked.strip(), "reply": reply.strip()})
    return exchanges


def _turn_blocks(text: str) -> list[list[tuple[str, str]]] | None:
    blocks: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if _START_LINE.match(line):
            blocks.append([])
        elif turn := _TURN_LINE.match(line):
            if not blocks:
                blocks.append([])
            blocks[-1].append((turn[1].lower(), turn[2]))
        elif blocks and blocks[-1]:
            speaker, said = blocks[-1][-1]
            blocks[-1][-1] = (speaker, f"{said}\n{line}")
        elif line.strip():
            return None
    return blocks


def render_examples(exchanges: list[ExampleExchange]) -> str:
    """The ``mes_example`` text for exchanges, one ``<START>`` block each."""
    return "\n".join(
        f"<START>\n{{{{user}}}}: {item.user}\n{{{{char}}}}: {item.reply}" for item in exchanges
    )


def card_from_persona(definition: PersonaDefinition) -> dict[str, Any]:
    """The persona as a V3 card (``chara_card_v3``)."""
    return _export(definition, 3)


def card_v2_from_persona(definition: PersonaDefinition) -> dict[str, Any]:
    """The persona as a V2 card, for apps and the PNG ``chara`` chunk that predate V3."""
    return _export(definition, 2)


def export_card_png(definition: PersonaDefinition, image: bytes | None = None) -> bytes:
    """A PNG card with ``ccv3`` (V3) and ``chara`` (V2) chunks, on ``image`` if given."""
    chunks = {"chara": _encode(card_v2_from_persona(definition)),
              "ccv3": _encode(card_from_persona(definition))}
    letters = (next((c for c in word if c.isalnum()), "") for word in definition.name.split())
    initials = "".join(letters).upper()[:2] or "?"
    return card_files.write_png_text(image, chunks, initials)


def _encode(card: dict[str, Any]) -> str:
    text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _export(definition: PersonaDefinition, version: int) -> dict[str, Any]:
    """Start from the stored card; overwrite only the groups edited since import."""
    stored = definition.extensions.get(STORE_KEY)
    original = copy.deepcopy(stored) if isinstance(stored, dict) else None
    original_version, original_data = _stored_data(original)
    if original_version == version:
        data = original_data
    else:
        kept = {k: v for k, v in original_data.items() if version == 3 or k not in V3_ONLY}
        data = _template(version) | kept
    derived = _derived(definition)
    changed = _changed_groups(definition, original)
    for group in changed:
        for key in _GROUPS[group][0]:
            data[key] = derived[key]
    ours = _our_extension(definition)
    extensions = data.get("extensions")
    if isinstance(extensions, dict):
        extensions.pop(OUR_EXTENSION, None)  # a stale copy; rebuilt from the persona
    if ours:
        data["extensions"] = {**(extensions if isinstance(extensions, dict) else {}),
                              OUR_EXTENSION: ours}
    card = dict(original) if original is not None and original_version != 1 else {}
    card["spec"] = V3_SPEC if version == 3 else V2_SPEC
    if original_version != version:
        card["spec_version"] = "3.0" if version == 3 else "2.0"
    card["data"] = data
    for group in changed:  # top-level copies of V1 fields that some V2 writers add
        for key in _GROUPS[group][0]:
            if key in card and key in V1_FIELDS:
                card[key] = derived[key]
    return card


def _stored_data(original: dict[str, Any] | None) -> tuple[int | None, dict[str, Any]]:
    if original is None:
        return None, {}
    spec, data = original.get("spec"), original.get("data")
    if spec in (V2_SPEC, V3_SPEC) and isinstance(data, dict):
        return (3 if spec == V3_SPEC else 2), data
    return 1, {key: original[key] for key in V1_FIELDS if key in original}


def _template(version: int) -> dict[str, Any]:
    """Every field a card of ``version`` requires, empty."""
    data: dict[str, Any] = {
        "name": "", "description": "", "personality": "", "scenario": "",
        "first_mes": "", "mes_example": "", "creator_notes": "", "system_prompt": "",
        "post_history_instructions": "", "alternate_greetings": [], "tags": [],
        "creator": "", "character_version": "", "extensions": {},
    }
    if version == 3:
        data |= {"group_only_greetings": [], "assets": [dict(_DEFAULT_ASSET)]}
    return data


def _derived(definition: PersonaDefinition) -> dict[str, Any]:
    """Card values computed from the persona alone."""
    traits = {key: definition.traits.get(key) for key in _CARD_TRAITS}
    return {
        "name": definition.name,
        "description": definition.description,
        "system_prompt": definition.system_prompt,
        **{key: value if isinstance(value, str) else "" for key, value in traits.items()},
        "first_mes": definition.greetings[0] if definition.greetings else "",
        "alternate_greetings": list(definition.greetings[1:]),
        "tags": list(definition.tags),
        "mes_example": render_examples(definition.example_dialogues),
    }


def _changed_groups(definition: PersonaDefinition, original: dict[str, Any] | None) -> list[str]:
    """Groups whose persona value differs from what the stored card maps to."""
    before: PersonaDefinition | None = None
    if original is not None:
        try:
            before, _ = _persona_from_card(original, [], persona_id=definition.id,
                                           source=None, render=False)
        except InvalidInput:
            before = None
    if before is None:
        return list(_GROUPS)
    return [group for group, (_, get) in _GROUPS.items() if get(before) != get(definition)]


def _our_extension(definition: PersonaDefinition) -> dict[str, Any]:
    """Persona fields a card cannot hold, limited to those not at their defaults."""
    ours = definition.model_dump(mode="json", include=set(PERSONA_ONLY), exclude_defaults=True)
    traits = {key: value for key, value in definition.traits.items()
              if not (key in _CARD_TRAITS and isinstance(value, str) and value)}
    if traits:
        ours["traits"] = traits
    extensions = {k: v for k, v in definition.extensions.items() if k != STORE_KEY}
    if extensions:
        ours["extensions"] = extensions
    examples = [item.model_dump(mode="json") for item in definition.example_dialogues]
    if parse_examples(render_examples(definition.example_dialogues)) != examples:
        ours["example_dialogues"] = examples
    return copy.deepcopy(ours)
