"""Export personas as Character Cards (V3, and V2 for apps and PNG chunks that predate V3).

Export starts from the card stored at import (``extensions["chara_card"]``) and
replaces only the groups of fields whose persona value was edited since, so a card
passing through unchanged comes back equal. Persona fields a card has no place for
travel in ``data.extensions["personae"]``.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from personae.errors import InvalidInput
from personae.personas import card_assets, card_files, card_versions
from personae.personas.card_examples import parse_examples, render_examples
from personae.personas.cards import (
    _CARD_TRAITS,
    OUR_EXTENSION,
    PERSONA_ONLY,
    STORE_KEY,
    V1_FIELDS,
    V2_SPEC,
    V3_ONLY,
    V3_SPEC,
    persona_from_card,
)
from personae.personas.lorebook import character_book_from
from personae.personas.schema import PersonaDefinition

_DEFAULT_ASSET = card_assets.DEFAULT_ICON

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
    "post_history_instructions": (("post_history_instructions",),
                                  lambda d: d.post_history_instructions),
    "lorebook": (("character_book",),
                 lambda d: ([item for item in d.knowledge if item.is_lore], d.lorebook)),
}




def card_from_persona(definition: PersonaDefinition, blobs: Mapping[str, bytes] | None = None
                      ) -> dict[str, Any]:
    """The persona as a V3 card (``chara_card_v3``); its files as ``data:`` URIs (those
    not in ``blobs`` are left out, so the card never names a file it lacks)."""
    return _export(definition, 3, _assets(definition, "json", blobs))


def card_v2_from_persona(definition: PersonaDefinition, blobs: Mapping[str, bytes] | None =
                         None) -> dict[str, Any]:
    """The persona as a V2 card, for apps and the PNG ``chara`` chunk that predate V3."""
    return _export(definition, 2, _assets(definition, "json", blobs))


def export_card_png(definition: PersonaDefinition, image: bytes | None = None, *,
                    blobs: Mapping[str, bytes] | None = None) -> bytes:
    """A PNG card with ``ccv3`` (V3) and ``chara`` (V2) chunks, on ``image`` if given,
    else on the avatar (from ``blobs``), else on a placeholder. A PNG is kept byte for
    byte; other assets go in RisuAI's ``chara-ext-asset_:N`` chunks (``__asset:N``)."""
    exported = _assets(definition, "png", blobs)
    avatar = definition.avatar_asset
    if image is None and avatar is not None and blobs and avatar.sha256 in blobs:
        image = blobs[avatar.sha256]
    chunks = {"chara": _encode(_export(definition, 2, exported)),
              "ccv3": _encode(_export(definition, 3, exported))}
    chunks |= {key: base64.b64encode(data).decode("ascii")
               for key, data in exported.files.items()}
    letters = (next((c for c in word if c.isalnum()), "") for word in definition.name.split())
    initials = "".join(letters).upper()[:2] or "?"
    return card_files.write_png_text(image, chunks, initials)


def export_charx(definition: PersonaDefinition, blobs: Mapping[str, bytes]) -> bytes:
    """A CHARX archive: the V3 ``card.json`` and every file at
    ``assets/{type}/{images|audio|other}/{name}.{ext}``, named ``embeded://`` so."""
    exported = _assets(definition, "charx", blobs)
    card = _export(definition, 3, exported)
    body = json.dumps(card, ensure_ascii=False, indent=2).encode("utf-8")
    return card_files.write_charx(body, exported.files)


def _encode(card: dict[str, Any]) -> str:
    text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _assets(definition: PersonaDefinition, container: str,
            blobs: Mapping[str, bytes] | None) -> card_assets.ExportedAssets:
    """The card's asset entries for ``container``, from the stored card's (V3, or a V2
    card's stash of them) and the persona's files."""
    stored = definition.extensions.get(STORE_KEY)
    if not isinstance(stored, dict) or not isinstance(stored.get("data"), dict):
        return card_assets.plan(definition, None, container, blobs)
    data = stored["data"]
    entries = data.get("assets") if stored.get("spec") == V3_SPEC else \
        card_versions.stashed(data, "assets")
    return card_assets.plan(definition, entries, container, blobs)


