"""Cards through import and export, per card version: the image byte for byte (a PNG's
every non-card chunk, a CHARX's every file), the data field by field."""

from __future__ import annotations

import base64
import copy
import io
import json
from typing import Any

import pytest
from PIL import Image

from personae.errors import InvalidInput
from personae.personas import card_files
from personae.personas.card_export import (
    card_from_persona,
    card_v2_from_persona,
    export_card_png,
    export_charx,
)
from personae.personas.cards import CardImport, import_card
from personae.personas.transfer import export_definition, import_bytes
from tests.support import cards as made


def as_json(card: Any) -> bytes:
    return json.dumps(card).encode()


def export_png(result: CardImport) -> bytes:
    return export_card_png(result.definition, blobs=result.blobs)


# -- V1 ----------------------------------------------------------------------------------


def test_v1_card_keeps_its_other_keys_under_extensions() -> None:
    result = import_card(as_json(made.V1))
    for card in (card_v2_from_persona(result.definition), card_from_persona(result.definition)):
        data = card["data"]
        for key in ("name", "description", "personality", "scenario", "first_mes",
                    "mes_example"):
            assert data[key] == made.V1[key], key
        assert data["extensions"]["metadata"] == made.V1["metadata"]
        assert data["extensions"]["create_date"] == made.V1["create_date"]
        assert data["extensions"]["talkativeness"] == made.V1["talkativeness"]
    again = import_card(as_json(card_v2_from_persona(result.definition)))
    assert card_v2_from_persona(again.definition) == card_v2_from_persona(result.definition)


def test_v1_extension_of_the_same_name_wins() -> None:
    card = {**made.V1, "extensions": {"metadata": "mine"}}
    data = card_v2_from_persona(import_card(as_json(card)).definition)["data"]
    assert data["extensions"]["metadata"] == "mine"
    assert data["extensions"]["talkativeness"] == "0.6"


# -- V2 JSON and PNG ---------------------------------------------------------------------


def test_v2_json_comes_back_equal_and_survives_v3_export() -> None:
    result = import_card(as_json(made.V2))
    assert card_v2_from_persona(result.definition) == made.V2
    v3 = card_from_persona(result.definition)
    assert [e["use_regex"] for e in v3["data"]["character_book"]["entries"]] == [False]
    through_v3 = import_card(as_json(v3))
    assert card_v2_from_persona(through_v3.definition) == made.V2  # nothing invented


def test_v2_png_keeps_the_image_byte_for_byte() -> None:
    source = made.v2_png()
    result = import_card(source)
    (avatar,) = result.definition.assets
    assert (avatar.name, avatar.type, avatar.media_type, avatar.uri) == (
        "main", "icon", "image/png", "ccdefault:")
    assert made.image_chunks(result.blobs[avatar.sha256]) == made.image_chunks(source)
    exported = export_png(result)
    assert made.image_chunks(exported) == made.image_chunks(source)
    assert made.text_chunks(exported)["Software"] == "tests"
    assert made.unb64(made.text_chunks(exported)["chara"]) == made.V2
    again = import_card(exported)
    assert again.blobs == result.blobs
    assert card_v2_from_persona(again.definition) == made.V2


# -- V3 PNG: ccv3 and chara ----------------------------------------------------------------


def test_v3_png_round_trip_is_exact_in_image_and_ccv3() -> None:
    source = made.v3_png()
    result = import_card(source)
    exported = export_png(result)
    assert made.image_chunks(exported) == made.image_chunks(source)
    texts = made.text_chunks(exported)
    assert made.unb64(texts["ccv3"]) == made.V3
    assert texts["parameters"] == "seed 7"
    again = import_card(exported)
    assert card_from_persona(again.definition) == made.V3
    assert again.blobs == result.blobs


