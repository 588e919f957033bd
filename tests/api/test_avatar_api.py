"""A persona's avatar and files over HTTP: served with their hash as ETag, replaced and
removed as new versions, as private as the persona, and bounded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from personae.config import Settings
from personae.personas.cards import import_card
from tests.support import cards as made
from tests.support.api import Api, serve_app

MAX_ASSET = 4096


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                        max_asset_bytes=MAX_ASSET, max_upload_bytes=64 * 1024)
    async for harness in serve_app(settings):
        yield harness


async def _upload(api: Api, name: str, content: bytes, who: str = "alice") -> httpx.Response:
    return await api.client.post("/v1/personas/import", files={"file": (name, content)},
                                 headers=api.as_(who))


async def _put_avatar(api: Api, persona_id: str, image: bytes, *, version: int | None = 1,
                      media_type: str = "image/png", who: str = "alice") -> httpx.Response:
    headers = {**api.as_(who), "Content-Type": media_type}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return await api.client.put(f"/v1/personas/{persona_id}/avatar", content=image,
                                headers=headers)


async def test_png_card_avatar_is_served_with_etag_and_304(api: Api) -> None:
    source = made.v2_png()
    created = await _upload(api, "bram.png", source)
    assert created.status_code == 201, created.text
    persona_id = created.json()["data"][0]["id"]
    avatar = await api.client.get(f"/v1/personas/{persona_id}/avatar", headers=api.as_("alice"))
    assert avatar.status_code == 200
    assert avatar.headers["content-type"] == "image/png"
    assert made.image_chunks(avatar.content) == made.image_chunks(source)
    etag = avatar.headers["etag"]
    assert etag == f'"{hashlib.sha256(avatar.content).hexdigest()}"'
    assert avatar.headers["cache-control"].startswith("private, max-age=")
    cached = await api.client.get(f"/v1/personas/{persona_id}/avatar",
                                  headers={**api.as_("alice"), "If-None-Match": etag})
    assert (cached.status_code, cached.content) == (304, b"")
    exported = await api.client.get(f"/v1/personas/{persona_id}/export?format=card-png",
                                    headers=api.as_("alice"))
    assert made.image_chunks(exported.content) == made.image_chunks(source)


async def test_put_and_delete_avatar_make_versions(api: Api) -> None:
    created = await api.client.post("/v1/personas", json={"definition": {"name": "Nia"}},
                                    headers=api.as_("alice"))
    persona_id = created.json()["id"]
    missing = await api.client.get(f"/v1/personas/{persona_id}/avatar", headers=api.as_("alice"))
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"persona '{persona_id}' has no avatar image"
    face = made.image_png()
    put = await _put_avatar(api, persona_id, face)
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.headers["etag"]) == (2, '"2"')
    served = await api.client.get(f"/v1/personas/{persona_id}/avatar", headers=api.as_("alice"))
    assert served.content == face
    deleted = await api.client.delete(f"/v1/personas/{persona_id}/avatar",
                                      headers={**api.as_("alice"), "If-Match": '"2"'})
    assert deleted.json()["version"] == 3
    gone = await api.client.get(f"/v1/personas/{persona_id}/avatar", headers=api.as_("alice"))
    assert gone.status_code == 404
    kept = await api.client.get(f"/v1/personas/{persona_id}/avatar?version=2",
                                headers=api.as_("alice"))
    assert kept.content == face


async def test_another_users_private_persona_is_not_found(api: Api) -> None:
    created = await _upload(api, "bram.png", made.v2_png())
    persona_id = created.json()["data"][0]["id"]
    sha = created.json()["data"][0]["definition"]["assets"][0]["sha256"]
    for path in (f"/v1/personas/{persona_id}/avatar", f"/v1/personas/{persona_id}/assets/{sha}"):
        response = await api.client.get(path, headers=api.as_("bob"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    put = await _put_avatar(api, persona_id, made.image_png(), who="bob")
    assert put.status_code == 404


async def test_bad_avatar_uploads_get_clear_errors(api: Api) -> None:
    created = await api.client.post("/v1/personas", json={"definition": {"name": "Nia"}},
                                    headers=api.as_("alice"))
    persona_id = created.json()["id"]
    no_version = await _put_avatar(api, persona_id, made.image_png(), version=None)
    assert no_version.status_code == 428
    assert "an If-Match header" in no_version.json()["error"]["message"]
    assert "base_version" not in no_version.json()["error"]["message"]  # a raw image body
    not_image = await _put_avatar(api, persona_id, b"hello, not an image")
    assert not_image.status_code == 400
    assert "not a readable image" in not_image.json()["error"]["message"]
    wrong_type = await _put_avatar(api, persona_id, made.image_png(), media_type="text/html")
    assert wrong_type.status_code == 415
    too_big = await _put_avatar(api, persona_id, made.noise_png(64))
    assert too_big.status_code == 413
    assert "PERSONAE_MAX_ASSET_BYTES" in too_big.json()["error"]["message"]
    way_too_big = await _put_avatar(api, persona_id, b"\0" * (65 * 1024))
    assert way_too_big.status_code == 413
    stale = await _put_avatar(api, persona_id, made.image_png(), version=7)
    assert stale.status_code == 409
    after = await api.client.get(f"/v1/personas/{persona_id}", headers=api.as_("alice"))
    assert after.json()["version"] == 1  # nothing was written


async def test_charx_import_serves_each_asset_and_exports_them(api: Api) -> None:
    # Small enough for this app's bounds: the test card's files are a few hundred bytes.
    created = await _upload(api, "ione.charx", made.charx())
    assert created.status_code == 201, created.text
    body = created.json()["data"][0]
    persona_id = body["id"]
    for asset in body["definition"]["assets"]:
        served = await api.client.get(f"/v1/personas/{persona_id}/assets/{asset['sha256']}",
                                      headers=api.as_("alice"))
        assert served.status_code == 200
        assert served.headers["content-type"] == asset["media_type"]
        assert hashlib.sha256(served.content).hexdigest() == asset["sha256"]
    unknown = await api.client.get(f"/v1/personas/{persona_id}/assets/{'0' * 64}",
                                   headers=api.as_("alice"))
    assert unknown.status_code == 404
    charx = await api.client.get(f"/v1/personas/{persona_id}/export?format=charx",
                                 headers=api.as_("alice"))
    assert charx.headers["content-type"] == "application/zip"
    files = made.zip_files(charx.content)
    assert json.loads(files.pop("card.json")) == made.charx_card()
    assert files == made.CHARX_FILES
    card = await api.client.get(f"/v1/personas/{persona_id}/export?format=card",
                                headers=api.as_("alice"))
    assert import_card(card.content).blobs.keys() == {
        a["sha256"] for a in body["definition"]["assets"]}


async def test_definition_with_inline_avatar_and_a_foreign_hash(api: Api) -> None:
    from personae.personas.assets import data_uri

    face = made.image_png()
    created = await api.client.post("/v1/personas", json={"definition": {
        "name": "Inline", "avatar": data_uri("image/png", face)}}, headers=api.as_("alice"))
    assert created.status_code == 201, created.text
    asset = created.json()["definition"]["assets"][0]
    foreign = await api.client.post("/v1/personas", json={"definition": {
        "name": "Foreign", "assets": [asset]}}, headers=api.as_("bob"))
    assert foreign.status_code == 422
    assert foreign.json()["error"]["details"]["errors"][0]["path"] == "assets[0].sha256"
