"""Owner namespaces: a user's persona ids are ``<user name>/<name>``, so no answer can
reveal that another user's private persona exists, and ids with a '/' work on every
route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from personae.auth.principal import Principal, Role
from personae.errors import PermissionDenied
from personae.personas.schema import Visibility
from tests.support.api import Api
from tests.support.panel_api import GENZ, TEXT, PanelApi

SECRET = {"id": "secret", "name": "Alice's Secret", "greetings": ["Shh."]}


async def _create(api: Api, who: str, definition: dict[str, Any],
                  **extra: Any) -> httpx.Response:
    return await api.client.post("/v1/personas", json={"definition": definition, **extra},
                                 headers=api.as_(who))


async def _import(api: Api, who: str, text: str, **form: str) -> httpx.Response:
    return await api.client.post("/v1/personas/import", files={"file": ("p.yaml", text)},
                                 data=form, headers=api.as_(who))


def _shape(response: httpx.Response, *ids: str) -> tuple[int, Any]:
    """Status and body with the ids the caller sent blanked out, to compare answers."""
    text = response.text
    for persona_id in ids:
        text = text.replace(persona_id, "<id>")
    return response.status_code, text if response.is_error else response.json().get("version")


async def test_a_members_personas_are_created_in_their_namespace(api: Api) -> None:
    created = await _create(api, "alice", SECRET)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "alice/secret"
    named = await _create(api, "alice", {"name": "Study Buddy"})
    assert named.json()["id"] == "alice/study-buddy"
    explicit = await _create(api, "alice", {"id": "alice/diary", "name": "Diary"})
    assert explicit.json()["id"] == "alice/diary"
    again = await _create(api, "alice", SECRET)  # a clash only ever with one's own
    assert again.status_code == 409
    assert "'alice/secret' already exists" in again.json()["error"]["message"]


async def test_taking_another_users_private_id_reveals_nothing(api: Api) -> None:
    assert (await _create(api, "alice", SECRET)).status_code == 201
    taken = await _create(api, "bob", SECRET)
    free = await _create(api, "bob", {**SECRET, "id": "free"})
    assert (taken.status_code, taken.json()["id"]) == (201, "bob/secret")
    assert _shape(taken) == _shape(free)

    into_taken = await _create(api, "bob", {**SECRET, "id": "alice/secret"})
    into_free = await _create(api, "bob", {**SECRET, "id": "alice/free"})
    assert into_taken.status_code == 403
    assert into_taken.json()["error"]["message"] == (
        "'alice/secret': you can only create personas in your own namespace 'bob/'")
    assert _shape(into_taken, "alice/secret") == _shape(into_free, "alice/free")


async def test_importing_another_users_private_id_reveals_nothing(api: Api) -> None:
    assert (await _create(api, "alice", SECRET)).status_code == 201
    by_file = [await _import(api, "bob", f"id: {i}\nname: X\n")
               for i in ("alice/secret", "alice/free")]
    by_form = [await _import(api, "bob", "name: X\n", id=i) for i in ("alice/secret",
                                                                      "alice/free")]
    for taken, free in (by_file, by_form):
        assert taken.status_code == 403, taken.text
        assert _shape(taken, "alice/secret") == _shape(free, "alice/free")
    plain = await _import(api, "bob", "id: secret\nname: X\n")
    assert (plain.status_code, plain.json()["data"][0]["id"]) == (201, "bob/secret")


async def test_syncing_another_users_private_id_reveals_nothing(api: Api,
                                                                tmp_path: Path) -> None:
    runtime = api.runtime
    assert (await _create(api, "alice", SECRET)).status_code == 201
    bob_user = await runtime.users.require_user("bob")
    bob = Principal(bob_user.id, bob_user.name, bob_user.role)
    reports = []
    for persona_id in ("alice/secret", "alice/free", "secret", "free"):
        folder = tmp_path / persona_id.replace("/", "-")
        folder.mkdir()
        (folder / "p.yaml").write_text(f"id: {persona_id}\nname: X\n", encoding="utf-8")
        reports.append(await runtime.personas.sync_folder(bob, folder, owner=bob_user,
                                                          dry_run=True))
    into_taken, into_free, taken, free = reports
    assert into_taken.invalid[0]["message"].replace("alice/secret", "<id>") == \
        into_free.invalid[0]["message"].replace("alice/free", "<id>")
    assert "only create personas in the owner's namespace 'bob/'" in \
        into_taken.invalid[0]["message"]
    assert (taken.created, free.created) == (["bob/secret"], ["bob/free"])


async def test_admins_create_in_a_users_namespace(api: Api, tmp_path: Path) -> None:
    runtime = api.runtime
    admin = await runtime.auth.local_admin()
    alice_user = await runtime.users.require_user("alice")
    (tmp_path / "coach.yaml").write_text("name: Coach\n", encoding="utf-8")
    report = await runtime.personas.sync_folder(admin, tmp_path, owner=alice_user)
    assert report.created == ["alice/coach"]
    mine = await api.client.get("/v1/personas/alice/coach", headers=api.as_("alice"))
    assert mine.json()["owner"] == alice_user.id
    changed = await api.client.patch("/v1/personas/alice/coach", json={
        "definition": {"description": "hers"}, "base_version": 1}, headers=api.as_("alice"))
    assert changed.status_code == 200
    hidden = await api.client.get("/v1/personas/alice/coach", headers=api.as_("bob"))
    assert hidden.status_code == 404


async def test_global_personas_keep_plain_ids(api: Api) -> None:
    made = await _create(api, "admin", {"id": "oracle", "name": "Oracle"}, **{"global": True})
    assert made.json()["id"] == "oracle"
    namespaced = await _create(api, "admin", {"id": "alice/oracle", "name": "O"},
                               **{"global": True})
    assert namespaced.status_code == 422
    assert "a global persona has a plain id" in namespaced.json()["error"]["message"]


async def test_a_reserved_name_is_refused_clearly(api: Api) -> None:
    response = await _create(api, "alice", {"id": "versions", "name": "V"})
    assert response.status_code == 422
    assert "'versions' is a reserved word in persona URLs" in \
        response.json()["error"]["message"]


async def test_an_id_with_a_slash_works_on_every_route(api: Api) -> None:
    alice = api.as_("alice")
    base = "/v1/personas/alice/secret"
    assert (await _create(api, "alice", SECRET)).status_code == 201
    patched = await api.client.patch(base, json={"definition": {"description": "v2"},
                                                 "base_version": 1}, headers=alice)
    assert (patched.status_code, patched.json()["version"]) == (200, 2)
    put = await api.client.put(base, json={"definition": {**SECRET, "description": "v3"},
                                           "base_version": 2}, headers=alice)
    assert (put.status_code, put.json()["id"]) == (200, "alice/secret")
    got = await api.client.get(base, headers=alice)
    assert (got.json()["id"], got.headers["etag"]) == ("alice/secret", '"3"')
    versions = (await api.client.get(f"{base}/versions", headers=alice)).json()
    assert [v["version"] for v in versions["data"]] == [1, 2, 3]
    first = (await api.client.get(f"{base}/versions/1", headers=alice)).json()
    assert first["definition"]["id"] == "alice/secret"
    diff = (await api.client.get(f"{base}/diff?from=1&to=2", headers=alice)).json()
    assert (diff["persona_id"], diff["changed_fields"]) == ("alice/secret", ["description"])
    prompt = (await api.client.get(f"{base}/prompt", headers=alice)).json()
    assert prompt["persona_id"] == "alice/secret"
    exported = await api.client.get(f"{base}/export?format=yaml", headers=alice)
    assert exported.headers["content-disposition"] == \
        'attachment; filename="alice--secret.yaml"'
    rolled = await api.client.post(f"{base}/rollback", json={"version": 1}, headers=alice)
    assert rolled.json()["version"] == 4
    archived = await api.client.post(f"{base}/archive", headers=alice)
    assert archived.json()["status"] == "archived"
    restored = await api.client.post(f"{base}/restore", headers=alice)
    assert restored.json()["status"] == "active"
    archived_by_delete = await api.client.delete(base, headers=alice)
    assert archived_by_delete.json()["status"] == "archived"


async def test_a_suffix_route_is_never_read_as_an_id(api: Api) -> None:
    await _create(api, "alice", SECRET)
    alice = api.as_("alice")
    for path in ("/v1/personas/alice/secret/diff", "/v1/personas/alice/diff"):
        wrong_method = await api.client.delete(path, headers=alice)
        assert wrong_method.status_code == 405, path
    too_deep = await api.client.get("/v1/personas/alice/secret/extra", headers=alice)
    assert too_deep.status_code == 404


async def test_a_session_on_a_namespaced_persona(api: Api) -> None:
    await _create(api, "alice", SECRET)
    opened = await api.client.post("/v1/sessions", json={"persona_id": "alice/secret"},
                                   headers=api.as_("alice"))
    assert opened.status_code == 201, opened.text
    assert opened.json()["session"]["persona_id"] == "alice/secret"


async def test_a_user_whose_name_cannot_be_a_namespace_is_told_so(api: Api) -> None:
    store = api.runtime.users.store  # a user from before names had to be slugs
    old = await store.create_user("Old Name", Role.member)
    principal = Principal(old.id, old.name, old.role)
    with pytest.raises(PermissionDenied, match="'Old Name' cannot be a persona namespace"):
        await api.runtime.personas.create(principal, SECRET, visibility=Visibility.public)


async def test_a_panel_names_a_namespaced_persona(papi: PanelApi) -> None:
    created = await papi.client.post("/v1/personas", json={
        "definition": {"id": "critic", "name": "Critic"}}, headers=papi.as_("alice"))
    assert created.json()["id"] == "alice/critic"
    panel = await papi.client.post("/v1/panels", json={
        "name": "mine", "personas": [GENZ, "alice/critic"]}, headers=papi.as_("alice"))
    assert panel.status_code == 201, panel.text
    assert panel.json()["personas"] == [GENZ, "alice/critic"]
    hidden = await papi.client.post("/v1/panels", json={
        "name": "theirs", "personas": ["alice/critic"]}, headers=papi.as_("bob"))
    assert hidden.status_code == 400
    evaluation = await papi.evaluate(content=TEXT, personas=["alice/critic"], classify=False)
    await papi.drain()
    results = await papi.results(evaluation["id"])
    assert [p["id"] for p in results["personas"]] == ["alice/critic"]