def _export(definition: PersonaDefinition, version: int,
            exported: card_assets.ExportedAssets) -> dict[str, Any]:
    """Start from the stored card; overwrite only the groups edited since import."""
    stored = definition.extensions.get(STORE_KEY)
    original = copy.deepcopy(stored) if isinstance(stored, dict) else None
    original_version, original_data = _stored_data(original)
    data = _as_version(original_data, original_version, version)
    book = data.get("character_book")
    derived = _derived(definition)
    changed = _changed_groups(definition, original)
    for group in changed:
        for key in _GROUPS[group][0]:
            if derived[key] is None:
                data.pop(key, None)  # e.g. no lore entries left: no character_book
            else:
                data[key] = derived[key]
    _place_assets(data, version, exported)
    if "character_book" in data and (original_version != version
                                     or data["character_book"] is not book):
        data["character_book"] = card_versions.book_to_v3(data["character_book"]) \
            if version == 3 else card_versions.book_to_v2(data["character_book"])
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


def _as_version(data: dict[str, Any], given: int | None, version: int) -> dict[str, Any]:
    """The stored card's data as data of a ``version`` card (V3-only fields kept in a V2
    card's extensions, see :mod:`card_versions`)."""
    if given == version:
        return data
    if version == 2:
        return _template(2) | card_versions.stash_v3_only(data, V3_ONLY)
    return _template(3) | card_versions.unstash_v3_only(data, V3_ONLY)


def _place_assets(data: dict[str, Any], version: int,
                  exported: card_assets.ExportedAssets) -> None:
    """The planned asset entries: ``data.assets`` in V3, the V3 stash in V2. A card that
    said nothing of assets stays so while the persona has no files of its own."""
    default = [card_assets.DEFAULT_ICON]
    if version == 3:
        if "assets" in data or exported.entries != default:
            data["assets"] = exported.entries
    elif card_versions.stashed(data, "assets") is not None or exported.entries != default:
        card_versions.set_stashed(data, "assets", exported.entries)


def _stored_data(original: dict[str, Any] | None) -> tuple[int | None, dict[str, Any]]:
    """The stored card's version and data. A V1 card's other top-level keys (the tool
    that made it, ``create_date``, ...) go under ``extensions``, as SillyTavern keeps
    them, an existing extension of the same name winning."""
    if original is None:
        return None, {}
    spec, data = original.get("spec"), original.get("data")
    if spec in (V2_SPEC, V3_SPEC) and isinstance(data, dict):
        return (3 if spec == V3_SPEC else 2), data
    fields = {key: original[key] for key in V1_FIELDS if key in original}
    given = original.get("extensions")
    extensions = dict(given) if isinstance(given, dict) else {}
    for key, value in original.items():
        if key not in V1_FIELDS and key != "extensions":
            extensions.setdefault(key, value)
    if extensions:
        fields["extensions"] = extensions
    return 1, fields


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
        "post_history_instructions": definition.post_history_instructions,
        "character_book": character_book_from(definition),
    }


def _changed_groups(definition: PersonaDefinition, original: dict[str, Any] | None) -> list[str]:
    """Groups whose persona value differs from what the stored card maps to."""
    before: PersonaDefinition | None = None
    if original is not None:
        try:
            before, _ = persona_from_card(original, [], persona_id=definition.id,
                                           source=None, render=False)
        except InvalidInput:
            before = None
    if before is None:
        return list(_GROUPS)
    return [group for group, (_, get) in _GROUPS.items() if get(before) != get(definition)]


def _our_extension(definition: PersonaDefinition) -> dict[str, Any]:
    """Persona fields a card cannot hold, limited to those not at their defaults."""
    ours = definition.model_dump(mode="json", include=set(PERSONA_ONLY), exclude_defaults=True)
    plain = [item.model_dump(mode="json", exclude_defaults=True)
             for item in definition.knowledge if not item.is_lore]  # lore: character_book
    ours.pop("knowledge", None)
    if plain:
        ours["knowledge"] = plain
    traits = {key: value for key, value in definition.traits.items()
              if not (key in _CARD_TRAITS and isinstance(value, str) and value)}
    if traits:
        ours["traits"] = traits
    extensions = {k: v for k, v in definition.extensions.items() if k != STORE_KEY}
    if extensions:
        ours["extensions"] = extensions
    examples = [item.model_dump(mode="json") for item in definition.example_dialogues]
    if parse_examples(render_examples(definition.example_dialogues), definition.name) != examples:
        ours["example_dialogues"] = examples
    return copy.deepcopy(ours)