def test_v3_downgrade_to_v2_is_faithful() -> None:
    exported = export_png(import_card(made.v3_png()))
    v2 = made.unb64(made.text_chunks(exported)["chara"])
    data = v2["data"]
    assert v2["spec"] == "chara_card_v2"
    for key in ("group_only_greetings", "assets", "nickname", "source", "creation_date",
                "modification_date", "creator_notes_multilingual"):
        assert key not in data
    assert data["extensions"]["chara_card_v3"] == {
        "group_only_greetings": ["Hello, all of you."], "nickname": "Io",
        "creator_notes_multilingual": {"de": "Für Tests."},
        "source": ["https://example.org/ione-card"],
        "creation_date": 1700000000, "modification_date": 1700000900}
    assert data["extensions"]["risuai"] == {"source": ["https://example.org/ione"]}
    fern, orchid, soil = data["character_book"]["entries"]
    assert all("use_regex" not in entry for entry in (fern, orchid, soil))
    assert all("@@" not in entry["content"] for entry in (fern, orchid, soil))
    assert fern["content"] == "The fern is named Ada."
    assert fern["extensions"] == {"ccv3_decorators": ["@@depth 0", "@@role system"],
                                  "position": 4, "depth": 0, "role": 0}
    assert orchid["extensions"] == {"use_regex": True, "ccv3_decorators": ["@@@SYSTEM"]}
    assert soil == {"keys": ["soil"], "content": "The soil is peat-free.", "extensions": {},
                    "enabled": True, "insertion_order": 2}


def test_v2_downgrade_read_alone_gives_the_v3_fields_back() -> None:
    exported = export_png(import_card(made.v3_png()))
    v2 = made.unb64(made.text_chunks(exported)["chara"])
    from_v2 = import_card(as_json(v2))
    data = card_from_persona(from_v2.definition)["data"]
    for key in ("group_only_greetings", "nickname", "source", "creation_date",
                "modification_date", "creator_notes_multilingual"):
        assert data[key] == made.V3["data"][key], key
    assert "chara_card_v3" not in data["extensions"]
    fern, orchid, _ = data["character_book"]["entries"]
    assert fern["content"] == made.V3["data"]["character_book"]["entries"][0]["content"]
    assert orchid["content"] == made.V3["data"]["character_book"]["entries"][1]["content"]
    assert (fern["use_regex"], orchid["use_regex"]) == (False, True)


# -- RisuAI PNG: chara-ext-asset chunks -----------------------------------------------------


def test_risu_png_assets_are_read_and_written_back() -> None:
    source, files = made.risu_png()
    result = import_card(source)
    assert [(a.name, a.type, a.uri) for a in result.definition.assets] == [
        ("main", "icon", "ccdefault:"), ("happy", "emotion", "__asset:0"),
        ("sad", "emotion", "__asset:1")]
    assert sorted(result.blobs.values()) == sorted([*files.values(),
                                                    result.blobs[result.definition.assets[0]
                                                                 .sha256]])
    exported = export_png(result)
    assert made.image_chunks(exported) == made.image_chunks(source)
    texts = made.text_chunks(exported)
    assert base64.b64decode(texts["chara-ext-asset_:0"]) == files["happy"]
    assert base64.b64decode(texts["chara-ext-asset_:1"]) == files["sad"]
    original = made.unb64(made.text_chunks(source)["ccv3"])
    assert made.unb64(texts["ccv3"]) == original
    assert import_card(exported).blobs == result.blobs


def test_unlisted_asset_chunk_is_reported() -> None:
    png = made.with_texts(made.image_png(), {"ccv3": made.b64(made.V3),
                                             "chara-ext-asset_:7": made.b64(b"x")})
    result = import_card(png)
    assert any("chunk(s) 7" in warning for warning in result.warnings)
    assert len(result.definition.assets) == 1


# -- CHARX ------------------------------------------------------------------------------


def test_charx_round_trip_keeps_every_file() -> None:
    result = import_card(made.charx(), filename="ione.charx")
    assert [(a.name, a.type, a.ext, a.media_type) for a in result.definition.assets] == [
        ("main", "icon", "png", "image/png"), ("joy", "emotion", "png", "image/png"),
        ("gloom", "emotion", "webp", "image/webp"),
        ("greenhouse", "background", "jpg", "image/jpeg")]
    assert not [w for w in result.warnings if "asset" in w or "CHARX" in w]
    exported = made.zip_files(export_charx(result.definition, result.blobs))
    assert json.loads(exported.pop("card.json")) == made.charx_card()
    assert exported == made.CHARX_FILES
    assert result.definition.avatar_asset is result.definition.assets[0]


