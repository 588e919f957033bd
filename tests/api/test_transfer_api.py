"""Import and export over HTTP: persona files and Character Cards (JSON and PNG)."""

from __future__ import annotations

import base64
import json

import yaml

from personae.personas.card_export import card_v2_from_persona
from personae.personas.cards import import_card
from tests.support.api import Api

V2_CARD = {
    "spec": "chara_card_v2", "spec_version": "2.0",
    "data": {"name": "Seraphina", "description": "A guardian of the forest.",
             "personality": "gentle, protective", "scenario": "a glade at dusk",
             "first_mes": "Welcome, traveller.", "mes_example": "",
             "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
             "alternate_greetings": ["Rest here."], "tags": ["fantasy"], "creator": "someone",
             "character_version": "1.0", "extensions": {"talkativeness": "0.5"},
             "character_book": {"entries": [{"keys": ["glade"], "content": "A quiet place.",
                                             "enabled": True, "insertion_order": 0}]}},
}


async def _upload(api: Api, name: str, content: bytes, **form: str):
    return await api.client.post("/v1/personas/import", files={"file": (name, content)},
                                 data=form, headers=api.as_("alice"))


async def test_import_v2_card_and_export_it_unchanged(api: Api) -> None:
    response = await _upload(api, "seraphina.json", json.dumps(V2_CARD).encode())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source_format"] == "v2-json"
    created = body["data"][0]
    assert created["id"] == "alice/seraphina"  # in the importer's namespace
    assert created["definition"]["greetings"] == ["Welcome, traveller.", "Rest here."]
    png = await api.client.get("/v1/personas/alice/seraphina/export?format=card-png",
                               headers=api.as_("alice"))
    assert png.headers["content-type"] == "image/png"
    round_trip = import_card(png.content, persona_id="seraphina")
    assert card_v2_from_persona(round_trip.definition) == V2_CARD


async def test_import_png_card_with_id_override(api: Api) -> None:
    exported = await _upload(api, "seraphina.json", json.dumps(V2_CARD).encode())
    assert exported.status_code == 201
    png = (await api.client.get("/v1/personas/alice/seraphina/export?format=card-png",
                                headers=api.as_("alice"))).content
    again = await _upload(api, "seraphina.png", png, id="seraphina-2")
    assert again.status_code == 201, again.text
    assert again.json()["data"][0]["id"] == "alice/seraphina-2"
    duplicate = await _upload(api, "seraphina.png", png, id="seraphina-2")
    assert duplicate.status_code == 409


async def test_import_persona_yaml_and_export_yaml(api: Api) -> None:
    text = "id: ada\nname: Ada\nlanguage: en\nteaching_style: [patient, socratic]\n"
    response = await _upload(api, "ada.yaml", text.encode())
    assert response.status_code == 201, response.text
    exported = await api.client.get("/v1/personas/alice/ada/export?format=yaml",
                                    headers=api.as_("alice"))
    assert exported.headers["content-disposition"] == 'attachment; filename="alice--ada.yaml"'
    assert yaml.safe_load(exported.text)["traits"] == {"teaching_style": ["patient", "socratic"]}
    card = (await api.client.get("/v1/personas/alice/ada/export?format=card",
                                 headers=api.as_("alice"))).json()
    assert card["spec"] == "chara_card_v3"
    assert card["data"]["name"] == "Ada"


async def test_garbage_uploads_get_clear_errors(api: Api) -> None:
    not_a_card = await _upload(api, "x.bin", b"\x00\x01garbage")
    assert not_a_card.status_code == 400
    assert "expected JSON, YAML, PNG or CHARX" in not_a_card.json()["error"]["message"]
    bad_b64 = b"\x89PNG\r\n\x1a\n" + b"broken"
    broken_png = await _upload(api, "x.png", bad_b64)
    assert broken_png.status_code == 400
    empty = await _upload(api, "x.json", b"")
    assert empty.json()["error"]["message"] == "the uploaded file is empty"
    invalid = await _upload(api, "bad.yaml", b"name: X\ngreetings: ['']\n")
    assert invalid.status_code == 422
    assert invalid.json()["error"]["message"] == "bad.yaml: greetings[0]: must not be empty"
    unknown = await api.client.get("/v1/personas/x/export?format=pdf", headers=api.as_("alice"))
    assert unknown.status_code == 404  # no such persona: checked before the format


async def test_card_with_invalid_embedded_json(api: Api) -> None:
    import io

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("chara", base64.b64encode(b"{not json").decode())
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG", pnginfo=info)
    response = await _upload(api, "bad.png", buffer.getvalue())
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


async def test_multi_persona_import_is_all_or_nothing(api: Api) -> None:
    await _upload(api, "one.yaml", b"id: taken\nname: Taken\n")
    both = b"- {id: fresh, name: Fresh}\n- {id: taken, name: Again}\n"
    response = await _upload(api, "both.yaml", both)
    assert response.status_code == 409
    assert "'alice/taken' already exists" in response.json()["error"]["message"]
    fresh = await api.client.get("/v1/personas/alice/fresh", headers=api.as_("alice"))
    assert fresh.status_code == 404
