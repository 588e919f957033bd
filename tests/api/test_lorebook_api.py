"""Lorebooks over HTTP: attach one to a persona, and a lorebook uploaded as a persona."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.support.api import Api
from tests.support.lore import CHARACTER_BOOK, WORLD_INFO


async def _persona(api: Api, who: str = "alice") -> dict[str, Any]:
    response = await api.client.post("/v1/personas", headers=api.as_(who), json={
        "definition": {"id": "wren", "name": "Wren",
                       "knowledge": [{"content": "plain note"},
                                     {"content": "old lore", "keys": ["old"]}]}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _attach(api: Api, persona_id: str, document: Any, who: str = "alice",
                  version: int | None = 1, **form: str) -> httpx.Response:
    headers = {**api.as_(who), **({"If-Match": f'"{version}"'} if version else {})}
    return await api.client.post(f"/v1/personas/{persona_id}/lorebook", headers=headers,
                                 files={"file": ("skerra.json", json.dumps(document).encode())},
                                 data=form)


async def test_a_world_info_file_is_attached_as_a_new_version(api: Api) -> None:
    await _persona(api)
    response = await _attach(api, "alice/wren", WORLD_INFO)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["entries_added"], body["source_format"]) == (5, "world-info")
    assert any("inclusion groups" in warning for warning in body["warnings"])
    persona = body["persona"]
    assert persona["version"] == 2
    knowledge = persona["definition"]["knowledge"]
    assert [k["content"] for k in knowledge][:2] == ["plain note", "old lore"]
    assert len(knowledge) == 7
    versions = await api.client.get("/v1/personas/alice/wren/versions", headers=api.as_("alice"))
    assert "lorebook skerra.json attached" in versions.json()["data"][-1]["note"]


async def test_replace_drops_the_old_lore_and_keeps_plain_knowledge(api: Api) -> None:
    await _persona(api)
    response = await _attach(api, "alice/wren", CHARACTER_BOOK, mode="replace")
    assert response.status_code == 200, response.text
    definition = response.json()["persona"]["definition"]
    contents = [k["content"] for k in definition["knowledge"]]
    assert contents[0] == "plain note" and "old lore" not in contents
    assert definition["lorebook"]["token_budget"] == 400


async def test_the_version_rules_of_every_persona_write_apply(api: Api) -> None:
    await _persona(api)
    missing = await _attach(api, "alice/wren", WORLD_INFO, version=None)
    assert missing.status_code == 428
    stale = await _attach(api, "alice/wren", WORLD_INFO, version=7)
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "version_conflict"


async def test_another_users_persona_is_not_found(api: Api) -> None:
    await _persona(api)
    response = await _attach(api, "alice/wren", WORLD_INFO, who="bob")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "persona 'alice/wren' not found"


async def test_a_persona_file_uploaded_as_a_lorebook_is_a_400(api: Api) -> None:
    await _persona(api)
    response = await _attach(api, "alice/wren", {"id": "x", "name": "X"})
    assert response.status_code == 400
    assert "persona file, not a lorebook" in response.json()["error"]["message"]
    bad_mode = await _attach(api, "alice/wren", WORLD_INFO, mode="merge")
    assert bad_mode.status_code == 422


async def test_a_lorebook_uploaded_as_a_persona_says_how_to_attach_it(api: Api) -> None:
    response = await api.client.post(
        "/v1/personas/import", headers=api.as_("alice"),
        files={"file": ("skerra.json", json.dumps(WORLD_INFO).encode())})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "is a lorebook (SillyTavern World Info), not a persona" in error["message"]
    assert "POST /v1/personas/{id}/lorebook" in error["message"]
    assert error["details"] == {"kind": "world-info"}


async def test_a_session_takes_the_users_name(api: Api) -> None:
    await api.client.post("/v1/personas", headers=api.as_("alice"), json={
        "definition": {"id": "wren", "name": "Wren", "greetings": ["Hello, {{user}}."]}})
    opened = await api.client.post("/v1/sessions", headers=api.as_("alice"),
                                   json={"persona_id": "alice/wren", "user_name": "Ana"})
    assert opened.status_code == 201, opened.text
    body = opened.json()
    assert body["session"]["meta"] == {"user_name": "Ana"}
    assert body["events"][0]["message"]["content"] == "Hello, Ana."
    too_long = await api.client.post("/v1/sessions", headers=api.as_("alice"),
                                     json={"persona_id": "alice/wren", "user_name": "x" * 65})
    assert too_long.status_code == 422