def test_charx_files_no_asset_names_are_reported_not_kept() -> None:
    result = import_card(made.charx({"assets/other/readme.txt": b"hi", "x_meta/1.json": b"{}"}))
    assert len(result.definition.assets) == 4
    assert any("2 file(s) in the CHARX archive" in w and "readme.txt" in w
               for w in result.warnings)


def test_charx_link_and_missing_file_are_warned_about() -> None:
    card = made.charx_card()
    card["data"]["assets"].append({"type": "other", "uri": "https://example.org/x.mp3",
                                   "name": "song", "ext": "mp3"})
    card["data"]["assets"].append({"type": "other", "uri": "embeded://assets/gone.png",
                                   "name": "gone", "ext": "png"})
    content = made.charx()
    files = made.zip_files(content)
    files["card.json"] = json.dumps(card).encode()
    archive = card_files.write_charx(files.pop("card.json"), files)
    result = import_card(archive)
    assert any("is a link" in w and "not fetched" in w for w in result.warnings)
    assert any("assets/gone.png" in w for w in result.warnings)
    exported = json.loads(made.zip_files(export_charx(result.definition, result.blobs))
                          ["card.json"])
    uris = [entry["uri"] for entry in exported["data"]["assets"]]
    assert "https://example.org/x.mp3" in uris  # a link: kept, it names no file
    assert "embeded://assets/gone.png" not in uris  # never a file the archive lacks


def test_charx_as_png_and_json_never_names_missing_files() -> None:
    result = import_card(made.charx())
    png = export_png(result)
    card = made.unb64(made.text_chunks(png)["ccv3"])
    uris = [entry["uri"] for entry in card["data"]["assets"]]
    assert uris == ["ccdefault:", "__asset:0", "__asset:1", "__asset:2"]
    assert made.image_chunks(png)  # the avatar, as a PNG
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (8, 8)
    as_json_card = card_from_persona(result.definition, result.blobs)
    assert all(e["uri"].startswith("data:") for e in as_json_card["data"]["assets"])
    again = import_card(as_json(as_json_card))
    assert again.blobs == result.blobs  # the data: URIs carry every file
    assert not any(e["uri"].startswith("embeded://")
                   for e in card_from_persona(result.definition)["data"]["assets"])


# -- the avatar --------------------------------------------------------------------------


def test_jpeg_avatar_is_converted_once_and_placeholder_only_without_one() -> None:
    definition = import_card(as_json(made.V2)).definition
    jpeg = made.image_jpeg()
    from personae.personas.assets import describe

    asset = describe(jpeg, name="main")
    with_jpeg = definition.model_copy(update={"assets": [asset]})
    png = export_card_png(with_jpeg, blobs={asset.sha256: jpeg})
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.size) == ("PNG", (5, 7))
    placeholder = export_card_png(definition)
    with Image.open(io.BytesIO(placeholder)) as image:
        assert image.size == (400, 600)
    assert import_card(placeholder).definition.assets == []  # not an avatar


def test_exported_card_png_is_the_persona_file_export() -> None:
    imported = import_bytes(made.v3_png(), "ione.png")
    content, media_type, name = export_definition(imported.definitions[0], "card-png",
                                                  imported.blobs)
    assert (media_type, name) == ("image/png", "ione-vale.png")
    assert made.image_chunks(content) == made.image_chunks(made.v3_png())
    archive, media_type, name = export_definition(imported.definitions[0], "charx",
                                                  imported.blobs)
    assert (media_type, name) == ("application/zip", "ione-vale.charx")
    assert set(made.zip_files(archive)) == {"card.json", "assets/icon/images/main.png"}


# -- the PNG chunk walker refuses what is not a PNG --------------------------------------


@pytest.mark.parametrize(("mangle", "fragment"), [
    (lambda png: png[:-6], "truncated"),
    (lambda png: png[:20] + bytes([png[20] ^ 0xFF]) + png[21:], "CRC"),
    (lambda png: png[:8] + png[33:], "IHDR"),
])
def test_broken_pngs_are_refused(mangle: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        card_files.png_chunks(mangle(made.image_png()))


def test_stored_card_is_not_changed_by_asset_handling() -> None:
    card = copy.deepcopy(made.charx_card())
    result = import_card(made.charx())
    assert result.definition.extensions["chara_card"] == card
