"""A persona's files through the service and the store (SQLite and PostgreSQL): stored
with the version that first names them, kept by every version, scoped to one persona."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.config import Settings
from personae.errors import NotFound, TooLarge, ValidationFailed
from personae.personas.assets import data_uri, sha256_of
from personae.personas.transfer import import_bytes
from personae.runtime import Runtime
from tests.support import cards as made
from tests.support.runtime import open_runtime


async def _import_charx(runtime: Runtime, alice: Principal) -> str:
    imported = import_bytes(made.charx(), "ione.charx", "ione")
    (record,) = await runtime.personas.create_many(alice, imported.definitions,
                                                   blobs=imported.blobs)
    return record.id


async def test_imported_files_are_stored_and_served(runtime: Runtime,
                                                    people: dict[str, Principal]) -> None:
    alice = people["alice"]
    persona_id = await _import_charx(runtime, alice)
    asset, media_type, data = await runtime.personas.avatar(alice, persona_id)
    assert (asset.name, media_type) == ("main", "image/png")
    assert data == made.CHARX_FILES["assets/icon/images/main.png"]
    jpeg = made.CHARX_FILES["assets/background/images/greenhouse.jpg"]
    _, media_type, data = await runtime.personas.asset(alice, persona_id, sha256_of(jpeg))
    assert (media_type, data) == ("image/jpeg", jpeg)
    content, _, _ = await runtime.personas.export(alice, persona_id, "charx")
    files = made.zip_files(content)
    files.pop("card.json")
    assert files == made.CHARX_FILES


async def test_every_version_keeps_its_own_avatar(runtime: Runtime,
                                                  people: dict[str, Principal]) -> None:
    alice = people["alice"]
    persona_id = await _import_charx(runtime, alice)
    first = made.CHARX_FILES["assets/icon/images/main.png"]
    new_face = made.image_png((2, 2), (1, 2, 3))
    second = await runtime.personas.set_avatar(alice, persona_id, new_face, "image/png",
                                               base_version=1)
    assert second.version == 2
    assert (await runtime.personas.avatar(alice, persona_id))[2] == new_face
    assert (await runtime.personas.avatar(alice, persona_id, version=1))[2] == first
    removed = await runtime.personas.remove_avatar(alice, persona_id, base_version=2)
    with pytest.raises(NotFound, match="has no avatar image"):
        await runtime.personas.avatar(alice, persona_id)
    back = await runtime.personas.rollback(alice, persona_id, 1, base_version=removed.version)
    assert (await runtime.personas.avatar(alice, persona_id))[2] == first
    assert back.definition.assets[0].sha256 == sha256_of(first)


async def test_a_definition_names_only_its_own_personas_files(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice, bob = people["alice"], people["bob"]
    persona_id = await _import_charx(runtime, alice)
    stolen = (await runtime.personas.get(alice, persona_id)).record.definition.assets[0]
    bobs = await runtime.personas.create(bob, {"name": "Bob's"})
    with pytest.raises(ValidationFailed) as caught:
        await runtime.personas.patch(bob, bobs.id, {"assets": [stolen.model_dump()]},
                                     base_version=1)
    assert [issue.path for issue in caught.value.issues] == ["assets[0].sha256"]
    with pytest.raises(ValidationFailed):
        await runtime.personas.create(bob, {"name": "Other", "assets": [stolen.model_dump()]})
    with pytest.raises(NotFound):
        await runtime.personas.asset(bob, bobs.id, stolen.sha256)


async def test_inline_avatar_becomes_the_icon(runtime: Runtime,
                                              people: dict[str, Principal]) -> None:
    alice = people["alice"]
    face = made.image_png()
    record = await runtime.personas.create(alice, {"name": "Face",
                                                   "avatar": data_uri("image/png", face)})
    assert record.definition.avatar is None
    assert record.definition.avatar_asset is not None
    assert (await runtime.personas.avatar(alice, record.id))[2] == face
    with pytest.raises(ValidationFailed) as caught:
        await runtime.personas.create(alice, {"name": "Bad", "avatar": "data:image/png;base64,"
                                                                      "bm90IGFuIGltYWdl"})
    assert caught.value.issues[0].path == "avatar"
    linked = await runtime.personas.create(alice, {"name": "Linked",
                                                   "avatar": "https://example.org/a.png"})
    with pytest.raises(NotFound) as missing:
        await runtime.personas.avatar(alice, linked.id)
    assert missing.value.details == {"url": "https://example.org/a.png"}


async def test_files_go_with_a_hard_delete(runtime: Runtime,
                                           people: dict[str, Principal]) -> None:
    persona_id = await _import_charx(runtime, people["alice"])
    await runtime.personas.hard_delete(people["admin"], persona_id)
    assert await runtime.store.asset_data(persona_id, [sha256_of(
        made.CHARX_FILES["assets/icon/images/main.png"])]) == {}


async def test_asset_bound_is_a_setting(database_url: str, tmp_path: Path,
                                        people: dict[str, Principal]) -> None:
    settings = Settings(data_dir=tmp_path / "small", database_url=database_url,
                        max_asset_bytes=1024)
    async with open_runtime(settings) as small:
        record = await small.personas.create(people["alice"], {"name": "Small"})
        big = made.noise_png(64)
        with pytest.raises(TooLarge, match="PERSONAE_MAX_ASSET_BYTES"):
            await small.personas.set_avatar(people["alice"], record.id, big, "image/png",
                                            base_version=1)
        with pytest.raises(TooLarge):
            await small.personas.create(people["alice"], {
                "name": "Inline", "avatar": data_uri("image/png", big)})


async def test_sync_reads_an_avatar_beside_the_file(runtime: Runtime, tmp_path: Path,
                                                    people: dict[str, Principal]) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    face = made.image_png()
    (folder / "face.png").write_bytes(face)
    (folder / "kai.yaml").write_text("name: Kai\navatar: ./face.png\n", encoding="utf-8")
    (folder / "out.yaml").write_text("name: Out\navatar: ../secret.png\n", encoding="utf-8")
    report = await runtime.personas.sync_folder(people["admin"], folder, skip_invalid=True)
    assert report.created == ["kai"]
    assert "outside" in report.invalid[0]["message"]
    assert (await runtime.personas.avatar(people["alice"], "kai"))[2] == face
    again = await runtime.personas.sync_folder(people["admin"], folder, skip_invalid=True)
    assert again.unchanged == ["kai"]
