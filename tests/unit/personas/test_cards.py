"""Character Card import/export: formats, round trips, leniency and rejection."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from personae.errors import InvalidInput, ValidationFailed
from personae.personas.card_export import (
    card_from_persona,
    card_v2_from_persona,
    export_card_png,
)
from personae.personas.cards import CardImport, import_card, parse_examples
from personae.personas.schema import PersonaDefinition
from personae.personas.validation import parse_persona

MES_EXAMPLE = (
    "<START>\n{{user}}: What brings you here?\n{{char}}: The tide, mostly.\n"
    "It always does.\n<START>\n{{user}}: Any advice?\n{{char}}: Never trust a calm sea."
)

V1_CARD: dict[str, Any] = {
    "name": "Captain Mara",
    "description": "A weathered sea captain.",
    "personality": "gruff, loyal",
    "scenario": "Aboard the Gull, in a storm.",
    "first_mes": "Welcome aboard.",
    "mes_example": MES_EXAMPLE,
}

CHARACTER_BOOK = {
    "name": "Gull lore",
    "extensions": {},
    "entries": [
        {"keys": ["Gull"], "content": "The Gull is a brig.", "extensions": {},
         "enabled": True, "insertion_order": 0},  # no use_regex: a V3-only field
    ],
}

V2_CARD: dict[str, Any] = {
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": {
        **V1_CARD,
        "creator_notes": "Best with a storm scenario.",
        "system_prompt": "Stay in character as {{char}}.",
        "post_history_instructions": "Keep replies short.",
        "alternate_greetings": ["Mind the rigging.", ""],
        "character_book": CHARACTER_BOOK,
        "tags": ["pirate", "sea"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "fav": False,
                       "depth_prompt": {"prompt": "Smell of salt.", "depth": 4}},
    },
}

V3_CARD: dict[str, Any] = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        **copy.deepcopy(V2_CARD["data"]),
        # ccdefault: the container's own image; a JSON card holds no embedded file.
        "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        "nickname": "Mara",
        "creator_notes_multilingual": {"fr": "Mieux avec une tempête."},
        "source": ["https://example.org/mara"],
        "group_only_greetings": ["Ahoy, all of you."],
        "creation_date": 1700000000,
        "modification_date": 1700000500,
    },
}


def as_json(card: Any) -> bytes:
    return json.dumps(card).encode()


def b64(card: Any) -> str:
    return base64.b64encode(json.dumps(card).encode()).decode()


def png_with(chunks: dict[str, str], size: tuple[int, int] = (8, 12), *,
             compress: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value, zip=compress)
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def png_chunks(content: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(content)) as image:
        image.load()
        return dict(image.text)


def decode_chunk(text: str) -> Any:
    return json.loads(base64.b64decode(text))


def charx_with(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def without_store(definition: PersonaDefinition) -> dict[str, Any]:
    data = definition.to_data()
    extensions = data.pop("extensions", {})
    extensions.pop("chara_card", None)
    if extensions:
        data["extensions"] = extensions
    return data


def rich_persona() -> PersonaDefinition:
    return parse_persona({
        "id": "dr-ines",
        "name": "Dr. Inès Vidal",
        "display_name": "Inès",
        "description": "A marine biologist who explains things patiently.",
        "avatar": "https://example.org/ines.png",
        "tags": ["science", "ocean"],
        "role": "tutor",
        "speciality": "marine biology",
        "language": "fr",
        "language_policy": "prefer",
        "gender": "female",
        "voice": {"provider": "acme", "voice_id": "v-12", "speed": 1.1},
        "system_prompt": "You are Inès.",
        "prompt_template": "{{persona}}",
        "greetings": ["Bonjour !", "Salut."],
        "example_dialogues": [{"user": "Why is the sea salty?", "reply": "Rivers, rocks, time."}],
        "expertise_keywords": ["plankton", "coral"],
        "knowledge": [{"title": "Reefs", "content": "Reefs cover 0.1% of the ocean floor."}],
        "model": {"provider": "openai", "temperature": 0.4},
        "status": "draft",
        "traits": {"personality": "curious", "scenario": "A research vessel.",
                   "teaching_style": {"pace": "slow"}},
        "extensions": {"other_tool": {"x": 1}},
    })


# ------------------------------------------------------------------------- import


def test_v1_json_import_maps_fields() -> None:
    result = import_card(as_json(V1_CARD))
    persona = result.definition
    assert isinstance(result, CardImport)
    assert result.source_format == "v1-json"
    assert result.warnings == []
    assert persona.id == "captain-mara"
    assert persona.name == "Captain Mara"
    assert persona.display_name is None
    assert persona.description == "A weathered sea captain."
    assert persona.traits == {"personality": "gruff, loyal",
                              "scenario": "Aboard the Gull, in a storm."}
    assert persona.greetings == ["Welcome aboard."]
    assert [e.model_dump() for e in persona.example_dialogues] == [
        {"user": "What brings you here?", "reply": "The tide, mostly.\nIt always does."},
        {"user": "Any advice?", "reply": "Never trust a calm sea."},
    ]
    assert persona.extensions["chara_card"] == V1_CARD


def test_v2_import_maps_greetings_tags_and_system_prompt() -> None:
    result = import_card(as_json(V2_CARD), persona_id="mara")
    persona = result.definition
    assert result.source_format == "v2-json"
    assert persona.id == "mara"
    assert persona.greetings == ["Welcome aboard.", "Mind the rigging."]
    assert persona.tags == ["pirate", "sea"]
    assert persona.system_prompt == "Stay in character as {{char}}."


def test_v2_json_round_trip_is_exact() -> None:
    persona = import_card(as_json(V2_CARD)).definition
    assert card_v2_from_persona(persona) == V2_CARD


def test_v3_json_round_trip_is_exact() -> None:
    result = import_card(as_json(V3_CARD))
    assert result.source_format == "v3-json"
    assert card_from_persona(result.definition) == V3_CARD


def test_v2_card_exported_as_v3_keeps_lorebook_and_fills_v3_fields() -> None:
    card = card_from_persona(import_card(as_json(V2_CARD)).definition)
    assert card["spec"] == "chara_card_v3"
    assert card["spec_version"] == "3.0"
    entries = [{**entry, "use_regex": False} for entry in CHARACTER_BOOK["entries"]]
    assert card["data"]["character_book"] == {**CHARACTER_BOOK, "entries": entries}
    assert card["data"]["extensions"] == V2_CARD["data"]["extensions"]
    assert card["data"]["group_only_greetings"] == []
    assert card["data"]["assets"][0]["uri"] == "ccdefault:"


def test_v3_card_exported_as_v2_drops_v3_only_fields() -> None:
    card = card_v2_from_persona(import_card(as_json(V3_CARD)).definition)
    assert card["spec"] == "chara_card_v2"
    assert card["spec_version"] == "2.0"
    assert "assets" not in card["data"]
    assert "group_only_greetings" not in card["data"]
    assert card["data"]["character_book"] == CHARACTER_BOOK


def test_json_with_bom_is_accepted() -> None:
    result = import_card(b"\xef\xbb\xbf" + as_json(V2_CARD))
    assert result.definition.name == "Captain Mara"


def test_v2_png_round_trip() -> None:
    source = png_with({"chara": b64(V2_CARD)})
    result = import_card(source, filename="mara.png")
    assert result.source_format == "png"
    exported = export_card_png(result.definition, source)
    chunks = png_chunks(exported)
    assert set(chunks) >= {"chara", "ccv3"}
    assert decode_chunk(chunks["chara"]) == V2_CARD
    assert decode_chunk(chunks["ccv3"])["spec"] == "chara_card_v3"
    again = import_card(exported)
    assert without_store(again.definition) == without_store(result.definition)
    assert card_v2_from_persona(again.definition) == V2_CARD
    with Image.open(io.BytesIO(exported)) as image:
        assert image.size == (8, 12)


def test_v3_png_round_trip() -> None:
    source = png_with({"ccv3": b64(V3_CARD), "chara": b64(V2_CARD)})
    result = import_card(source)
    exported = export_card_png(result.definition)
    chunks = png_chunks(exported)
    assert decode_chunk(chunks["ccv3"]) == V3_CARD
    v2 = decode_chunk(chunks["chara"])
    assert v2["spec"] == "chara_card_v2"
    assert v2["data"]["name"] == "Captain Mara"
    assert card_from_persona(import_card(exported).definition) == V3_CARD


def test_export_png_without_image_draws_placeholder() -> None:
    exported = export_card_png(rich_persona())
    with Image.open(io.BytesIO(exported)) as image:
        assert image.format == "PNG"
        assert image.size == (400, 600)
        low, high = image.convert("L").getextrema()
        assert low != high  # initials were drawn


def test_export_png_replaces_old_card_chunks_and_keeps_others() -> None:
    source = png_with({"chara": b64(V1_CARD), "parameters": "seed 42"})
    persona = import_card(source).definition.model_copy(update={"description": "Retired."})
    chunks = png_chunks(export_card_png(persona, source))
    assert chunks["parameters"] == "seed 42"
    assert decode_chunk(chunks["chara"])["data"]["description"] == "Retired."


def test_export_png_converts_other_image_formats() -> None:
    jpeg = io.BytesIO()
    Image.new("CMYK", (5, 7)).save(jpeg, format="JPEG")
    exported = export_card_png(rich_persona(), jpeg.getvalue())
    with Image.open(io.BytesIO(exported)) as image:
        assert (image.format, image.size) == ("PNG", (5, 7))
    assert import_card(exported).definition.name == "Dr. Inès Vidal"


def test_export_png_rejects_unreadable_image() -> None:
    with pytest.raises(InvalidInput, match="image is not a readable image"):
        export_card_png(rich_persona(), b"not an image")


def test_ccv3_wins_over_chara() -> None:
    v3 = copy.deepcopy(V3_CARD)
    v3["data"]["description"] = "from ccv3"
    source = png_with({"chara": b64(V2_CARD), "ccv3": b64(v3)})
    persona = import_card(source).definition
    assert persona.description == "from ccv3"
    assert persona.extensions["chara_card"]["spec"] == "chara_card_v3"


def test_large_compressed_png_card_is_read() -> None:
    card = copy.deepcopy(V2_CARD)
    card["data"]["creator_notes"] = "x" * 3_000_000  # over Pillow's 1 MiB default
    persona = import_card(png_with({"chara": b64(card)}, compress=True)).definition
    assert card_v2_from_persona(persona) == card
    assert PngImagePlugin.MAX_TEXT_CHUNK == 1024 * 1024  # limit restored afterwards


def test_charx_import_keeps_assets_and_warns_about_unlisted_files() -> None:
    icon = png_with({})
    card = copy.deepcopy(V3_CARD)
    card["data"]["assets"] = [{"type": "icon", "uri": "embeded://assets/icon/main.png",
                               "name": "main", "ext": "png"}]
    content = charx_with({"card.json": as_json(card), "assets/icon/main.png": icon,
                          "assets/other/notes.txt": b"hello"})
    result = import_card(content, filename="mara.charx")
    assert result.source_format == "charx"
    assert result.definition.name == "Captain Mara"
    assert [(a.name, a.type, a.uri) for a in result.definition.assets] == [
        ("main", "icon", "embeded://assets/icon/main.png")]
    assert result.blobs == {result.definition.assets[0].sha256: icon}
    assert any("1 file(s) in the CHARX archive" in warning and "notes.txt" in warning
               for warning in result.warnings)


# ---------------------------------------------------------------------- leniency


def card_with(**changes: Any) -> dict[str, Any]:
    card = copy.deepcopy(V2_CARD)
    card["data"].update(changes)
    return card


@pytest.mark.parametrize(
    ("card", "fragment", "check"),
    [
        (card_with(character_book=None), "character_book is null",
         lambda p: p.name == "Captain Mara"),
        (card_with(alternate_greetings="Mind the rigging."), "alternate_greetings is a string",
         lambda p: p.greetings == ["Welcome aboard.", "Mind the rigging."]),
        (card_with(tags="pirate, sea ,, salt"), "split at commas",
         lambda p: p.tags == ["pirate", "sea", "salt"]),
        (card_with(description=None, scenario=None), "description is null",
         lambda p: p.description == "" and "scenario" not in p.traits),
        (card_with(tags=None, alternate_greetings=None), "tags is null",
         lambda p: p.tags == [] and p.greetings == ["Welcome aboard."]),
        ({k: v for k, v in V2_CARD.items() if k != "spec_version"}, "no spec_version",
         lambda p: p.name == "Captain Mara"),
        ({"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Bare"}},
         "lacks description", lambda p: p.name == "Bare" and p.greetings == []),
        ({"name": "Only Name"}, "card lacks description", lambda p: p.id == "only-name"),
    ],
)
def test_lenient_cards_import_with_a_warning(card: dict[str, Any], fragment: str,
                                             check: Any) -> None:
    result = import_card(as_json(card))
    assert any(fragment in warning for warning in result.warnings), result.warnings
    assert check(result.definition)
    assert result.definition.extensions["chara_card"] == card  # stored as given
    exported = card_v2_from_persona(result.definition) if card.get("spec") != "chara_card_v3" \
        else card_from_persona(result.definition)
    if "spec" in card:
        assert exported == card  # lenient input still round-trips exactly


def test_name_without_slug_characters_gets_fallback_id() -> None:
    assert import_card(as_json({**V1_CARD, "name": "★★"})).definition.id == "character"


# --------------------------------------------------------------------- rejection


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "not a Character Card: expected JSON, PNG or CHARX"),
        (b"GIF89a\x01\x00garbage", "not a Character Card: expected JSON, PNG or CHARX"),
        (b"\xff\xfe\x00n\x00o", "not a Character Card: expected JSON, PNG or CHARX"),
        (b"{name: 'x'", "not a Character Card: expected JSON, PNG or CHARX"),
        (png_with({"parameters": "seed 1"}), "no 'chara' or 'ccv3'"),
        (png_with({"chara": "***not base64***"}), "not valid base64"),
        (png_with({"chara": base64.b64encode(b"{not json").decode()}),
         "does not decode to valid JSON"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not a readable image"),
        (as_json(["a", "list"]), "must be a JSON object, got an array"),
        (as_json("a string"), "must be a JSON object"),
        (as_json({"description": "no name"}), "card has no name"),
        (as_json({**V1_CARD, "name": "   "}), "card has no name"),
        (as_json({"spec": "chara_card_v2", "data": {"description": "x"}}), "card has no name"),
        (as_json({"spec": "chara_card_v2", "data": "nope"}), "has no 'data' object"),
        (as_json({"spec": "chara_card_v9", "data": {"name": "x"}}), "unknown Character Card spec"),
        (charx_with({"assets/icon.png": b"x"}), "no card.json"),
        (charx_with({"card.json": b"{oops"}), "card.json is not valid JSON"),
        (b"PK\x03\x04truncated zip", "CHARX archive could not be read"),
    ],
)
def test_garbage_is_rejected(content: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        import_card(content)
    assert fragment in str(caught.value)


def test_schema_problems_raise_validation_failed_with_paths() -> None:
    card = card_with(description=42, alternate_greetings=["ok", 7])
    with pytest.raises(ValidationFailed) as caught:
        import_card(as_json(card), filename="bad.json")
    paths = {issue.path for issue in caught.value.issues}
    assert paths == {"data.description", "data.alternate_greetings[1]"}
    assert str(caught.value).startswith("bad.json: ")


def test_invalid_persona_id_is_reported_by_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        import_card(as_json(V1_CARD), persona_id="Not A Slug")
    assert [issue.path for issue in caught.value.issues] == ["id"]


# ----------------------------------------------------------------- native personas


def test_native_persona_card_has_all_v3_fields() -> None:
    persona = parse_persona({"id": "plain", "name": "Plain"})
    card = card_from_persona(persona)
    assert card == {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Plain", "description": "", "personality": "", "scenario": "",
            "first_mes": "", "mes_example": "", "creator_notes": "", "system_prompt": "",
            "post_history_instructions": "", "alternate_greetings": [], "tags": [],
            "creator": "", "character_version": "", "extensions": {},
            "group_only_greetings": [],
            "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
        },
    }
    v2 = card_v2_from_persona(persona)
    assert v2["spec"] == "chara_card_v2"
    assert v2["spec_version"] == "2.0"
    assert "assets" not in v2["data"]
    assert v2["data"]["extensions"] == {}


def test_native_persona_round_trips_through_v3_json() -> None:
    persona = rich_persona()
    card = card_from_persona(persona)
    assert card["data"]["first_mes"] == "Bonjour !"
    assert card["data"]["alternate_greetings"] == ["Salut."]
    assert card["data"]["personality"] == "curious"
    assert card["data"]["mes_example"] == (
        "<START>\n{{user}}: Why is the sea salty?\n{{char}}: Rivers, rocks, time."
    )
    ours = card["data"]["extensions"]["personae"]
    assert ours["language"] == "fr"
    assert ours["traits"] == {"teaching_style": {"pace": "slow"}}
    assert "description" not in ours
    again = import_card(as_json(card), persona_id=persona.id).definition
    assert without_store(again) == without_store(persona)
    assert "personae" not in again.extensions["chara_card"]["data"]["extensions"]


def test_native_persona_round_trips_through_png_and_v2() -> None:
    persona = rich_persona()
    from_png = import_card(export_card_png(persona), persona_id=persona.id).definition
    assert without_store(from_png) == without_store(persona)
    from_v2 = import_card(as_json(card_v2_from_persona(persona)), persona_id=persona.id)
    assert without_store(from_v2.definition) == without_store(persona)


def test_examples_that_do_not_survive_mes_example_are_kept_in_extension() -> None:
    persona = parse_persona({"id": "tricky", "name": "Tricky", "example_dialogues": [
        {"user": "Say it:\n{{char}}: hi", "reply": "No."}]})
    card = card_from_persona(persona)
    assert "example_dialogues" in card["data"]["extensions"]["personae"]
    again = import_card(as_json(card), persona_id="tricky").definition
    assert without_store(again) == without_store(persona)


def test_persona_round_trip_keeps_odd_traits() -> None:
    persona = parse_persona({"id": "odd", "name": "Odd",
                             "traits": {"personality": {"mood": "dry"}, "scenario": ""}})
    card = card_from_persona(persona)
    assert card["data"]["personality"] == ""
    again = import_card(as_json(card), persona_id="odd").definition
    assert again.traits == persona.traits


# ------------------------------------------------------------------------- edits


def test_edited_description_shows_in_export() -> None:
    persona = import_card(as_json(V2_CARD)).definition
    edited = persona.model_copy(update={"description": "Now an innkeeper."})
    card = card_v2_from_persona(edited)
    assert card["data"]["description"] == "Now an innkeeper."
    expected = copy.deepcopy(V2_CARD)
    expected["data"]["description"] = "Now an innkeeper."
    assert card == expected


def test_edits_to_greetings_tags_and_examples_show_in_export() -> None:
    persona = import_card(as_json(V3_CARD)).definition
    edited = parse_persona({
        **persona.model_dump(mode="json"),
        "greetings": ["Ahoy."],
        "tags": ["retired"],
        "example_dialogues": [{"user": "Hi", "reply": "Hm."}],
        "traits": {"scenario": "A quiet harbour."},
        "language": "de",
    })
    data = card_from_persona(edited)["data"]
    assert data["first_mes"] == "Ahoy."
    assert data["alternate_greetings"] == []
    assert data["tags"] == ["retired"]
    assert data["mes_example"] == "<START>\n{{user}}: Hi\n{{char}}: Hm."
    assert data["personality"] == ""
    assert data["scenario"] == "A quiet harbour."
    assert data["extensions"]["personae"] == {"language": "de"}
    assert data["extensions"]["depth_prompt"] == V2_CARD["data"]["extensions"]["depth_prompt"]
    assert data["character_book"] == CHARACTER_BOOK
    assert data["group_only_greetings"] == ["Ahoy, all of you."]


def test_edited_name_updates_top_level_v1_copies() -> None:
    card = {**copy.deepcopy(V2_CARD), "name": "Captain Mara", "create_date": "2023-1-1"}
    persona = import_card(as_json(card)).definition
    assert card_v2_from_persona(persona) == card
    exported = card_v2_from_persona(persona.model_copy(update={"name": "Mara"}))
    assert exported["name"] == exported["data"]["name"] == "Mara"
    assert exported["create_date"] == "2023-1-1"


def test_unparseable_mes_example_survives_unless_examples_are_edited() -> None:
    card = card_with(mes_example="{{char}}: I speak first.\n{{user}}: Fine.")
    persona = import_card(as_json(card)).definition
    assert persona.example_dialogues == []
    assert card_v2_from_persona(persona) == card


def test_parse_examples_leaves_out_text_outside_turns() -> None:
    assert parse_examples("Some prose.\n<START>\n{{user}}: a\n{{char}}: b") == [
        {"user": "a", "reply": "b"}]
    assert parse_examples("{{user}}: a\n{{char}}: b") == [{"user": "a", "reply": "b"}]
    assert parse_examples("") == []
